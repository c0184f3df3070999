"""Kritis ImageSecurityPolicy, GenericAttestationPolicy and AttestationAuthority."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chainproof.errors import InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    AttestationAuthority,
    Evidence,
    GenericAttestationPolicy,
    ImageEvidence,
    ImageSecurityPolicy,
    IncompleteEvidence,
    Outcome,
    Severity,
    VulnerabilityFinding,
    evaluate_kritis,
    parse_kritis_resource,
    parse_kritis_resources,
)
from chainproof.policy.evidence import UNSIGNED
from unit.policy.policy_factories import APP, NOW, signed

RESOURCES = """
apiVersion: kritis.grafeas.io/v1beta1
kind: ImageSecurityPolicy
metadata: {name: isp, namespace: prod}
spec:
  imageAllowlist: [gcr.io/trusted/tool:1.0]
  packageVulnerabilityRequirements:
    maximumSeverity: MEDIUM
    maximumFixUnavailableSeverity: HIGH
    allowlistCVEs: [providers/goog-vulnz/notes/CVE-2017-1000082]
---
apiVersion: kritis.grafeas.io/v1beta1
kind: GenericAttestationPolicy
metadata: {name: gap, namespace: prod}
spec:
  admissionAllowlistPatterns: [{namePattern: gcr.io/base/*}]
  attestationAuthorityNames: [qa-authority, build-authority]
---
apiVersion: kritis.grafeas.io/v1beta1
kind: AttestationAuthority
metadata: {name: qa-authority, namespace: prod}
spec:
  noteReference: v1beta1/projects/p/notes/qa
  publicKeys:
  - keyType: PGP
    keyId: AAAA
    asciiArmoredPgpPublicKey: "-----BEGIN PGP"
---
apiVersion: kritis.grafeas.io/v1beta1
kind: AttestationAuthority
metadata: {name: build-authority, namespace: prod}
spec:
  noteReference: projects/p/notes/build
  publicKeys:
  - keyType: PKIX
    keyId: //kms/build
    pkixPublicKey: {publicKeyPem: "-----BEGIN PUBLIC KEY", signatureAlgorithm: ECDSA_P256_SHA256}
"""

ALL = parse_kritis_resources(list(yaml.safe_load_all(RESOURCES)))
POLICIES = [r for r in ALL if not isinstance(r, AttestationAuthority)]
AUTHORITIES = [r for r in ALL if isinstance(r, AttestationAuthority)]
BOTH = (
    signed("qa-authority", "AAAA"),
    signed("build-authority", "//kms/build", occurrence="projects/p/occurrences/2"),
)


def kritis(image: str = APP, namespace: str = "prod", **fields: Any) -> Any:
    ev = Evidence(images={image: ImageEvidence(**fields)}) if fields else Evidence()
    return evaluate_kritis(
        POLICIES, AUTHORITIES, AdmissionRequest((image,), namespace=namespace), ev, NOW
    )


def test_resources_parse_with_kritis_meaning() -> None:
    isp, gap, qa, build = ALL
    assert isinstance(isp, ImageSecurityPolicy)
    assert isp.allowlist_cves == {"CVE-2017-1000082"}
    assert isinstance(gap, GenericAttestationPolicy)
    assert gap.attestation_authority_names == ("qa-authority", "build-authority")
    assert isinstance(qa, AttestationAuthority)
    assert qa.as_attestor().note_reference == "projects/p/notes/qa"
    assert isinstance(build, AttestationAuthority)
    assert build.as_attestor().key_ids == {"//kms/build"}


def test_defaults_follow_kritis() -> None:
    isp = parse_kritis_resource(
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "ImageSecurityPolicy",
            "metadata": {"name": "d"},
            "spec": {},
        }
    )
    assert isinstance(isp, ImageSecurityPolicy)
    assert isp.maximum_severity.value == "CRITICAL"
    assert isp.maximum_fix_unavailable_severity.value == "ALLOW_ALL"


def test_legacy_whitelist_spellings_are_read() -> None:
    isp = parse_kritis_resource(
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "ImageSecurityPolicy",
            "metadata": {"name": "old"},
            "spec": {
                "imageWhitelist": ["gcr.io/a/b"],
                "packageVulnerabilityRequirements": {"whitelistCVEs": ["CVE-1"]},
            },
        }
    )
    assert isinstance(isp, ImageSecurityPolicy)
    assert isp.allowlist_cves == {"CVE-1"}
    assert [p.text for p in isp.image_allowlist] == ["gcr.io/a/b"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {
                "apiVersion": "v1",
                "kind": "ImageSecurityPolicy",
                "metadata": {"name": "x"},
                "spec": {},
            },
            "apiVersion: 'v1' is not kritis.grafeas.io/v1beta1",
        ),
        (
            {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "Pod", "metadata": {"name": "x"}},
            "kind: 'Pod' is not one of",
        ),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "ImageSecurityPolicy",
                "metadata": {},
                "spec": {},
            },
            "metadata.name: is required",
        ),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "ImageSecurityPolicy",
                "metadata": {"name": "x"},
                "spec": {"packageVulnerabilityRequirements": {"maximumSeverity": "SEVERE"}},
            },
            "spec.packageVulnerabilityRequirements.maximumSeverity: 'SEVERE' is not one of",
        ),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "GenericAttestationPolicy",
                "metadata": {"name": "x"},
                "spec": {"attestationAuthorityNames": []},
            },
            "spec.attestationAuthorityNames: must name at least one authority",
        ),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "AttestationAuthority",
                "metadata": {"name": "x"},
                "spec": {"noteReference": "notes/x"},
            },
            "spec.noteReference: 'notes/x' is not of the form",
        ),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "AttestationAuthority",
                "metadata": {"name": "x"},
                "spec": {
                    "noteReference": "projects/p/notes/n",
                    "publicKeys": [
                        {
                            "keyType": "PKIX",
                            "pkixPublicKey": {
                                "publicKeyPem": "x",
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            },
                        }
                    ],
                },
            },
            "spec.publicKeys[0].keyId: is required for a PKIX key",
        ),
    ],
)
def test_kritis_parse_errors_have_paths(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_kritis_resource(doc)
    assert any(d.startswith(expected) for d in info.value.details), info.value.details


def test_multi_document_errors_are_prefixed_by_index() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_kritis_resources(
            [
                None,
                {
                    "apiVersion": "kritis.grafeas.io/v1beta1",
                    "kind": "Nope",
                    "metadata": {"name": "x"},
                },
            ]
        )
    assert info.value.details[0].startswith("[1].kind:")


def test_gap_needs_every_authority_of_one_policy() -> None:
    assert kritis(attestations=BOTH).outcome is Outcome.ALLOWED
    d = kritis(attestations=BOTH[:1])
    assert d.outcome is Outcome.DENIED
    gap = next(r for r in d.images[0].requirements if r.kind == "kritis-gap")
    assert "build-authority" in gap.reason


def test_any_satisfied_gap_suffices() -> None:
    extra = parse_kritis_resource(
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "GenericAttestationPolicy",
            "metadata": {"name": "qa-only", "namespace": "prod"},
            "spec": {"attestationAuthorityNames": ["qa-authority"]},
        }
    )
    assert isinstance(extra, GenericAttestationPolicy)
    ev = Evidence(images={APP: ImageEvidence(attestations=BOTH[:1])})
    d = evaluate_kritis(
        [*POLICIES, extra], AUTHORITIES, AdmissionRequest((APP,), namespace="prod"), ev, NOW
    )
    assert d.outcome is Outcome.ALLOWED


def test_gap_allowlist_and_unknown_authority() -> None:
    # GAP-allowlisted: no attestation needed (the ISP still wants a digest).
    assert kritis(image="gcr.io/base/debian@sha256:" + "9" * 64).outcome is Outcome.ALLOWED
    gap = parse_kritis_resource(
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "GenericAttestationPolicy",
            "metadata": {"name": "g"},
            "spec": {"attestationAuthorityNames": ["ghost"]},
        }
    )
    assert isinstance(gap, GenericAttestationPolicy)
    d = evaluate_kritis(
        [gap], AUTHORITIES, AdmissionRequest((APP,), namespace="prod"), Evidence(), NOW
    )
    assert d.outcome is Outcome.DENIED
    assert "ghost, which does not exist" in d.images[0].requirements[0].reason


@pytest.mark.parametrize(
    ("finding", "outcome"),
    [
        (VulnerabilityFinding("CVE-1", Severity.MEDIUM, True), Outcome.ALLOWED),
        (VulnerabilityFinding("CVE-1", Severity.HIGH, True), Outcome.DENIED),
        (VulnerabilityFinding("CVE-1", Severity.HIGH, False), Outcome.ALLOWED),
        (VulnerabilityFinding("CVE-1", Severity.CRITICAL, False), Outcome.DENIED),
        (VulnerabilityFinding("CVE-2017-1000082", Severity.CRITICAL, True), Outcome.ALLOWED),
        # Kritis compares enum numbers: an unrated finding is within any threshold.
        (VulnerabilityFinding("CVE-1", Severity.SEVERITY_UNSPECIFIED, True), Outcome.ALLOWED),
    ],
)
def test_isp_thresholds(finding: VulnerabilityFinding, outcome: Outcome) -> None:
    assert kritis(attestations=BOTH, vulnerabilities=(finding,)).outcome is outcome


def test_isp_requires_a_fully_qualified_image_unless_allowlisted() -> None:
    d = kritis(image="gcr.io/x/app:1.0")
    isp = next(r for r in d.images[0].requirements if r.kind == "kritis-isp")
    assert not isp.passed
    assert "not a fully qualified image" in isp.reason
    allowed = kritis(image="gcr.io/trusted/tool:1.0", attestations=())
    isp2 = next(r for r in allowed.images[0].requirements if r.kind == "kritis-isp")
    assert isp2.passed


def test_policies_of_other_namespaces_do_not_apply_and_none_denies_by_default() -> None:
    d = kritis(namespace="web", attestations=BOTH)
    assert d.outcome is Outcome.DENIED
    assert "empty requirement set denies" in d.images[0].requirements[0].reason
    admitted = evaluate_kritis(
        POLICIES,
        AUTHORITIES,
        AdmissionRequest((APP,), namespace="web"),
        Evidence(),
        NOW,
        admit_without_policies=True,
    )
    assert admitted.outcome is Outcome.ALLOWED


def test_isp_does_not_decide_on_evidence_read_in_part() -> None:
    """Issue 9, item 4, for Kritis resources too: a bound hit on the findings denies."""
    d = kritis(
        attestations=BOTH,
        incomplete=(IncompleteEvidence(UNSIGNED, "more than 10000 occurrences"),),
    )
    assert d.outcome is Outcome.DENIED
    assert "could not be read in full" in " ".join(d.denial_reasons())


def test_signed_findings_of_an_authority_of_another_namespace_do_not_count() -> None:
    """Issue 9, item 1, for Kritis: evidence counts only from authorities that apply in the
    namespace (those findings count where their authority applies)."""
    foreign = VulnerabilityFinding("CVE-1", Severity.CRITICAL, True, attestor="elsewhere")
    assert kritis(attestations=BOTH, vulnerabilities=(foreign,)).outcome is Outcome.ALLOWED
