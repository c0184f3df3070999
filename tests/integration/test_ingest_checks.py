"""The policy checks that read ingested facts, through REST on real documents: an SBOM present
in an accepted format, a scan with VEX, denied purls and licences, each explained."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
IMAGE = "registry.example/team/alpine@sha256:" + "9" * 64


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(grpc_enabled=False), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def decide(client: TestClient, checks: dict) -> tuple[str, list[dict]]:
    policy = {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "chainproofChecks": checks,
        }
    }
    r = client.put("/v1/projects/prod/policy", json=policy)
    assert r.status_code == 200, r.text
    r = client.post("/v1/projects/prod/policy:evaluate", json={"images": [IMAGE]})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["outcome"], body["images"][0]["requirements"]


def ingest(client: TestClient, rel: str, **params: str) -> dict:
    r = client.post(
        "/v1/projects/prod:ingest",
        content=(FIXTURES / rel).read_bytes(),
        params={"resourceUri": IMAGE, **params},
    )
    assert r.status_code == 200, r.text
    return r.json()


def reasons(requirements: list[dict], kind: str) -> str:
    return " ".join(r["reason"] for r in requirements if r["kind"] == kind)


def test_sbom_presence_and_format(client: TestClient) -> None:
    outcome, reqs = decide(client, {"sbom": {"formats": ["CycloneDX"]}})
    assert outcome == "denied" and "no CycloneDX SBOM" in reasons(reqs, "sbom")
    ingest(client, "sbom/alpine-spdx.json")
    outcome, reqs = decide(client, {"sbom": {"formats": ["CycloneDX"]}})
    assert outcome == "denied" and "found only SPDX" in reasons(reqs, "sbom")
    assert decide(client, {"sbom": {"formats": ["SPDX", "CycloneDX"]}})[0] == "allowed"
    bad = client.put(
        "/v1/projects/prod/policy",
        json={
            "defaultAdmissionRule": {
                "evaluationMode": "REQUIRE_ATTESTATION",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                "chainproofChecks": {"sbom": {"formats": ["SWID"]}},
            }
        },
    )
    assert bad.status_code == 400 and "'SWID' is not CycloneDX or SPDX" in bad.json()["message"]


def test_denied_purls_and_licenses(client: TestClient) -> None:
    outcome, reqs = decide(client, {"packages": {"deniedPurls": ["pkg:alpine/busybox"]}})
    assert outcome == "denied" and "no packages are recorded" in reasons(reqs, "packages")
    ingest(client, "sbom/alpine-cyclonedx.json")
    outcome, reqs = decide(client, {"packages": {"deniedPurls": ["pkg:alpine/busybox"]}})
    assert outcome == "denied"
    assert "pkg:alpine/busybox@1.35.0-r17" in reasons(reqs, "packages")
    assert decide(client, {"packages": {"deniedPurls": ["pkg:alpine/busybox@0.1"]}})[0] == (
        "allowed"
    )
    doc = json.loads((FIXTURES / "sbom/alpine-cyclonedx.json").read_bytes())
    gpl = sorted(
        {
            lic["license"].get("id", "")
            for c in doc["components"]
            for lic in c.get("licenses", [])
            if "GPL" in lic["license"].get("id", "")
        }
    )[0]
    outcome, reqs = decide(client, {"packages": {"deniedLicenses": [gpl]}})
    assert outcome == "denied" and f"is licensed {gpl.upper()}" in reasons(reqs, "packages")


def test_scan_with_vex(client: TestClient) -> None:
    ingest(client, "scans/trivy/alpine-310.json")
    outcome, reqs = decide(client, {"vex": {}})
    assert outcome == "denied" and "no VEX statement concerns" in reasons(reqs, "vex")
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "QA",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2019-1549"},
                "products": [
                    {"@id": IMAGE, "subcomponents": [{"@id": "pkg:apk/alpine/libssl1.1"}]}
                ],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }
    r = client.post(
        "/v1/projects/prod:ingest", content=json.dumps(vex).encode(), params={"resourceUri": IMAGE}
    )
    assert r.status_code == 200 and r.json()["vexApplied"] == 1, r.text
    assert decide(client, {"vex": {}})[0] == "allowed"
    outcome, reqs = decide(client, {"vex": {"requireEveryFinding": True}})
    assert outcome == "denied" and "3 findings" in reasons(reqs, "vex")
