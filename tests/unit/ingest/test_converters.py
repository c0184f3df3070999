"""Each converter on real documents: what it must make of them, field by field."""

from __future__ import annotations

import base64
import json

import pytest

from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.ingest import DocumentError, Format, convert, detect_format
from chainproof.ingest.facts import purl_of_package
from unit.ingest.ingest_fixtures import IMAGE, context, fixture


def _by_kind(conv, kind):
    return [o for o in conv.occurrences if o["kind"] == kind]


def test_every_fact_is_a_valid_grafeas_message():
    for rel in (
        "scans/trivy/alpine-310.json",
        "scans/trivy/npm-cyclonedx.cdx.json",
        "scans/grype/imgs-presenter.json",
        "sbom/alpine-spdx.json",
        "sbom/alpine-cyclonedx.json",
        "vex/rhsa-csaf.json",
        "vex/open-vex-not-affected.json",
    ):
        raw = fixture(rel)
        conv = convert(raw, context(raw))
        for note in conv.notes.values():
            note_from_json(note)
        for occ in conv.occurrences:
            msg = occurrence_from_json(occ)
            assert msg.resource_uri == IMAGE.canonical


def test_trivy_alpine_findings():
    raw = fixture("scans/trivy/alpine-310.json")
    conv = convert(raw, context(raw))
    assert conv.format is Format.TRIVY_JSON
    assert conv.scan is not None and conv.scan.scanner == "trivy"
    assert conv.scan.scanned_at.isoformat() == "2021-08-25T12:20:30+00:00"
    vulns = _by_kind(conv, "VULNERABILITY")
    assert len(vulns) == 4
    first = vulns[0]
    assert first["noteName"] == "projects/proj/notes/CVE-2019-1549"
    issue = first["vulnerability"]["packageIssue"][0]
    assert issue["affectedPackage"] == "libcrypto1.1"
    assert issue["affectedVersion"]["fullName"] == "1.1.1c-r0"
    assert issue["fixedVersion"]["fullName"] == "1.1.1d-r0"
    assert first["vulnerability"]["effectiveSeverity"] == "MEDIUM"
    assert first["vulnerability"]["cvssScore"] == 5.3
    assert first["vulnerability"]["fixAvailable"] is True
    assert (
        "purl=pkg:apk/alpine/libcrypto1.1@1.1.1c-r0?arch=x86_64&distro=3.10.2"
        in (first["vulnerability"]["extraDetails"])
    )
    assert _by_kind(conv, "DISCOVERY")[0]["discovery"]["lastScanTime"] == "2021-08-25T12:20:30Z"


def test_trivy_will_not_fix_is_not_fixable():
    raw = fixture("scans/trivy/centos-7.json")
    conv = convert(raw, context(raw))
    statuses = {
        o["vulnerability"]["packageIssue"][0]["affectedPackage"]: o["vulnerability"]["fixAvailable"]
        for o in _by_kind(conv, "VULNERABILITY")
    }
    doc = json.loads(raw)
    expected = {
        v["PkgName"]: v.get("Status") == "fixed" and bool(v.get("FixedVersion"))
        for r in doc["Results"]
        for v in r["Vulnerabilities"]
    }
    assert statuses == expected
    assert False in statuses.values()


def test_trivy_packages_carry_canonical_purls():
    raw = fixture("scans/trivy/pip.json")
    conv = convert(raw, context(raw))
    packages = _by_kind(conv, "PACKAGE")
    assert len(packages) == 7
    purls = {purl_of_package(p["package"]) for p in packages}
    assert "pkg:pypi/werkzeug@0.11" in purls


def test_grype_matches():
    raw = fixture("scans/grype/imgs-presenter.json")
    conv = convert(raw, context(raw))
    assert conv.format is Format.GRYPE_JSON
    vulns = _by_kind(conv, "VULNERABILITY")
    assert [v["noteName"].rsplit("/", 1)[1] for v in vulns] == ["CVE-1999-0001", "CVE-1999-0002"]
    assert vulns[0]["vulnerability"]["fixAvailable"] is True
    assert vulns[0]["vulnerability"]["packageIssue"][0]["fixedVersion"]["fullName"] == "1.2.1"
    assert vulns[1]["vulnerability"]["fixAvailable"] is False
    assert vulns[1]["vulnerability"]["effectiveSeverity"] == "CRITICAL"
    # grype's zero timestamp ("") means the scan time is unknown, not the year 1
    assert conv.scan is not None and conv.scan.scanned_at is None


