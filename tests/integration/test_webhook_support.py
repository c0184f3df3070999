"""Helpers for the webhook tests (no tests here): a judge configured over REST with real
PKIX-signed simple-signing attestations, scans and findings, and AdmissionReviews wrapped
around the kubectl-made objects in tests/fixtures/k8s.

Everything goes through the public REST API, as a CI pipeline would write it.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference

FIXTURES = Path(__file__).parents[1] / "fixtures" / "k8s"
SEED_IMAGE = (
    "gcr.io/hightowerlabs/payment@sha256:"
    "aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"
)


def digest(char: str) -> str:
    return "sha256:" + char * 64


#: Attested, scanned, one LOW fixable finding: admitted.
GOOD = f"gcr.io/acme/payment@{digest('a')}"
GOOD_SIDECAR = f"gcr.io/acme/proxy@{digest('b')}"
#: Never attested.
UNSIGNED = f"gcr.io/acme/unsigned@{digest('c')}"
#: Attested and scanned, but with a CRITICAL fixable finding.
VULNERABLE = f"gcr.io/acme/legacy@{digest('e')}"
#: Allowlisted by name, so a tag is fine.
ALLOWLISTED_TAG = "busybox:1.36"
TAGGED = "gcr.io/acme/payment:1.0"

KINDS = {
    "Pod": "pod.json",
    "Deployment": "deployment.json",
    "ReplicaSet": "replicaset.json",
    "StatefulSet": "statefulset.json",
    "DaemonSet": "daemonset.json",
    "Job": "job.json",
    "CronJob": "cronjob.json",
    "ReplicationController": "replicationcontroller.json",
}
_GROUP_VERSION = {
    "Pod": ("", "v1", "pods"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Deployment": ("apps", "v1", "deployments"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside any workload object (the same walk the webhook does)."""
    kind = obj["kind"]
    if kind == "Pod":
        spec: dict[str, Any] = obj["spec"]
    elif kind == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def with_images(obj: dict[str, Any], *images: str) -> dict[str, Any]:
    """A copy of ``obj`` whose containers run ``images`` (named c0, c1, …)."""
    out = copy.deepcopy(obj)
    spec = pod_spec(out)
    template = spec["containers"][0]
    spec["containers"] = [
        {**copy.deepcopy(template), "name": f"c{i}", "image": image}
        for i, image in enumerate(images)
    ]
    return out


