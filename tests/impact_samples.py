"""Sample data for reverse impact and policy replay tests: a project whose images carry
findings (one filed under a GHSA naming the CVE as an alias, one resolved by VEX), packages, an
attestor with a key and an attestation, a policy, inventory rows of one cluster and recorded
admissions. The writer of store rows is given by the caller (a TestClient's portal, or a
store of its own on the server's database file)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.domain.images import parse_image_reference
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.store.port import MetadataStore

#: Runs one coroutine function that writes to the store (``client.portal.call``, …).
Writer = Callable[[Callable[[MetadataStore], Awaitable[None]]], None]


P, Q = "shop", "other"
REG = "registry.example.com"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def digest(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def img(name: str, n: int) -> str:
    return f"{REG}/{name}@{digest(n)}"


A, B, C, D, E = img("api", 1), img("batch", 2), img("cron", 3), img("db", 4), img("edge", 5)

POLICY = {
    "defaultAdmissionRule": {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": {
            "vulnerabilities": {"maximumUnfixableSeverity": "HIGH", "requireScan": False}
        },
    },
    "kubernetesNamespaceAdmissionRules": {
        "edge": {
            "evaluationMode": "ALWAYS_ALLOW",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        }
    },
}


def row(
    image: str, namespace: str, workload: str, pod: str, container: str = "app"
) -> RunningContainer:
    return RunningContainer(
        cluster="prod",
        namespace=namespace,
        workload_kind="Deployment",
        workload_name=workload,
        pod=pod,
        pod_uid=f"uid-{pod}",
        container=container,
        service_account="runner",
        image_spec=image,
        image_id=image,
        digest=image.rsplit("@", 1)[1],
        image=image,
        since=T0 + timedelta(minutes=len(pod)),
    )


def ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def finding(
    image: str, note: str, *, aliases: str = "", severity: str = "CRITICAL", vex: bool = False
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "severity": severity,
        "effectiveSeverity": severity,
        "packageIssue": [
            {"affectedCpeUri": "pkg:npm/left-pad@1.0.0", "affectedPackage": "left-pad"}
        ],
        "extraDetails": f"aliases={aliases}" if aliases else "",
    }
    if vex:
        v["vexAssessment"] = {"state": "NOT_AFFECTED", "vulnerabilityId": "CVE-2026-1111"}
    return {"resourceUri": image, "noteName": f"projects/{P}/notes/{note}", "vulnerability": v}


def package(image: str, purl: str) -> dict[str, Any]:
    from chainproof.ingest.purls import note_id_for

    note = note_id_for("pkg-", purl.split("@", 1)[0])
    return {
        "resourceUri": image,
        "noteName": f"projects/{P}/notes/{note}",
        "package": {"name": "left-pad", "location": [{"cpeUri": purl}]},
    }, note


def seed(client: Any, write_rows: Writer, key: ec.EllipticCurvePrivateKey) -> None:
    for note in ("GHSA-aaaa-bbbb-cccc", "CVE-2026-1111"):
        ok(
            client.post(
                f"/v1/projects/{P}/notes", params={"noteId": note}, json={"vulnerability": {}}
            )
        )
    occurrences = [
        finding(A, "GHSA-aaaa-bbbb-cccc", aliases="CVE-2026-1111"),  # the scanner's way
        finding(B, "CVE-2026-1111", vex=True),  # resolved by VEX: not affected
        finding(C, "CVE-2026-1111"),  # not running anywhere
        finding(E, "CVE-2026-1111"),  # runs in namespace edge, where everything is allowed
    ]
    for body in occurrences:
        ok(client.post(f"/v1/projects/{P}/occurrences", json=body))
    for image, purl in ((A, "pkg:npm/left-pad@1.0.0"), (D, "pkg:npm/left-pad@2.0.0")):
        occ, note = package(image, purl)
        client.post(
            f"/v1/projects/{P}/notes",
            params={"noteId": note},
            json={"package": {"name": "left-pad"}},
        )
        ok(client.post(f"/v1/projects/{P}/occurrences", json=occ))
    # An attestor with one PKIX key, and an attestation of D signed by it.
    ok(
        client.post(
            f"/v1/projects/{P}/notes",
            params={"noteId": "release"},
            json={"attestation": {"hint": {"humanReadableName": "release"}}},
        )
    )
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ok(
        client.post(
            f"/v1/projects/{P}/attestors",
            params={"attestorId": "release"},
            json={
                "userOwnedGrafeasNote": {
                    "noteReference": f"projects/{P}/notes/release",
                    "publicKeys": [
                        {
                            "id": "release-key",
                            "pkixPublicKey": {
                                "publicKeyPem": pem,
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            },
                        }
                    ],
                }
            },
        )
    )
    payload = build_simple_signing(parse_image_reference(D))
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    ok(
        client.post(
            f"/v1/projects/{P}/occurrences",
            json={
                "resourceUri": D,
                "noteName": f"projects/{P}/notes/release",
                "attestation": {
                    "serializedPayload": base64.b64encode(payload).decode(),
                    "signatures": [
                        {
                            "publicKeyId": "release-key",
                            "signature": base64.b64encode(signature).decode(),
                        }
                    ],
                },
            },
        )
    )
    ok(client.put(f"/v1/projects/{P}/policy", json=POLICY))
    # The same CVE in another project, about an image that runs in this project's cluster.
    ok(
        client.post(
            f"/v1/projects/{Q}/notes",
            params={"noteId": "CVE-2026-1111"},
            json={"vulnerability": {}},
        )
    )
    other = finding(A, "CVE-2026-1111")
    other["noteName"] = f"projects/{Q}/notes/CVE-2026-1111"
    ok(client.post(f"/v1/projects/{Q}/occurrences", json=other))

    rows = (
        row(A, "shop", "api", "api-1"),
        row(A, "shop", "api", "api-2"),
        row(B, "shop", "batch", "batch-1"),
        row(D, "shop", "db", "db-1"),
        row(E, "edge", "edge", "edge-1"),
    )

    async def write(store: MetadataStore) -> None:
        async with store.session() as s:
            await s.inventory.write(InventoryChanges(opened=rows))

    write_rows(write)


PROPOSED = {
    "defaultAdmissionRule": POLICY["defaultAdmissionRule"],
    # The namespace rule for edge is gone; the api repository is exempt instead.
    "admissionWhitelistPatterns": [{"namePattern": f"{REG}/api"}],
}


def record_admissions(write_rows: Writer) -> None:
    from chainproof.policy import Decision, Outcome
    from chainproof.services.judge.decision_log import DecisionEntry, decision_record

    def entry(image: str, namespace: str, outcome: str) -> Any:
        decision = Decision((), Outcome(outcome), T0)
        return DecisionEntry(
            project=P,
            decision=decision,
            cluster="prod",
            namespace=namespace,
            workload=f"Deployment/{namespace}-app",
            service_account="runner",
            outcome=outcome,
        )

    now = datetime.now(UTC)
    new = [
        decision_record(entry(E, "edge", "allowed"), now),
        decision_record(entry(A, "shop", "denied"), now),
    ]
    # decision_record takes the images from the decision: give each its request.
    new = [
        type(r)(
            r.decision_id,
            r.project,
            r.time,
            r.outcome,
            r.namespace,
            (img_,),
            {**r.data, "requestImages": [img_]},
        )
        for r, img_ in zip(new, (E, A), strict=True)
    ]
    # A record written before requestImages was kept: its images are in the decision.
    old = type(new[0])(
        "0000000000000001-old",
        P,
        now,
        "allowed",
        "edge",
        (E,),
        {
            "cluster": "prod",
            "namespace": "edge",
            "workload": "Pod/old",
            "decision": {"images": [{"image": E}]},
        },
    )
    # Older than the window: never replayed.
    stale = type(new[0])(
        "0000000000000000-stale",
        P,
        now - timedelta(days=30),
        "allowed",
        "edge",
        (E,),
        {"requestImages": [E], "namespace": "edge"},
    )

    async def write(store: MetadataStore) -> None:
        async with store.session() as s:
            await s.decisions.insert([*new, old, stale])

    write_rows(write)
