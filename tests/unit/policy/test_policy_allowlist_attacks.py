"""Allowlist attacks (issue 9, item 6), through parse_policy and evaluate.

A pattern with a tag names what the tag pointed to when the author wrote it; the runtime
pulls the digest of a ``repo:tag@sha256:…`` reference and ignores the tag, so a tag pattern
must never admit a reference that carries a digest. A pattern that covers every registry
(``**``) allowlists everything and is refused.
"""

from __future__ import annotations

import pytest

from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, Outcome, evaluate, parse_policy
from chainproof.policy.patterns import compile_image_pattern
from unit.policy.policy_factories import NOW, evidence, rule

ANY = "sha256:" + "66" * 32


def _policy(pattern: str):  # type: ignore[no-untyped-def]
    return parse_policy(
        {
            "name": "projects/p/policy",
            "admissionWhitelistPatterns": [{"namePattern": pattern}],
            "defaultAdmissionRule": rule(),
        }
    )


@pytest.mark.parametrize(
    "pattern",
    ["gcr.io/x/app:1.0", "gcr.io/x/app:1.*", "gcr.io/x/a*:1.0", "gcr.io/x/*:*", "gcr.io/x/**:1.0"],
)
def test_item6_a_tag_pattern_never_admits_a_digest(pattern: str) -> None:
    image = f"gcr.io/x/app:1.0@{ANY}"
    decision = evaluate(_policy(pattern), AdmissionRequest(images=(image,)), evidence(), NOW)
    assert decision.outcome is Outcome.DENIED, decision.explain()
    # The tag-only reference it was written for is still allowlisted.
    tagged = evaluate(
        _policy(pattern), AdmissionRequest(images=("gcr.io/x/app:1.0",)), evidence(), NOW
    )
    assert tagged.outcome is Outcome.ALLOWED, tagged.explain()


@pytest.mark.parametrize(
    ("pattern", "image", "matches"),
    [
        ("gcr.io/x/*", f"gcr.io/x/app:1.0@{ANY}", True),  # no tag in the pattern: any digest
        ("gcr.io/x/app", f"gcr.io/x/app:1.0@{ANY}", True),
        (f"gcr.io/x/app@{ANY}", f"gcr.io/x/app:9@{ANY}", True),  # the digest is what runs
        (f"gcr.io/x/app@{ANY}", "gcr.io/x/app@sha256:" + "77" * 32, False),
        ("gcr.io/x/a*:*", f"gcr.io/x/app@{ANY}", False),  # a tag glob is not a digest glob
        ("gcr.io/x/app*", f"gcr.io/x/app@{ANY}", True),
    ],
)
def test_item6_patterns_match_name_tag_and_digest_separately(
    pattern: str, image: str, matches: bool
) -> None:
    assert compile_image_pattern(pattern).matches(parse_image_reference(image)) is matches


@pytest.mark.parametrize("pattern", ["**", "*", "**/**", "**:latest", "*/**", "**app"])
def test_item6_a_pattern_covering_every_registry_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="admissionWhitelistPatterns"):
        _policy(pattern)
