"""chainproofChecks: thresholds, VEX, freshness, predicates, provenance, repositories and CEL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chainproof.errors import InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    ProvenanceFact,
    RequirementResult,
    Severity,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
    VulnerabilityScan,
    evaluate,
)
from chainproof.policy.checks.cel import CelCheck
from unit.policy.policy_factories import (
    APP,
    BUILD,
    KEY_BUILD,
    NOW,
    QA,
    evidence,
    policy,
    rule,
    signed,
)

SCAN = (VulnerabilityScan(NOW - timedelta(hours=1), "trivy", "projects/p/occurrences/scan"),)
SLSA_V1 = "https://slsa.dev/provenance/v1"


def judge(checks: dict[str, Any], *, attestors: tuple[str, ...] = (QA,), **fields: Any) -> Decision:
    """The default rule requires ``attestors`` (only their evidence counts) and ``checks``."""
    fields.setdefault("attestations", (signed(),))
    return evaluate(
        policy(rule(attestors=attestors, **checks)),
        AdmissionRequest((APP,)),
        evidence(**fields),
        NOW,
    )


def result(d: Decision, kind: str) -> RequirementResult:
    (found,) = [r for r in d.images[0].requirements if r.kind == kind]
    return found


def vuln(cve: str, severity: Severity, fix: bool = True) -> VulnerabilityFinding:
    return VulnerabilityFinding(cve, severity, fix, "openssl", f"projects/p/occurrences/{cve}")


THRESHOLDS = {
    "vulnerabilities": {"maximumFixableSeverity": "MEDIUM", "maximumUnfixableSeverity": "HIGH"}
}


@pytest.mark.parametrize(
    ("finding", "passed"),
    [
        (vuln("CVE-1", Severity.LOW), True),
        (vuln("CVE-1", Severity.MEDIUM), True),  # at the threshold passes
        (vuln("CVE-1", Severity.HIGH), False),
        (vuln("CVE-1", Severity.HIGH, fix=False), True),  # unfixable threshold is HIGH
        (vuln("CVE-1", Severity.CRITICAL, fix=False), False),
        (vuln("CVE-1", Severity.SEVERITY_UNSPECIFIED, fix=False), False),  # unrated = CRITICAL
    ],
)
def test_vulnerability_thresholds(finding: VulnerabilityFinding, passed: bool) -> None:
    d = judge(THRESHOLDS, vulnerabilities=(finding,), scans=SCAN)
    r = result(d, "vulnerabilities")
    assert r.passed is passed
    assert r.occurrences == ("projects/p/occurrences/CVE-1",)
    if not passed:
        assert "CVE-1 in openssl" in r.reason


@pytest.mark.parametrize(
    ("fixable", "unfixable", "findings", "passed"),
    [
        ("BLOCK_ALL", "ALLOW_ALL", (vuln("CVE-1", Severity.MINIMAL),), False),
        ("BLOCK_ALL", "ALLOW_ALL", (vuln("CVE-1", Severity.CRITICAL, fix=False),), True),
        ("ALLOW_ALL", "BLOCK_ALL", (vuln("CVE-1", Severity.CRITICAL),), True),
        ("ALLOW_ALL", "BLOCK_ALL", (vuln("CVE-1", Severity.LOW, fix=False),), False),
        ("BLOCK_ALL", "BLOCK_ALL", (), True),
    ],
)
def test_special_threshold_values(
    fixable: str, unfixable: str, findings: tuple[VulnerabilityFinding, ...], passed: bool
) -> None:
    checks = {
        "vulnerabilities": {
            "maximumFixableSeverity": fixable,
            "maximumUnfixableSeverity": unfixable,
        }
    }
    assert (
        result(judge(checks, vulnerabilities=findings, scans=SCAN), "vulnerabilities").passed
        is passed
    )


def test_allowed_and_blocked_cves() -> None:
    checks = {
        "vulnerabilities": {
            "maximumFixableSeverity": "LOW",
            "allowedCves": ["CVE-9"],
            "blockedCves": ["providers/goog-vulnz/notes/cve-5"],
        }
    }
    allowed = judge(checks, vulnerabilities=(vuln("CVE-9", Severity.CRITICAL),), scans=SCAN)
    assert result(allowed, "vulnerabilities").passed
    blocked = judge(checks, vulnerabilities=(vuln("CVE-5", Severity.MINIMAL),), scans=SCAN)
    r = result(blocked, "vulnerabilities")
    assert not r.passed
    assert "CVE-5 in openssl is blocked by the policy" in r.reason


@pytest.mark.parametrize(
    ("status", "passed"),
    [
        (VexStatus.NOT_AFFECTED, True),
        (VexStatus.FIXED, True),
        (VexStatus.AFFECTED, False),
        (VexStatus.UNDER_INVESTIGATION, False),
    ],
)
def test_vex_not_affected_or_fixed_removes_the_finding(status: VexStatus, passed: bool) -> None:
    d = judge(
        THRESHOLDS,
        vulnerabilities=(vuln("CVE-2024-1", Severity.CRITICAL),),
        vex=(VexStatement("cve-2024-1", status, "projects/p/occurrences/vex"),),
        scans=SCAN,
    )
    assert result(d, "vulnerabilities").passed is passed


def test_vex_for_another_cve_changes_nothing() -> None:
    d = judge(
        THRESHOLDS,
        vulnerabilities=(vuln("CVE-2024-1", Severity.CRITICAL),),
        vex=(VexStatement("CVE-2024-2", VexStatus.NOT_AFFECTED, "x"),),
        scans=SCAN,
    )
    assert not result(d, "vulnerabilities").passed


def test_vex_removes_even_a_blocked_cve() -> None:
    checks = {"vulnerabilities": {"blockedCves": ["CVE-7"]}}
    d = judge(
        checks,
        vulnerabilities=(vuln("CVE-7", Severity.LOW),),
        vex=(VexStatement("CVE-7", VexStatus.NOT_AFFECTED, "x"),),
        scans=SCAN,
    )
    assert result(d, "vulnerabilities").passed


def test_no_scan_means_no_proof_unless_waived() -> None:
    d = judge(THRESHOLDS)
    assert not result(d, "vulnerabilities").passed
    assert "no vulnerability scan" in result(d, "vulnerabilities").reason
    waived = {"vulnerabilities": {"maximumFixableSeverity": "MEDIUM", "requireScan": False}}
    assert result(judge(waived), "vulnerabilities").passed


@pytest.mark.parametrize(
    ("age", "passed"),
    [
        (timedelta(hours=24), True),  # exactly at the limit passes
        (timedelta(hours=24, microseconds=1), False),
        (timedelta(hours=23, minutes=59, seconds=59), True),
        (timedelta(0), True),
        (timedelta(days=3), False),
        (-timedelta(minutes=4), True),  # small clock skew
    ],
)
def test_freshness_boundaries_are_exact(age: timedelta, passed: bool) -> None:
    scans = (VulnerabilityScan(NOW - age, "trivy", "projects/p/occurrences/s"),)
    r = result(judge({"freshness": {"maximumScanAgeHours": 24}}, scans=scans), "freshness")
    assert r.passed is passed
    assert r.occurrences == ("projects/p/occurrences/s",)


def test_freshness_uses_the_newest_scan_and_ignores_future_ones() -> None:
    scans = (
        VulnerabilityScan(NOW - timedelta(hours=48), "trivy"),
        VulnerabilityScan(NOW - timedelta(hours=2), "grype"),
    )
    assert result(
        judge({"freshness": {"maximumScanAgeHours": 24}}, scans=scans), "freshness"
    ).passed
    future = (VulnerabilityScan(NOW + timedelta(hours=1), "trivy"),)
    r = result(judge({"freshness": {"maximumScanAgeHours": 24}}, scans=future), "freshness")
    assert not r.passed
    assert "dated in the future" in r.reason


def test_missing_scan_fails_freshness() -> None:
    r = result(judge({"freshness": {"maximumScanAgeHours": 24}}), "freshness")
    assert not r.passed
    assert "scan the image" in r.reason


@pytest.mark.parametrize(
    ("required", "predicate_type", "passed"),
    [
        ("SLSA_PROVENANCE", "https://slsa.dev/provenance/v1", True),
        ("SLSA_PROVENANCE", "https://slsa.dev/provenance/v0.2", True),
        ("SBOM", "https://cyclonedx.org/bom", True),
        ("SBOM", "https://spdx.dev/Document/v2.3", True),
        ("CYCLONEDX_SBOM", "https://spdx.dev/Document", False),
        ("VULNERABILITY_SCAN", "https://cosign.sigstore.dev/attestation/vuln/v1", True),
        ("https://example.com/review/v1", "https://example.com/review/v1", True),
        ("https://example.com/review/v1", "https://example.com/review/v2", False),
    ],
)
def test_required_predicates(required: str, predicate_type: str, passed: bool) -> None:
    checks = {"requiredPredicates": [{"predicateType": required, "attestors": [BUILD]}]}
    att = signed(
        BUILD,
        KEY_BUILD,
        occurrence="projects/p/occurrences/p",
        predicate_type=predicate_type,
        predicate={},
    )
    r = result(judge(checks, attestations=(signed(), att)), "predicate")
    assert r.passed is passed
    if not passed:
        assert f"of predicate type {predicate_type}" in r.reason


def test_predicate_signed_by_the_wrong_attestor_fails() -> None:
    checks = {"requiredPredicates": [{"predicateType": "SBOM", "attestors": [BUILD]}]}
    att = signed(
        QA,
        occurrence="projects/p/occurrences/p",
        predicate_type="https://cyclonedx.org/bom",
        predicate={},
    )
    assert not result(judge(checks, attestations=(signed(), att)), "predicate").passed


def test_predicate_requirement_needs_every_named_attestor() -> None:
    checks = {"requiredPredicates": [{"predicateType": "SBOM", "attestors": [BUILD, QA]}]}
    att = signed(
        BUILD,
        KEY_BUILD,
        occurrence="projects/p/occurrences/p",
        predicate_type="https://cyclonedx.org/bom",
        predicate={},
    )
    d = judge(checks, attestations=(att,))
    assert [r.passed for r in d.images[0].requirements if r.kind == "predicate"] == [True, False]
    assert not d.allowed


def provenance(builder: str, source: str) -> Any:
    return signed(
        BUILD,
        KEY_BUILD,
        occurrence="projects/p/occurrences/prov",
        predicate_type=SLSA_V1,
        predicate={
            "buildDefinition": {"externalParameters": {"source": source}},
            "runDetails": {"builder": {"id": builder}},
        },
    )


GH = "https://github.com/actions/runner/github-hosted"


@pytest.mark.parametrize(
    ("builder", "passed"),
    [
        (GH, True),
        ("https://evil.example/builder", False),
        ("https://github.com/actions/runner/x/y", False),
    ],
)
def test_trusted_builders_from_verified_provenance(builder: str, passed: bool) -> None:
    checks = {"trustedBuilders": ["https://github.com/actions/runner/*"]}
    r = result(
        judge(
            checks,
            attestors=(QA, BUILD),
            attestations=(signed(), provenance(builder, "git+https://github.com/acme/app")),
        ),
        "trusted-builder",
    )
    assert r.passed is passed
    assert r.occurrences == ("projects/p/occurrences/prov",)


@pytest.mark.parametrize(
    ("source", "passed"),
    [
        ("git+https://github.com/acme/app@refs/heads/main", True),
        ("https://github.com/acme/app.git", True),
        ("git+https://github.com/mallory/app", False),
    ],
)
def test_trusted_sources_from_verified_provenance(source: str, passed: bool) -> None:
    checks = {"trustedSourceRepositories": ["github.com/acme/*"]}
    r = result(
        judge(checks, attestors=(QA, BUILD), attestations=(signed(), provenance(GH, source))),
        "trusted-source",
    )
    assert r.passed is passed


def test_slsa_v02_provenance_is_read_too() -> None:
    v02 = signed(
        BUILD,
        KEY_BUILD,
        occurrence="projects/p/occurrences/v02",
        predicate_type="https://slsa.dev/provenance/v0.2",
        predicate={
            "builder": {"id": GH},
            "invocation": {
                "configSource": {"uri": "git+https://github.com/acme/app@refs/heads/main"}
            },
        },
    )
    d = judge(
        {"trustedBuilders": [GH], "trustedSourceRepositories": ["github.com/acme/app"]},
        attestors=(QA, BUILD),
        attestations=(signed(), v02),
    )
    assert result(d, "trusted-builder").passed
    assert result(d, "trusted-source").passed


def test_provenance_facts_from_the_service_are_used_and_all_must_be_trusted() -> None:
    facts = (
        ProvenanceFact(
            GH, ("git+https://github.com/acme/app",), "projects/p/occurrences/f1", BUILD
        ),
        ProvenanceFact(
            "https://evil.example/b",
            ("git+https://github.com/acme/app",),
            "projects/p/occurrences/f2",
            BUILD,
        ),
    )
    r = result(
        judge({"trustedBuilders": [GH]}, attestors=(QA, BUILD), provenance=facts),
        "trusted-builder",
    )
    assert not r.passed
    assert "https://evil.example/b" in r.reason


def test_no_provenance_fails_builder_check() -> None:
    r = result(judge({"trustedBuilders": [GH]}), "trusted-builder")
    assert not r.passed
    assert "no verified SLSA provenance" in r.reason


@pytest.mark.parametrize(
    ("patterns", "passed"), [(["gcr.io/x/**"], True), (["gcr.io/y/*", "eu.gcr.io/x/*"], False)]
)
def test_trusted_repositories(patterns: list[str], passed: bool) -> None:
    assert result(judge({"trustedRepositories": patterns}), "trusted-repository").passed is passed


@pytest.mark.parametrize(
    ("expression", "passed"),
    [
        ('attestations.exists(a, a.attestor == "projects/p/attestors/qa")', True),
        ('attestations.exists(a, a.predicateType == "https://slsa.dev/provenance/v1")', False),
        ('image.registry == "gcr.io" && image.digest.startsWith("sha256:")', True),
        ('request.namespace == "prod"', False),
        ("size(vulnerabilities) == 0", True),
    ],
)
def test_cel_expressions(expression: str, passed: bool) -> None:
    r = result(judge({"cel": expression}), "cel")
    assert r.passed is passed


def test_cel_sees_predicates_and_reports_evaluation_errors() -> None:
    ok = judge(
        {"cel": 'attestations.exists(a, a.predicate.runDetails.builder.id == "' + GH + '")'},
        attestors=(QA, BUILD),
        attestations=(signed(), provenance(GH, "x")),
    )
    assert result(ok, "cel").passed
    broken = judge({"cel": "attestations[5].keyId == 'x'"})
    r = result(broken, "cel")
    assert not r.passed
    assert "could not be evaluated" in r.reason or "failed" in r.reason


def test_cel_non_boolean_result_fails() -> None:
    r = result(judge({"cel": "1 + 1"}), "cel")
    assert not r.passed
    assert "not a boolean" in r.reason


def test_checks_alone_are_a_requirement_set() -> None:
    p = policy(
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "chainproofChecks": {"trustedRepositories": ["gcr.io/x/*"]},
        }
    )
    assert evaluate(p, AdmissionRequest((APP,)), evidence(), NOW).allowed


def test_cel_undeclared_name_is_a_policy_error() -> None:
    with pytest.raises(InvalidArgument) as info:
        CelCheck.compile("attestation.exists(a, true)")  # a typo for "attestations"
    assert "does not compile" in info.value.message
    assert "attestation" in info.value.message


def test_cel_builds_only_the_variables_it_uses() -> None:
    assert CelCheck.compile('image.registry == "gcr.io"').variables == {"image"}
    both = CelCheck.compile("size(vulnerabilities) == 0 && request.namespace == 'prod'")
    assert both.variables == {"vulnerabilities", "request"}
    # A comprehension variable named like a top-level one does not need the outer variable.
    shadow = CelCheck.compile("[1, 2].all(image, image > 0)")
    assert shadow.variables == frozenset()


def test_cel_missing_field_denies_with_the_runtime_message() -> None:
    r = result(judge({"cel": "attestations.exists(a, a.predicate.nope == 1)"}), "cel")
    assert not r.passed
    assert "could not be evaluated" in r.reason
