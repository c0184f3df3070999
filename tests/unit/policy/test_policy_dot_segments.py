"""Dot segments in URIs that a trust pattern matches are resolved first (issue 9 item 8).

``github.com/acme/../mallory/app`` is mallory's repository; a pattern ``github.com/acme/**``
must not trust it. The same holds for builder IDs, which are URIs too.
"""

from __future__ import annotations

import pytest

from chainproof.policy.patterns import normalise_source_uri, normalise_uri_path, remove_dot_segments
from unit.policy.policy_factories import BUILD, QA
from unit.policy.test_policy_checks import GH, judge, provenance, result, signed


@pytest.mark.parametrize(
    "source",
    [
        "git+https://github.com/acme/../mallory/app",
        "https://github.com/acme/app/../../mallory/app.git",
        "https://github.com/acme/%2e%2e/mallory/app",
        "https://github.com/acme/%2E%2E/mallory/app",
        "github.com/acme/./../mallory/app",
    ],
)
def test_a_source_that_climbs_out_of_a_trusted_owner_is_not_trusted(source: str) -> None:
    checks = {"trustedSourceRepositories": ["github.com/acme/**"]}
    r = result(
        judge(checks, attestors=(QA, BUILD), attestations=(signed(), provenance(GH, source))),
        "trusted-source",
    )
    assert r.passed is False
    assert "mallory" in r.reason


def test_dot_segments_that_stay_inside_still_match() -> None:
    checks = {"trustedSourceRepositories": ["github.com/acme/app"]}
    source = "git+https://github.com/acme/./tools/../app.git@refs/heads/main"
    r = result(
        judge(checks, attestors=(QA, BUILD), attestations=(signed(), provenance(GH, source))),
        "trusted-source",
    )
    assert r.passed is True


def test_a_builder_that_climbs_out_of_a_trusted_path_is_not_trusted() -> None:
    checks = {"trustedBuilders": ["https://github.com/actions/runner/**"]}
    builder = "https://github.com/actions/runner/../../mallory/runner"
    attestations = (signed(), provenance(builder, "git+https://github.com/acme/app"))
    r = result(judge(checks, attestors=(QA, BUILD), attestations=attestations), "trusted-builder")
    assert r.passed is False


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("a/b/../c", "a/c"),
        ("/a/./b/", "/a/b/"),
        ("../../a", "a"),
        ("a//b", "a/b"),
        ("a/%2e%2E/b", "b"),
    ],
)
def test_remove_dot_segments(path: str, resolved: str) -> None:
    assert remove_dot_segments(path) == resolved


def test_uri_paths_keep_scheme_authority_and_query() -> None:
    assert normalise_uri_path("https://h.example/a/../b?x=../y") == "https://h.example/b?x=../y"
    assert normalise_source_uri("https://GitHub.com/a/b/../c.git") == "github.com/a/c"
