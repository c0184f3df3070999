"""The checks registry: every check reads its own key, writes it back, and is judged in order."""

from __future__ import annotations

from typing import Any

import pytest

from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, evaluate, parse_policy
from chainproof.policy.checks import CHECKS, ChainproofChecks
from unit.policy.policy_factories import APP, NOW, QA, evidence, policy, rule, signed

EVERY_CHECK: dict[str, Any] = {
    "requiredPredicates": [{"predicateType": "SBOM", "attestors": [QA]}],
    "imageIndex": {"everyPlatform": True},
    "vulnerabilities": {"maximumFixableSeverity": "LOW", "maximumUnfixableSeverity": "HIGH"},
    "freshness": {"maximumScanAgeHours": 12},
    "trustedBuilders": ["https://github.com/actions/runner/*"],
    "trustedSourceRepositories": ["github.com/acme/*"],
    "trustedRepositories": ["gcr.io/x/**"],
    "sbom": {"formats": ["CycloneDX"]},
    "vex": {"requireEveryFinding": True},
    "packages": {"deniedPurls": ["pkg:npm/event-stream@3.3.6"], "deniedLicenses": ["AGPL-3.0"]},
    "cel": "size(attestations) > 0",
}


def _checks(doc: dict[str, Any]) -> ChainproofChecks:
    return parse_policy(policy(rule(**doc)).to_dict()).default_admission_rule.checks


def test_every_registered_check_has_a_key_and_round_trips() -> None:
    assert {c.key for c in CHECKS} == set(EVERY_CHECK)
    checks = _checks(EVERY_CHECK)
    assert [type(c) for c in checks] == list(CHECKS)
    assert checks.to_dict() == EVERY_CHECK
    assert _checks(checks.to_dict()) == checks


def test_each_check_is_found_by_its_class_and_absent_ones_are_not() -> None:
    only = _checks({"freshness": {"maximumScanAgeHours": 1}})
    assert [c.key for c in only] == ["freshness"]
    for cls in CHECKS:
        assert (only.get(cls) is not None) is (cls.key == "freshness")


def test_results_follow_registry_order() -> None:
    d = evaluate(
        policy(rule(**EVERY_CHECK)),
        AdmissionRequest((APP,)),
        evidence(attestations=(signed(),)),
        NOW,
    )
    kinds = [r.kind for r in d.images[0].requirements]
    assert kinds == [
        "attestation",
        "platforms",
        "predicate",
        "vulnerabilities",
        "freshness",
        "trusted-builder",
        "trusted-source",
        "trusted-repository",
        "sbom",
        "vex",
        "packages",
        "cel",
    ]


def test_an_unknown_check_key_is_named_with_the_registered_ones() -> None:
    with pytest.raises(InvalidArgument) as err:
        _checks({"freshnes": {"maximumScanAgeHours": 1}})
    (detail,) = [d for d in err.value.details if "freshnes" in d]
    for cls in CHECKS:
        assert cls.key in detail
