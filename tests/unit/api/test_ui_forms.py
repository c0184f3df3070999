"""The pure helpers of the dashboard's forms: where a parser problem is shown, which rule a
``rule=`` names, where ``next=`` may return to, and which SBOM references name a document."""

from __future__ import annotations

import pytest

from chainproof.api.ui.policy_rule import field_of, rule_from_form, rule_location
from chainproof.api.ui.routes import safe_next
from chainproof.errors import InvalidArgument


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ("defaultAdmissionRule.evaluationMode: expected one of …", "evaluationMode"),
        ("defaultAdmissionRule.requireAttestationsBy[0]: 'x' is not …", "requireAttestationsBy"),
        (
            "defaultAdmissionRule.chainproofChecks.freshness.maximumScanAgeHours: >0",
            "check-freshness",
        ),
        ("defaultAdmissionRule.chainproofChecks.bogus: unknown field", "checks"),
        ("defaultAdmissionRule.extra: unknown field", ""),
        ("clusterAdmissionRules.a.evaluationMode: …", ""),
        ("invalid policy: 1 problem", ""),
    ],
)
def test_problems_land_at_their_field(detail: str, field: str) -> None:
    assert field_of(detail, "defaultAdmissionRule") == field


def test_rule_locations() -> None:
    assert rule_location("default") == ("defaultAdmissionRule", None)
    assert rule_location("kubernetesNamespaceAdmissionRules/payments") == (
        "kubernetesNamespaceAdmissionRules",
        "payments",
    )
    for bad in ("defaultAdmissionRule/x", "clusterAdmissionRules/", "nope"):
        with pytest.raises(InvalidArgument):
            rule_location(bad)


def test_rule_from_form_keeps_what_was_typed_and_flags_bad_json() -> None:
    rule, errors = rule_from_form(
        {
            "evaluationMode": ["REQUIRE_ATTESTATION"],
            "requireAttestationsBy": ["projects/p/attestors/a", " "],
            "check-freshness": ['{"maximumScanAgeHours": 2}'],
            "check-cel": ["{nope"],
        }
    )
    assert rule == {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "requireAttestationsBy": ["projects/p/attestors/a"],
        "chainproofChecks": {"freshness": {"maximumScanAgeHours": 2}},
    }
    assert list(errors) == ["check-cel"]


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("/images?x=1", "/images?x=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_stays_on_this_server(value: str | None, safe: str) -> None:
    assert safe_next(value) == safe
