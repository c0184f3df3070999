"""One answer to "what is this image vulnerable to, and what resolves it": GET
images/vulnerabilities (and its deprecated spelling images:vulnerabilities), read the way the
judge reads VEX."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore

from .test_ingest_api import IMAGE, openvex

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
CVE = "CVE-2019-18224"
PATH = "/v1/projects/prod/images/vulnerabilities"
DEPRECATED = "/v1/projects/prod/images:vulnerabilities"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(grpc_enabled=False), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _other_scanner_finds(client: TestClient, package: str) -> str:
    """A finding of CVE in ``package`` filed by another scanner (its own note project)."""
    r = client.post(
        "/v1/projects/scanner-b/notes", params={"noteId": CVE}, json={"vulnerability": {}}
    )
    assert r.status_code in (200, 409), r.text
    r = client.post(
        "/v1/projects/prod/occurrences",
        json={
            "resourceUri": IMAGE,
            "noteName": f"projects/scanner-b/notes/{CVE}",
            "vulnerability": {
                "effectiveSeverity": "CRITICAL",
                "packageIssue": [
                    {
                        "affectedCpeUri": "cpe:/o:debian:debian_linux:10",
                        "affectedPackage": package,
                        "affectedVersion": {"name": "2.0.5", "kind": "NORMAL"},
                    }
                ],
            },
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["name"])


def test_both_paths_give_the_judges_reading_with_the_resolving_statement(
    client: TestClient,
) -> None:
    report = (FIXTURES / "scans/trivy/debian-buster.json").read_bytes()
    assert (
        client.post(
            "/v1/projects/prod:ingest", content=report, params={"resourceUri": IMAGE}
        ).status_code
        == 200
    )
    vex = client.post(
        "/v1/projects/prod:ingest",
        content=openvex("pkg:deb/debian/libidn2-0"),
        params={"resourceUri": IMAGE},
    )
    assert vex.status_code == 200 and vex.json()["vexApplied"] == 1, vex.text
    # Filed after the VEX document: nothing stamped it, yet the judge counts the statement
    # for it (same CVE, same package) and not for the same CVE in another package.
    sibling = _other_scanner_finds(client, "libidn2-0")
    other_package = _other_scanner_finds(client, "bash")

    flat = client.get(PATH, params={"image": IMAGE})
    assert flat.status_code == 200, flat.text
    body = flat.json()
    assert body["image"] == IMAGE
    findings = {f["occurrence"]: f for f in body["vulnerabilities"]}
    trivy = [f for f in findings.values() if f["source"] == "projects/prod"]
    stamped = next(f for f in trivy if f["package"] == "libidn2-0")
    assert stamped["resolvedBy"].startswith("projects/prod/notes/vex-")
    assert stamped["vex"] == "NOT_AFFECTED" and stamped["vexResolved"] is True
    assert findings[sibling]["resolvedBy"] == stamped["resolvedBy"]
    assert findings[sibling]["source"] == "projects/scanner-b"
    assert findings[sibling]["vexResolved"] is True
    assert findings[other_package]["resolvedBy"] == "" and findings[other_package]["vex"] == ""
    assert [f["id"] for f in body["vulnerabilities"]] == sorted(
        f["id"] for f in body["vulnerabilities"]
    )

    grouped = client.get(DEPRECATED, params={"image": IMAGE})
    assert grouped.status_code == 200, grouped.text
    sources = grouped.json()["sources"]
    assert set(sources) == {"projects/prod", "projects/scanner-b"}
    regrouped = [f for fs in sources.values() for f in fs]
    assert sorted(regrouped, key=lambda f: f["occurrence"]) == sorted(
        body["vulnerabilities"], key=lambda f: f["occurrence"]
    )


@pytest.mark.parametrize("path", [PATH, DEPRECATED])
def test_a_tag_is_refused_with_why(client: TestClient, path: str) -> None:
    r = client.get(path, params={"image": "registry.example/team/buster:10"})
    assert r.status_code == 400
    assert "names no digest" in r.json()["error"]["message"]


def test_the_old_spelling_is_documented_as_deprecated(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/v1/projects/{project}/images:vulnerabilities"]["get"]["deprecated"] is True
    assert not paths["/v1/projects/{project}/images/vulnerabilities"]["get"].get("deprecated")
