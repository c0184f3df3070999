"""The seed story's data for the web UI tests, written through the REST API as a user would:
a QA attestor with a PKIX key, a policy requiring it, a scan of the image turned into Grafeas
VULNERABILITY occurrences (from the real Trivy report in tests/fixtures/scans/, one with a VEX
assessment), its PACKAGE occurrences, and - on request - the signed attestation.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.domain.inventory import InventoryChanges, RunningContainer

IMAGE = (
    "gcr.io/hightowerlabs/payment@sha256:"
    "aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"
)
OTHER = "gcr.io/hightowerlabs/other@sha256:" + "1" * 64
POLICY_PROJECT = "production"
ATTESTOR = "projects/image-signing/attestors/qa"
KEY_ID = "qa-key-1"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
TRIVY = Path(__file__).parents[2] / "fixtures" / "scans" / "trivy-alpine-310.json"
#: The finding the story marks not affected by VEX.
VEX_CVE = "CVE-2019-1551"


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def seed(client: httpx.Client) -> PkixSigner:
    """Everything but the attestation; returns the QA signer."""
    generated = generate_pkix_key()
    signer = PkixSigner.from_pem(generated.private_pem, key_id=KEY_ID)
    ok(client.post("/v1/projects/image-signing/notes?noteId=qa", json={"attestation": {}}))
    ok(
        client.post(
            "/v1/projects/image-signing/attestors?attestorId=qa",
            json={
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/image-signing/notes/qa",
                    "publicKeys": [
                        {
                            "id": KEY_ID,
                            "pkixPublicKey": {
                                "publicKeyPem": generated.public_pem.decode(),
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            },
                        }
                    ],
                }
            },
        )
    )
    ok(
        client.put(
            f"/v1/projects/{POLICY_PROJECT}/policy",
            json={
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationsBy": [ATTESTOR],
                }
            },
        )
    )
    ingest_trivy(client, IMAGE)
    # A note whose description and an occurrence whose package name are hostile markup.
    ok(client.post("/v1/projects/scans/notes?noteId=evil", json={"package": {"name": HOSTILE}}))
    ok(
        client.post(
            "/v1/projects/scans/occurrences",
            json={
                "resourceUri": OTHER,
                "noteName": "projects/scans/notes/evil",
                "package": {"name": HOSTILE, "version": {"name": "1", "kind": "NORMAL"}},
            },
        )
    )
    return signer


def ingest_trivy(client: httpx.Client, image: str) -> None:
    """The Trivy report's findings and packages as Grafeas occurrences about ``image``."""
    report = json.loads(TRIVY.read_text())
    notes: set[str] = set()
    packages: dict[str, dict[str, Any]] = {}
    for result in report["Results"]:
        for v in result.get("Vulnerabilities", []):
            cve = v["VulnerabilityID"]
            if cve not in notes:
                ok(
                    client.post(
                        f"/v1/projects/scans/notes?noteId={cve}",
                        json={"vulnerability": {"severity": v["Severity"]}},
                    )
                )
                notes.add(cve)
            purl = v["PkgIdentifier"]["PURL"]
            packages[purl] = {"name": v["PkgName"], "version": v["InstalledVersion"]}
            occurrence: dict[str, Any] = {
                "resourceUri": image,
                "noteName": f"projects/scans/notes/{cve}",
                "vulnerability": {
                    "severity": v["Severity"],
                    "effectiveSeverity": v["Severity"],
                    "fixAvailable": bool(v.get("FixedVersion")),
                    "packageIssue": [
                        {
                            "affectedCpeUri": "cpe:/o:alpine:alpine_linux:3.10",
                            "affectedPackage": v["PkgName"],
                            "affectedVersion": {"name": v["InstalledVersion"], "kind": "NORMAL"},
                        }
                    ],
                },
            }
            if cve == VEX_CVE:
                occurrence["vulnerability"]["vexAssessment"] = {
                    "vulnerabilityId": cve,
                    "state": "NOT_AFFECTED",
                    "justification": {
                        "justificationType": "VULNERABLE_CODE_NOT_IN_EXECUTE_PATH",
                        "details": "payment never calls the affected code",
                    },
                }
            ok(client.post("/v1/projects/scans/occurrences", json=occurrence))
    for purl, p in packages.items():
        note_id = "pkg-" + p["name"].replace(".", "-")
        ok(
            client.post(
                f"/v1/projects/scans/notes?noteId={note_id}", json={"package": {"name": p["name"]}}
            )
        )
        ok(
            client.post(
                "/v1/projects/scans/occurrences",
                json={
                    "resourceUri": image,
                    "noteName": f"projects/scans/notes/{note_id}",
                    # Both places ingestion puts a purl: a location's cpeUri (the contract
                    # in services/scribe/scanning.py) and the package's own cpeUri.
                    "package": {
                        "name": p["name"],
                        "version": {"name": p["version"], "kind": "NORMAL"},
                        **(
                            {"location": [{"cpeUri": purl}]}
                            if p["name"].startswith("libssl")
                            else {"cpeUri": purl}
                        ),
                    },
                },
            )
        )


def attest(client: httpx.Client, signer: PkixSigner) -> None:
    """QA signs the image (Binary Authorization's simple-signing payload, PKIX signature)."""
    payload = build_simple_signing(parse_image_reference(IMAGE))
    ok(
        client.post(
            "/v1/projects/image-signing/occurrences",
            json={
                "resourceUri": IMAGE,
                "noteName": "projects/image-signing/notes/qa",
                "attestation": {
                    "serializedPayload": base64.b64encode(payload).decode(),
                    "signatures": [
                        {
                            "signature": base64.b64encode(signer.sign(payload)).decode(),
                            "publicKeyId": KEY_ID,
                        }
                    ],
                },
            },
        )
    )


def admission_review(image: str = IMAGE) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3f1c4a0e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "payment",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "payment"},
                "spec": {"containers": [{"name": "payment", "image": image}]},
            },
            "oldObject": None,
            "dryRun": False,
        },
    }


def run_workload(
    client: Any,
    image: str,
    *,
    cluster: str = "prod-eu",
    namespace: str = "payments",
    workload: str = "payment",
    pod: str = "payment-7c9d-1",
) -> RunningContainer:
    """Put one running container of ``image`` in the inventory, as a watcher would (on the
    started TestClient's own event loop, where the app's store lives)."""
    row = RunningContainer(
        cluster=cluster,
        namespace=namespace,
        workload_kind="Deployment",
        workload_name=workload,
        pod=pod,
        pod_uid=f"uid-{pod}",
        container="app",
        service_account="default",
        image_spec=image,
        image_id=f"docker-pullable://{image}",
        digest=image.split("@", 1)[1] if "@" in image else None,
        image=image,
        since=datetime(2026, 11, 30, 9, 15, tzinfo=UTC),
    )

    async def write() -> None:
        async with client.app.state.services.store.session() as s:
            await s.inventory.write(InventoryChanges(opened=(row,)))

    if client.portal is not None:
        client.portal.call(write)
    else:  # a client used outside its `with`: the app's memory store serves any loop
        asyncio.run(write())
    return row
