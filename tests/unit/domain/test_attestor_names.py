"""One grammar for attestor names: the API, the policy parser and the CLI agree on every name."""

from __future__ import annotations

from typing import Any

import pytest

from chainproof.domain.names import (
    AttestorName,
    is_attestor_name,
    parse_attestor_name,
    parse_attestor_ref,
)
from chainproof.errors import InvalidArgument
from chainproof.policy import parse_attestor, parse_policy
from chainproof.policy._fields import Problems
from chainproof.policy.checks import read_checks

GOOD = [
    "projects/p/attestors/qa",
    "projects/acme.example/attestors/build_1",
    "projects/p/attestors/a:b",
]
# Each of these was accepted by the policy's old regex but named nothing the API can address.
BAD = [
    "qa",
    "projects/p/attestors/",
    "projects/p/attestors/..",
    "projects/-p/attestors/qa",
    "projects/p$/attestors/qa",
    "projects/p/attestors/qa/extra",
    "projects/p/notes/qa",
    "projects/p/attestors/q\u202ea",
]


def _policy(name: str) -> dict[str, Any]:
    return {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [name],
        }
    }


def _policy_accepts(name: str) -> bool:
    try:
        parse_policy(_policy(name))
    except InvalidArgument:
        return False
    return True


def _attestor_accepts(name: str) -> bool:
    try:
        parse_attestor(
            {"name": name, "userOwnedGrafeasNote": {"noteReference": "projects/p/notes/n"}}
        )
    except InvalidArgument:
        return False
    return True


def _predicates_accept(name: str) -> bool:
    problems = Problems("checks")
    read_checks(
        problems, "", {"requiredPredicates": [{"predicateType": "SBOM", "attestors": [name]}]}
    )
    return not problems.items


def _api_accepts(name: str) -> bool:
    try:
        parse_attestor_name(name)
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize("name", GOOD + BAD)
def test_every_reader_gives_the_same_answer(name: str) -> None:
    expected = name in GOOD
    assert is_attestor_name(name) is expected
    assert _api_accepts(name) is expected
    assert _policy_accepts(name) is expected
    assert _attestor_accepts(name) is expected
    assert _predicates_accept(name) is expected


def test_parsed_and_printed() -> None:
    name = parse_attestor_name("projects/p/attestors/qa")
    assert name == AttestorName("p", "qa") and str(name) == "projects/p/attestors/qa"


def test_policy_message_is_unchanged_for_a_name_the_api_could_not_address() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_policy(_policy("projects/p$/attestors/qa"))
    assert (
        "defaultAdmissionRule.requireAttestationsBy[0]: 'projects/p$/attestors/qa' is not of the "
        "form projects/PROJECT/attestors/ID" in info.value.details
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme/qa", AttestorName("acme", "qa")),
        (" projects/acme/attestors/qa ", AttestorName("acme", "qa")),
    ],
)
def test_the_command_line_shorthand(text: str, expected: AttestorName) -> None:
    assert parse_attestor_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("qa", "expected PROJECT/ID or projects/{project_id}/attestors/{attestor_id}"),
        ("a/b/c", "expected PROJECT/ID or"),
        ("projects/acme/notes/qa", "expected PROJECT/ID or"),
        ("acme/..", "attestor ID '..' is not valid"),
        ("-acme/qa", "not a valid project ID"),
    ],
)
def test_the_shorthand_refuses_with_the_expected_form(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_attestor_ref(text, field="--attestor")
    assert says in str(info.value)
