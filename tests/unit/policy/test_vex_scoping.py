"""The judge applies a VEX statement only to the finding, product and subcomponent it names.

Two attacks that used to work: a ``not_affected`` for CVE-X in package A silenced CVE-X in every
package of the image; and an OpenVEX product was matched by looking for the image digest as a
substring of the product's serialised JSON, so a product that merely *mentioned* the digest
(in a note, a URL, another field) counted as the image.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chainproof.domain.images import parse_image_reference
from chainproof.ingest.model import VexScope
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    Severity,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
    VulnerabilityScan,
    evaluate,
)
from chainproof.policy.evidence import VerifiedAttestation
from chainproof.services.judge.evidence import _openvex
from unit.policy.policy_factories import APP, NOW, evidence, policy, rule, signed

SCAN = (VulnerabilityScan(NOW - timedelta(hours=1), "trivy", "projects/p/occurrences/scan"),)
THRESHOLDS = {"vulnerabilities": {"maximumFixableSeverity": "MEDIUM"}}
OPENSSL = "pkg:deb/debian/openssl@3.0.11-1?arch=amd64"
CURL = "pkg:deb/debian/curl@7.88.1-10?arch=amd64"
IMAGE = parse_image_reference(APP)


def _finding(package: str, purl: str) -> VulnerabilityFinding:
    return VulnerabilityFinding(
        "CVE-2024-9",
        Severity.CRITICAL,
        True,
        package,
        f"projects/p/occurrences/{package}",
        purl=purl,
    )


def judge(**fields: Any) -> Decision:
    fields.setdefault("attestations", (signed(),))
    fields.setdefault("scans", SCAN)
    return evaluate(policy(rule(**THRESHOLDS)), AdmissionRequest((APP,)), evidence(**fields), NOW)


def _vuln_result(d: Decision):
    (found,) = [r for r in d.images[0].requirements if r.kind == "vulnerabilities"]
    return found


def test_assessment_on_one_finding_does_not_silence_the_cve_elsewhere():
    findings = (_finding("openssl", OPENSSL), _finding("curl", CURL))
    statement = VexStatement(
        "CVE-2024-9", VexStatus.NOT_AFFECTED, "n", finding="projects/p/occurrences/openssl"
    )
    r = _vuln_result(judge(vulnerabilities=findings, vex=(statement,)))
    assert not r.passed
    assert "in curl" in r.reason and "in openssl" not in r.reason


def test_subcomponent_scope_resolves_only_that_package():
    findings = (_finding("openssl", OPENSSL), _finding("curl", CURL))
    scoped = VexStatement(
        "CVE-2024-9",
        VexStatus.NOT_AFFECTED,
        "vex",
        scopes=(VexScope(IMAGE.canonical, ("pkg:deb/debian/openssl",)),),
    )
    r = _vuln_result(judge(vulnerabilities=findings, vex=(scoped,)))
    assert not r.passed and "in curl" in r.reason
    both = VexStatement(
        "CVE-2024-9",
        VexStatus.NOT_AFFECTED,
        "vex",
        scopes=(VexScope(IMAGE.canonical, ("pkg:deb/debian/openssl", "pkg:deb/debian/curl")),),
    )
    assert _vuln_result(judge(vulnerabilities=findings, vex=(both,))).passed


def test_statement_about_another_image_resolves_nothing():
    other = parse_image_reference(f"gcr.io/x/app@sha256:{'0' * 64}")
    statement = VexStatement(
        "CVE-2024-9", VexStatus.NOT_AFFECTED, "vex", scopes=(VexScope(other.canonical),)
    )
    r = _vuln_result(judge(vulnerabilities=(_finding("openssl", OPENSSL),), vex=(statement,)))
    assert not r.passed


def _attestation(statements: list[dict[str, Any]]) -> VerifiedAttestation:
    return VerifiedAttestation(
        attestor="projects/p/attestors/qa",
        key_id="k",
        occurrence="projects/p/occurrences/vex",
        kind=signed().kind,
        predicate_type="https://openvex.dev/ns/v0.2.0",
        predicate={"statements": statements},
    )


def test_openvex_product_mentioning_the_digest_elsewhere_is_not_the_image():
    digest = (IMAGE.digest or "").removeprefix("sha256:")
    att = _attestation(
        [
            {
                "vulnerability": {"name": "CVE-2024-9"},
                "status": "not_affected",
                "products": [
                    {
                        "@id": "pkg:oci/other@sha256%3A" + "1" * 64,
                        "identifiers": {"note": f"built from layers incl. {digest}"},
                    }
                ],
            }
        ]
    )
    assert _openvex(att, IMAGE) == []


def test_openvex_statement_for_the_image_carries_its_subcomponents():
    digest = IMAGE.digest or ""
    att = _attestation(
        [
            {
                "vulnerability": {"name": "CVE-2024-9"},
                "status": "not_affected",
                "products": [
                    {
                        "@id": "pkg:oci/app@" + digest.replace(":", "%3A"),
                        "subcomponents": [{"@id": "pkg:deb/debian/openssl"}],
                    }
                ],
            }
        ]
    )
    (statement,) = _openvex(att, IMAGE)
    assert statement.scopes == (VexScope(digest, ("pkg:deb/debian/openssl",)),)
    findings = (_finding("openssl", OPENSSL), _finding("curl", CURL))
    r = _vuln_result(judge(vulnerabilities=findings, vex=(statement,)))
    assert not r.passed and "in curl" in r.reason and "1 resolved" not in r.reason
