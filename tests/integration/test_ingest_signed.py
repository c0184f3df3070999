"""Signed ingest end to end: DSSE envelopes verified against attestors, stored as
DSSE_ATTESTATION occurrences, and policies that demand evidence attested by a named attestor.

Every attack is a test: an unknown key, a statement about another digest, an unsigned document
when signed ingest is asked for, another attestor's signature, and the unsigned copies of
signed facts being deleted behind the judge's back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.attest.intoto import INTOTO_PAYLOAD_TYPE, build_statement
from chainproof.attest.predicates import CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULN_SCAN_COSIGN
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.crypto.signing import PkixSigner, generate_pkix_key, sign_envelope
from chainproof.domain.images import parse_image_reference
from chainproof.store.memory import MemoryStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
IMAGE = "registry.example/team/alpine@sha256:" + "a" * 64
OTHER = "registry.example/team/alpine@sha256:" + "b" * 64
SBOM_A = "projects/sec/attestors/sbom-a"
SBOM_B = "projects/sec/attestors/sbom-b"
DENIED = "pkg:alpine/busybox"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(grpc_enabled=False), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def make_attestor(client: TestClient, attestor_id: str, key: Any = None) -> PkixSigner:
    note = f"{attestor_id}-note"
    r = client.post(f"/v1/projects/sec/notes?noteId={note}", json={"attestation": {}})
    assert r.status_code == 200, r.text
    key = key or generate_pkix_key()
    body = {
        "userOwnedGrafeasNote": {
            "noteReference": f"projects/sec/notes/{note}",
            "publicKeys": [
                {
                    "id": f"{attestor_id}-key",
                    "pkixPublicKey": {
                        "publicKeyPem": key.public_pem.decode(),
                        "signatureAlgorithm": "ECDSA_P256_SHA256",
                    },
                }
            ],
        }
    }
    r = client.post(f"/v1/projects/sec/attestors?attestorId={attestor_id}", json=body)
    assert r.status_code == 200, r.text
    return PkixSigner.from_pem(key.private_pem, key_id=f"{attestor_id}-key")


def envelope(signer: PkixSigner, image: str, predicate_type: str, predicate: Any) -> bytes:
    statement = build_statement(parse_image_reference(image), predicate_type, predicate)
    return json.dumps(sign_envelope(statement, INTOTO_PAYLOAD_TYPE, [signer]).to_json()).encode()


def sbom() -> dict[str, Any]:
    return json.loads((FIXTURES / "sbom/alpine-cyclonedx.json").read_bytes())


def ingest(client: TestClient, body: bytes, **params: Any) -> Any:
    return client.post("/v1/projects/prod:ingest", content=body, params=params)


def policy(client: TestClient, checks: dict[str, Any]) -> None:
    rule = {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": checks,
    }
    r = client.put("/v1/projects/prod/policy", json={"defaultAdmissionRule": rule})
    assert r.status_code == 200, r.text


def evaluate(client: TestClient, image: str = IMAGE) -> dict[str, Any]:
    r = client.post("/v1/projects/prod/policy:evaluate", json={"images": [image]})
    assert r.status_code == 200, r.text
    decided: dict[str, Any] = r.json()
    return decided


def occurrences(client: TestClient, kind: str) -> list[dict[str, Any]]:
    r = client.get("/v1/projects/prod/occurrences", params={"filter": f'kind="{kind}"'})
    found: list[dict[str, Any]] = r.json().get("occurrences", [])
    return found


def test_a_signed_sbom_is_stored_as_an_attestation_and_its_facts_count_as_attested(
    client: TestClient,
) -> None:
    signer = make_attestor(client, "sbom-a")
    r = ingest(client, envelope(signer, IMAGE, CYCLONEDX_BOM, sbom()), attestor=SBOM_A)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"]["DSSE_ATTESTATION"] == 1 and body["created"]["PACKAGE"] == 14
    [attested] = body["attestations"]
    assert attested["attestors"] == [SBOM_A] and attested["facts"]["PACKAGE"] == 14
    [att] = occurrences(client, "DSSE_ATTESTATION")
    assert att["noteName"] == "projects/sec/notes/sbom-a-note" and att["resourceUri"] == IMAGE

    policy(client, {"sbom": {"formats": ["CycloneDX"], "attestedBy": [SBOM_A]}})
    decided = evaluate(client)
    assert decided["outcome"] == "allowed", decided["explanation"]
    policy(client, {"packages": {"deniedPurls": [DENIED], "attestedBy": SBOM_A}})
    decided = evaluate(client)
    assert decided["outcome"] == "denied"
    assert "pkg:alpine/busybox" in decided["explanation"]


def test_an_unsigned_sbom_does_not_satisfy_a_rule_that_demands_an_attested_one(
    client: TestClient,
) -> None:
    make_attestor(client, "sbom-a")
    r = ingest(client, json.dumps(sbom()).encode(), resourceUri=IMAGE)
    assert r.status_code == 200 and r.json()["attestations"] == []
    policy(client, {"sbom": {"attestedBy": [SBOM_A]}})
    decided = evaluate(client)
    assert decided["outcome"] == "denied"
    assert f"SBOM signed by {SBOM_A} is recorded" in decided["explanation"]
    # ... while the same rule without attestedBy counts the unsigned SBOM
    policy(client, {"sbom": {}})
    assert evaluate(client)["outcome"] == "allowed"


def test_signed_ingest_refuses_an_unknown_key_whole(client: TestClient) -> None:
    make_attestor(client, "sbom-a")
    stranger = PkixSigner.from_pem(generate_pkix_key().private_pem, key_id="sbom-a-key")
    r = ingest(client, envelope(stranger, IMAGE, CYCLONEDX_BOM, sbom()), attestor=SBOM_A)
    assert r.status_code == 400, r.text
    assert "not verified by any of 1 attestors" in r.json()["message"]
    assert occurrences(client, "PACKAGE") == [] and occurrences(client, "DSSE_ATTESTATION") == []
    # Explicitly optional: stored, but unattested, and the warning says why.
    r = ingest(
        client,
        envelope(stranger, IMAGE, CYCLONEDX_BOM, sbom()),
        attestor=SBOM_A,
        signatures="optional",
    )
    assert r.status_code == 200, r.text
    assert r.json()["attestations"] == [] and "DSSE_ATTESTATION" not in r.json()["created"]
    assert any("not verified by any attestor" in w for w in r.json()["warnings"])
    policy(client, {"sbom": {"attestedBy": [SBOM_A]}})
    assert evaluate(client)["outcome"] == "denied"


def test_signed_ingest_refuses_an_unsigned_document(client: TestClient) -> None:
    make_attestor(client, "sbom-a")
    r = ingest(client, json.dumps(sbom()).encode(), resourceUri=IMAGE, signatures="required")
    assert r.status_code == 400 and "is not signed" in r.json()["message"]
    r = ingest(client, json.dumps(sbom()).encode(), resourceUri=IMAGE, attestor=SBOM_A)
    assert r.status_code == 400 and "is not signed" in r.json()["message"]
    assert occurrences(client, "PACKAGE") == []


def test_the_digest_of_the_request_is_trusted_never_the_statements(client: TestClient) -> None:
    signer = make_attestor(client, "sbom-a")
    signed_for_other = envelope(signer, OTHER, CYCLONEDX_BOM, sbom())
    for mode in ("required", "optional"):
        r = ingest(client, signed_for_other, resourceUri=IMAGE, signatures=mode)
        assert r.status_code == 400, r.text
        assert "subject" in r.json()["message"]
    assert occurrences(client, "PACKAGE") == [] and occurrences(client, "DSSE_ATTESTATION") == []


def test_evidence_counts_only_for_the_rule_that_trusts_its_signer(client: TestClient) -> None:
    make_attestor(client, "sbom-a")
    signer_b = make_attestor(client, "sbom-b")
    r = ingest(client, envelope(signer_b, IMAGE, CYCLONEDX_BOM, sbom()), attestor=SBOM_B)
    assert r.status_code == 200 and r.json()["attestations"][0]["attestors"] == [SBOM_B]
    policy(client, {"sbom": {"attestedBy": [SBOM_A]}})
    decided = evaluate(client)
    assert decided["outcome"] == "denied", "B's SBOM must not satisfy a rule that trusts A"
    policy(client, {"sbom": {"attestedBy": [SBOM_B]}})
    assert evaluate(client)["outcome"] == "allowed"


def test_deleting_the_unsigned_copies_does_not_hide_a_signed_package(client: TestClient) -> None:
    signer = make_attestor(client, "sbom-a")
    r = ingest(client, envelope(signer, IMAGE, CYCLONEDX_BOM, sbom()), attestor=SBOM_A)
    assert r.status_code == 200, r.text
    # Someone allowed to delete occurrences removes the stored PACKAGE of the denied package.
    for occ in occurrences(client, "PACKAGE"):
        if occ["package"]["name"] == "busybox":
            assert client.delete(f"/v1/{occ['name']}").status_code == 200
    policy(client, {"packages": {"deniedPurls": [DENIED], "attestedBy": [SBOM_A]}})
    decided = evaluate(client)
    assert decided["outcome"] == "denied", "the judge reads the signed SBOM, not the copies"
    assert "busybox" in decided["explanation"]


def test_a_bundle_of_envelopes_is_verified_envelope_by_envelope(client: TestClient) -> None:
    signer = make_attestor(client, "sbom-a")
    later_key = generate_pkix_key()
    stranger = PkixSigner.from_pem(later_key.private_pem, key_id="prov-key")
    provenance = {
        "buildDefinition": {"buildType": "https://example.com/build", "externalParameters": {}},
        "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
    }
    bundle = b"\n".join(
        [
            envelope(signer, IMAGE, CYCLONEDX_BOM, sbom()),
            envelope(stranger, IMAGE, SLSA_PROVENANCE_V1, provenance),
        ]
    )
    r = ingest(client, bundle, attestor=SBOM_A)
    assert r.status_code == 400 and "envelope 2 of 2" in r.json()["message"]
    r = ingest(client, bundle, attestor=SBOM_A, signatures="optional")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [a["envelope"] for a in body["attestations"]] == [1]
    assert body["created"]["BUILD"] == 1 and body["created"]["DSSE_ATTESTATION"] == 1
    # Re-ingesting changes nothing; once the second signer is an attestor, its vouching is added.
    again = ingest(client, bundle, attestor=SBOM_A, signatures="optional").json()
    assert again["unchanged"] is True and again["created"] == {}
    make_attestor(client, "prov", later_key)
    both = [SBOM_A, "projects/sec/attestors/prov"]
    added = ingest(client, bundle, attestor=both).json()
    assert added["unchanged"] is True and added["created"] == {"DSSE_ATTESTATION": 1}
    assert [a["attestors"] for a in added["attestations"]] == [["projects/sec/attestors/prov"]]
    assert len(occurrences(client, "BUILD")) == 1  # the facts were not stored twice
    assert len(occurrences(client, "DSSE_ATTESTATION")) == 2
    assert ingest(client, bundle, attestor=both).json()["created"] == {}


def test_a_signed_trivy_scan_is_attested_evidence_for_the_vulnerability_check(
    client: TestClient,
) -> None:
    scanner = make_attestor(client, "scanner")
    report = json.loads((FIXTURES / "scans/trivy/debian-buster.json").read_bytes())
    predicate = {
        "scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.20", "result": report},
        "metadata": {
            "scanStartedOn": "2026-11-30T00:00:00Z",
            "scanFinishedOn": "2026-11-30T00:01:00Z",
        },
    }
    r = ingest(
        client,
        envelope(scanner, IMAGE, VULN_SCAN_COSIGN, predicate),
        attestor="projects/sec/attestors/scanner",
    )
    assert r.status_code == 200, r.text
    created = r.json()["created"]
    assert created["VULNERABILITY"] == 2 and created["DSSE_ATTESTATION"] == 1
    checks = {
        "vulnerabilities": {
            "maximumFixableSeverity": "MEDIUM",
            "attestedBy": ["projects/sec/attestors/scanner"],
        }
    }
    policy(client, checks)
    decided = evaluate(client)
    assert decided["outcome"] == "denied"
    assert "CVE-2019-18224" in decided["explanation"]
    # An unsigned scan of another image is no evidence for that rule: no signed scan there.
    r = ingest(client, json.dumps(report).encode(), resourceUri=OTHER)
    assert r.status_code == 200
    decided = evaluate(client, OTHER)
    assert decided["outcome"] == "denied"
    assert (
        "no vulnerability scan signed by projects/sec/attestors/scanner" in (decided["explanation"])
    )