def test_trivy_cyclonedx_is_sbom_and_scan():
    raw = fixture("scans/trivy/npm-cyclonedx.cdx.json")
    assert detect_format(raw) is Format.CYCLONEDX_JSON
    conv = convert(raw, context(raw))
    assert conv.format_version == "1.7"
    assert len(_by_kind(conv, "PACKAGE")) == 12  # the lock file itself is not a package
    (vuln,) = _by_kind(conv, "VULNERABILITY")
    assert vuln["vulnerability"]["packageIssue"][0]["affectedPackage"] == "jquery"
    assert vuln["vulnerability"]["packageIssue"][0]["fixedVersion"]["fullName"] == "3.4.0"
    assert vuln["vulnerability"]["cvssScore"] == 6.1
    assert conv.scan is not None and conv.scan.scanner == "trivy"


def test_cyclonedx_sbom_packages():
    raw = fixture("sbom/alpine-cyclonedx.json")
    conv = convert(raw, context(raw))
    packages = _by_kind(conv, "PACKAGE")
    doc = json.loads(raw)
    with_version = [c for c in doc["components"] if c.get("version") and c.get("purl")]
    assert len(packages) == len(with_version)
    musl = next(p["package"] for p in packages if p["package"]["name"] == "musl")
    # syft 0.58 wrote pkg:alpine/…; the canonical form sorts the qualifiers
    assert purl_of_package(musl) == (
        "pkg:alpine/musl@1.2.3-r0?arch=x86_64&distro=alpine-3.16.2&upstream=musl"
    )
    assert musl["architecture"] == "X64"
    assert musl["license"]["expression"] == "MIT"
    (ref,) = _by_kind(conv, "SBOM_REFERENCE")
    pred = ref["sbomReference"]["payload"]["predicate"]
    assert pred["digest"]["sha256"] == context(raw).document_digest.removeprefix("sha256:")


def test_spdx_sbom_packages():
    raw = fixture("sbom/alpine-spdx.json")
    conv = convert(raw, context(raw))
    assert conv.format is Format.SPDX_JSON and conv.format_version == "2.2"
    names = {p["package"]["name"] for p in _by_kind(conv, "PACKAGE")}
    assert {"musl", "busybox", "alpine-baselayout"} <= names


def test_spdx_without_versions_warns_per_package():
    raw = fixture("sbom/small-spdx.json")
    conv = convert(raw, context(raw))
    assert _by_kind(conv, "PACKAGE") == []
    assert len(conv.warnings) == 3
    assert "has no versionInfo" in conv.warnings[0]


@pytest.mark.parametrize(
    ("rel", "fmt", "where"),
    [
        ("sbom/invalid-cyclonedx.json", Format.CYCLONEDX_JSON, "bomFormat"),
        ("sbom/invalid-spdx.json", Format.SPDX_JSON, "spdxVersion"),
    ],
)
def test_invalid_documents_are_refused_whole(rel, fmt, where):
    raw = fixture(rel)
    with pytest.raises(DocumentError) as err:
        convert(raw, context(raw), fmt)
    assert err.value.where == where
    with pytest.raises(DocumentError):
        convert(raw, context(raw))  # undetectable as anything


def test_broken_json_says_line_and_column():
    with pytest.raises(DocumentError) as err:
        convert(b'{"SchemaVersion": 2,\n "Results": [}', context(b""), Format.TRIVY_JSON)
    assert err.value.where == "line 2 column 14"