def admission_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    namespace: str = "default",
    dry_run: bool = False,
    version: str = "admission.k8s.io/v1",
    uid: str | None = None,
    kind: str | None = None,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview shaped as the API server sends it."""
    kind = kind or (obj or {}).get("kind", "Pod")
    group, ver, resource = _GROUP_VERSION.get(kind, ("", "v1", kind.lower() + "s"))
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": ver, "kind": kind},
        "resource": {"group": group, "version": ver, "resource": resource},
        "requestKind": {"group": group, "version": ver, "kind": kind},
        "requestResource": {"group": group, "version": ver, "resource": resource},
        "name": ((obj or {}).get("metadata") or {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj,
        "oldObject": obj if operation == "UPDATE" else None,
        "dryRun": dry_run,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": version, "kind": "AdmissionReview", "request": request}


def review(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST a review the way the API server does; the response must echo the UID."""
    r = client.post("/webhook/admission?timeout=10s", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["apiVersion"] == body["apiVersion"]
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    response: dict[str, Any] = answer["response"]
    return response


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    """Call ``fetch`` until ``done`` holds (background writes land a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    data: dict[str, Any] = r.json()
    return data


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Judge:
    """A project set up over REST: attestors with PKIX keys, a policy, evidence."""

    def __init__(self, client: httpx.Client, project: str = "prod") -> None:
        self.client = client
        self.project = project
        self.signers: dict[str, PkixSigner] = {}

    def add_attestor(self, attestor_id: str) -> str:
        p = self.project
        ok(
            self.client.post(
                f"/v1/projects/{p}/notes",
                params={"noteId": attestor_id},
                json={"attestation": {"hint": {"humanReadableName": attestor_id}}},
            )
        )
        key = generate_pkix_key("ECDSA_P256_SHA256")
        signer = PkixSigner.from_pem(key.private_pem, "ECDSA_P256_SHA256")
        self.signers[attestor_id] = signer
        ok(
            self.client.post(
                f"/v1/projects/{p}/attestors",
                params={"attestorId": attestor_id},
                json={
                    "userOwnedGrafeasNote": {
                        "noteReference": f"projects/{p}/notes/{attestor_id}",
                        "publicKeys": [
                            {
                                "id": signer.key_id,
                                "pkixPublicKey": {
                                    "publicKeyPem": key.public_pem.decode(),
                                    "signatureAlgorithm": "ECDSA_P256_SHA256",
                                },
                            }
                        ],
                    }
                },
            )
        )
        return f"projects/{p}/attestors/{attestor_id}"

    def attest(self, attestor_id: str, image: str) -> None:
        """Sign a simple-signing payload for ``image`` and upload it as an occurrence."""
        ref = parse_image_reference(image)
        payload = build_simple_signing(ref)
        signer = self.signers[attestor_id]
        ok(
            self.client.post(
                f"/v1/projects/{self.project}/occurrences",
                json={
                    "resourceUri": "https://" + ref.canonical,
                    "noteName": f"projects/{self.project}/notes/{attestor_id}",
                    "attestation": {
                        "serializedPayload": base64.b64encode(payload).decode(),
                        "signatures": [
                            {
                                "signature": base64.b64encode(signer.sign(payload)).decode(),
                                "publicKeyId": signer.key_id,
                            }
                        ],
                    },
                },
            )
        )

    def ensure_scan_notes(self) -> None:
        p = self.project
        for note_id, body in (
            ("scanner", {"discovery": {"analysisKind": "VULNERABILITY"}}),
            ("CVE-2024-1111", {"vulnerability": {"severity": "LOW"}}),
            ("CVE-2024-9999", {"vulnerability": {"severity": "CRITICAL"}}),
        ):
            r = self.client.post(f"/v1/projects/{p}/notes", params={"noteId": note_id}, json=body)
            assert r.status_code in (200, 409), r.text

    def scan(self, image: str, findings: dict[str, str]) -> None:
        """A DISCOVERY occurrence (scanned now) and one VULNERABILITY per CVE → severity."""
        p = self.project
        ref = parse_image_reference(image).canonical
        now = rfc3339(datetime.now(UTC))
        ok(
            self.client.post(
                f"/v1/projects/{p}/occurrences",
                json={
                    "resourceUri": ref,
                    "noteName": f"projects/{p}/notes/scanner",
                    "discovery": {
                        "analysisStatus": "FINISHED_SUCCESS",
                        "lastScanTime": now,
                    },
                },
            )
        )
        for cve, severity in findings.items():
            ok(
                self.client.post(
                    f"/v1/projects/{p}/occurrences",
                    json={
                        "resourceUri": ref,
                        "noteName": f"projects/{p}/notes/{cve}",
                        "vulnerability": {
                            "severity": severity,
                            "effectiveSeverity": severity,
                            "fixAvailable": True,
                            "packageIssue": [
                                {
                                    "affectedCpeUri": "cpe:/o:debian:debian_linux:12",
                                    "affectedPackage": "openssl",
                                    "affectedVersion": {"kind": "NORMAL", "name": "3.0.11"},
                                    "fixedVersion": {"kind": "NORMAL", "name": "3.0.13"},
                                    "fixAvailable": True,
                                }
                            ],
                        },
                    },
                )
            )

    def put_policy(self, policy: dict[str, Any]) -> None:
        ok(self.client.put(f"/v1/projects/{self.project}/policy", json=policy))

    def decisions(self, **params: str) -> list[dict[str, Any]]:
        body = ok(self.client.get(f"/v1/projects/{self.project}/decisions", params=params))
        items: list[dict[str, Any]] = body.get("decisions", [])
        return items

    def deployments(self) -> list[dict[str, Any]]:
        body = ok(
            self.client.get(
                f"/v1/projects/{self.project}/occurrences",
                params={"filter": 'kind="DEPLOYMENT"', "pageSize": "1000"},
            )
        )
        items: list[dict[str, Any]] = body.get("occurrences", [])
        return items


def standard_policy(qa: str) -> dict[str, Any]:
    """qa must attest; scanned, nothing fixable above MEDIUM; busybox allowlisted; the audit
    namespace only reports (dry run)."""
    rule = {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "requireAttestationsBy": [qa],
        "chainproofChecks": {
            "vulnerabilities": {
                "maximumFixableSeverity": "MEDIUM",
                "maximumUnfixableSeverity": "HIGH",
                "requireScan": True,
            }
        },
    }
    return {
        "globalPolicyEvaluationMode": "ENABLE",
        "admissionWhitelistPatterns": [{"namePattern": "docker.io/library/busybox"}],
        "defaultAdmissionRule": rule,
        "kubernetesNamespaceAdmissionRules": {
            "audit": {**rule, "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY"},
        },
    }


def setup_standard_judge(client: httpx.Client, project: str = "prod") -> Judge:
    judge = Judge(client, project)
    qa = judge.add_attestor("qa")
    judge.ensure_scan_notes()
    for image in (GOOD, GOOD_SIDECAR, VULNERABLE, f"gcr.io/x/init@{digest('d')}"):
        judge.attest("qa", image)
    for image in (GOOD, GOOD_SIDECAR, f"gcr.io/x/init@{digest('d')}"):
        judge.scan(image, {"CVE-2024-1111": "LOW"})
    judge.scan(VULNERABLE, {"CVE-2024-9999": "CRITICAL"})
    judge.put_policy(standard_policy(qa))
    return judge
