"""``attestedBy`` on the sbom, packages, vulnerabilities and freshness checks, and the scoping
of signed SBOMs and packages: evidence counts only for the rule that trusts its signer, and a
check that demands attested evidence counts nothing unsigned."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, evaluate
from chainproof.policy.evidence import (
    ImageEvidence,
    InstalledPackage,
    SbomFact,
    Severity,
    VulnerabilityFinding,
    VulnerabilityScan,
)
from unit.policy.policy_factories import APP, BUILD, NOW, QA, evidence, policy, rule

DENIED = "pkg:npm/event-stream@3.3.6"


def package(purl: str, attestor: str | None) -> InstalledPackage:
    return InstalledPackage("p", "1", purl, "MIT", "projects/p/occurrences/x", attestor)


EVERYONE = ImageEvidence(
    sboms=(
        SbomFact("CycloneDX", "1.5", "projects/p/occurrences/unsigned"),
        SbomFact("SPDX", "2.3", "projects/p/occurrences/qa", QA),
        SbomFact("CycloneDX", "1.4", "projects/p/occurrences/build", BUILD),
    ),
    packages=(
        package("pkg:npm/left-pad@1.0.0", None),
        package("pkg:npm/ok@1.0.0", QA),
        package(DENIED, BUILD),
    ),
)


def test_scoped_to_keeps_unsigned_and_trusted_facts_and_signed_by_only_the_signed() -> None:
    scoped = EVERYONE.scoped_to(frozenset({QA}))
    assert {s.attestor for s in scoped.sboms} == {None, QA}
    assert {p.attestor for p in scoped.packages} == {None, QA}
    signed = scoped.signed_by(frozenset({QA}))
    assert [s.attestor for s in signed.sboms] == [QA]
    assert [p.purl for p in signed.packages] == ["pkg:npm/ok@1.0.0"]
    # signed_by never widens: BUILD's facts are gone after scoping to QA.
    assert scoped.signed_by(frozenset({BUILD})).packages == ()


def decide(checks: dict, ev: ImageEvidence, *, attestors: tuple[str, ...] = ()) -> tuple[str, str]:
    # requireAttestationsBy is left out: only the checks decide.
    body = rule(attestors=attestors, **checks)
    decided = evaluate(policy(body), AdmissionRequest((APP,)), evidence(**_fields(ev)), NOW)
    image = decided.images[0]
    return image.outcome.value, "; ".join(r.reason for r in image.requirements)


def _fields(ev: ImageEvidence) -> dict:
    return {name: getattr(ev, name) for name in ("sboms", "packages", "scans", "vulnerabilities")}


def test_another_attestors_packages_never_count_for_a_rule_that_does_not_trust_it() -> None:
    checks = {"packages": {"deniedPurls": [DENIED], "attestedBy": [QA]}}
    outcome, why = decide(checks, EVERYONE)
    assert outcome == "allowed", why  # the denied package is only in BUILD's signed SBOM
    checks = {"packages": {"deniedPurls": [DENIED], "attestedBy": [BUILD]}}
    outcome, why = decide(checks, EVERYONE)
    assert outcome == "denied" and DENIED in why
    # A rule without attestedBy that trusts only QA sees unsigned and QA's packages: allowed.
    outcome, why = decide({"packages": {"deniedPurls": [DENIED]}}, EVERYONE, attestors=(QA,))
    assert "none of 2 packages is denied" in why, why  # BUILD's package is not seen


def test_sbom_attested_by_counts_only_that_signers_sbom() -> None:
    outcome, why = decide({"sbom": {"formats": ["SPDX"], "attestedBy": QA}}, EVERYONE)
    assert outcome == "allowed" and f"signed by {QA}" in why
    outcome, why = decide({"sbom": {"formats": ["CycloneDX"], "attestedBy": [QA]}}, EVERYONE)
    assert outcome == "denied" and f"no CycloneDX SBOM signed by {QA}" in why
    unsigned_only = ImageEvidence(sboms=EVERYONE.sboms[:1])
    outcome, _ = decide({"sbom": {"attestedBy": [QA]}}, unsigned_only)
    assert outcome == "denied"


def test_vulnerabilities_and_freshness_attested_by_ignore_unsigned_scans_and_findings() -> None:
    ev = ImageEvidence(
        scans=(
            VulnerabilityScan(NOW - timedelta(hours=1), "trivy", "projects/p/occurrences/s1"),
            VulnerabilityScan(NOW - timedelta(hours=30), "scanner", "projects/p/o/s2", QA),
        ),
        vulnerabilities=(
            VulnerabilityFinding("CVE-1", Severity.CRITICAL, True, "a", "projects/p/o/f1"),
            VulnerabilityFinding("CVE-2", Severity.LOW, True, "b", "projects/p/o/f2", QA),
        ),
    )
    vulns = {"vulnerabilities": {"maximumFixableSeverity": "MEDIUM", "attestedBy": [QA]}}
    outcome, why = decide(vulns, ev)
    assert outcome == "allowed", why  # the unsigned CRITICAL is not attested evidence
    outcome, why = decide({"vulnerabilities": {"maximumFixableSeverity": "MEDIUM"}}, ev)
    assert outcome == "denied" and "CVE-1" in why
    fresh = {"freshness": {"maximumScanAgeHours": 24, "attestedBy": [QA]}}
    outcome, why = decide(fresh, ev)
    assert outcome == "denied" and "30.0 h old" in why  # the fresh scan is unsigned
    outcome, _ = decide({"freshness": {"maximumScanAgeHours": 24}}, ev)
    assert outcome == "allowed"


def test_attested_by_joins_the_rules_trusted_attestors() -> None:
    body = rule(
        attestors=(),
        sbom={"attestedBy": [QA]},
        freshness={
            "maximumScanAgeHours": 1,
            "attestedBy": [BUILD],
        },
    )
    parsed = policy(body)
    assert set(parsed.default_admission_rule.trusted_attestors) == {QA, BUILD}
    assert parsed.referenced_attestors() == frozenset({QA, BUILD})
    assert parsed.default_admission_rule.checks.to_dict()["sbom"]["attestedBy"] == [QA]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("qa", "is not of the form projects/PROJECT/attestors/ID"),
        (["projects/p/attestors/qa", "nope"], "attestedBy[1]"),
        ([], "must name at least one attestor"),
        (7, "attestedBy"),
    ],
)
def test_attested_by_is_checked(value: object, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        policy(rule(attestors=(), packages={"deniedPurls": [DENIED], "attestedBy": value}))
    assert problem in " ".join(caught.value.details) + caught.value.message