def test_openvex_scoped_to_product_and_subcomponents():
    raw = fixture("vex/open-vex-not-affected.json")
    conv = convert(raw, context(raw))
    (claim,) = conv.vex
    assert claim.status == "NOT_AFFECTED"
    assert claim.justification == "INLINE_MITIGATIONS_ALREADY_EXIST"
    assert claim.scope.product == (
        "sha256:23a264e6e429852221a963e9f17338ba3f5796dc7086e46439a6f4482cf6e0cb"
    )
    assert claim.scope.subcomponents == (
        "pkg:apk/alpine/git@2.38.1-r0?arch=x86_64",
        "pkg:apk/alpine/git@2.38.1-r0?arch=ppc64le",
    )
    note = conv.notes[claim.note_id]["vulnerabilityAssessment"]
    assert note["assessment"]["vulnerabilityId"] == "CVE-2023-12345"
    assert note["product"]["genericUri"] == claim.scope.product


def test_cyclonedx_vex():
    raw = fixture("vex/cyclonedx-unaffected-vex.json")
    conv = convert(raw, context(raw))
    (claim,) = conv.vex
    assert claim.vulnerability == "CVE-2020-25649"
    assert claim.status == "NOT_AFFECTED"
    assert claim.scope.product == IMAGE.canonical
    assert claim.scope.subcomponents == (
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0",
    ) or all(s.startswith("pkg:") for s in claim.scope.subcomponents)


def test_csaf_red_hat_advisory_scopes_component_in_product():
    raw = fixture("vex/rhsa-csaf.json")
    conv = convert(raw, context(raw))
    assert conv.vex, conv.warnings[:3]
    for claim in conv.vex:
        assert claim.vulnerability.startswith("CVE-")
        assert claim.scope.product.startswith("pkg:") or claim.scope.product.startswith("sha256:")
    # products without a purl are named, never silently dropped
    assert any("has no purl or image digest" in w for w in conv.warnings)


def test_csaf_example_without_identifiers_is_warned_not_guessed():
    raw = fixture("vex/csaf-2022-evd-uc-01-na-001.json")
    conv = convert(raw, context(raw))
    assert conv.vex == []
    assert "CSAFPID-0001" in conv.warnings[0]


def test_slsa_v02_in_dsse_envelope_binds_its_own_subject():
    raw = fixture("provenance/oci-dsse-att.json")
    conv = convert(raw, context(raw, image=None))
    assert conv.format is Format.DSSE_ENVELOPE
    assert len(conv.envelopes) == 1
    assert conv.subject is not None
    assert conv.subject.canonical == (
        "ttl.sh/b46737a24c11fd47c240f357a558be31/example-sample@sha256:"
        "9e183c89765d92a440f44ac7059385c778cbadad0ee8fe3208360efb07c0ba09"
    )
    (build,) = _by_kind(conv, "BUILD")
    assert build["build"]["provenance"]["builderVersion"] == "https://tekton.dev/chains/v2"
    assert build["resourceUri"] == conv.subject.canonical


def test_statement_for_another_image_is_refused():
    raw = fixture("provenance/oci-dsse-att.json")
    with pytest.raises(DocumentError) as err:
        convert(raw, context(raw))
    assert "subjects do not include" in str(err.value)


def test_kubectl_provenance_with_many_subjects_needs_an_image():
    raw = fixture("provenance/kubectl-linux-amd64-in-toto.json")
    with pytest.raises(DocumentError) as err:
        convert(raw, context(raw, image=None))
    assert "give resourceUri" in str(err.value)
    doc = json.loads(raw)
    sha = doc["subject"][0]["digest"]["sha256"]
    # a subject named by a file path is not an image; the caller's image must still match
    image = parse_image_reference(f"registry.example/kubectl@sha256:{sha}")
    with pytest.raises(DocumentError):
        convert(raw, context(raw, image=image))


def test_intoto_jsonl_bundle():
    env = json.loads(fixture("provenance/oci-dsse-att.json"))
    bundle = (json.dumps(env) + "\n" + json.dumps(env) + "\n").encode()
    assert detect_format(bundle) is Format.DSSE_ENVELOPE
    conv = convert(bundle, context(bundle, image=None))
    assert len(conv.envelopes) == 2


def test_envelope_with_other_payload_type_is_refused():
    env = {
        "payloadType": "text/plain",
        "payload": base64.b64encode(b"hi").decode(),
        "signatures": [],
    }
    raw = json.dumps(env).encode()
    with pytest.raises(DocumentError) as err:
        convert(raw, context(raw, image=None))
    assert "payloadType" in str(err.value)
