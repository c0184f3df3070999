"""The scanner's CLI and REST routes against a live server, on real OSV records.

Go's own vulnerability database records (Debian's golang-golang-x-vuln-dev) and the GHSA
fixtures are imported as a file, a directory and an osv.dev-style zip; an image holding
golang.org/x/text v0.3.2 gets GO-2020-0015, the vouching attestor refuses and exits 1; the
SBOM is replaced by v0.3.7 (GO-2021-0113 is fixed only there), the findings close and the attestor signs.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

import realdebian
from chainproof.attest.verify import verify_attestation
from chainproof.attest.vuln_scan import VULNS_V01
from chainproof.cli.main import _register_groups, app
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.crypto.keys import KeySpec, load_public_key
from chainproof.domain.images import parse_image_reference
from live import LiveServer, live_server

IMAGE = "gcr.io/acme/goapp@sha256:" + "c" * 64
FIXTURES = Path(__file__).parents[1] / "fixtures" / "osv"

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def cli(server: LiveServer, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", server.base_url])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def _sbom(http: httpx.Client, version: str) -> None:
    listed = http.get("/v1/projects/prod/occurrences", params={"filter": 'kind="PACKAGE"'}).json()
    for occ in listed.get("occurrences", []):
        http.delete(f"/v1/{occ['name']}").raise_for_status()
    http.post(
        "/v1/projects/prod/occurrences",
        json={
            "resourceUri": IMAGE,
            "noteName": "projects/prod/notes/go-modules",
            "package": {
                "name": "golang.org/x/text",
                "version": {"name": version, "kind": "NORMAL", "fullName": version},
                "location": [{"cpeUri": f"pkg:golang/golang.org/x/text@{version}"}],
            },
        },
    ).raise_for_status()


def test_import_show_vulns_vouch_story(server: LiveServer, tmp_path: Path) -> None:
    http = httpx.Client(base_url=server.base_url)
    http.post(
        "/v1/projects/prod/notes", params={"noteId": "go-modules"}, json={"package": {"name": "go"}}
    ).raise_for_status()
    _sbom(http, "v0.3.2")
    empty = cli(server, "image", "scan", IMAGE, "-p", "prod")
    assert empty.exit_code == 2 and "no OSV advisories have been imported" in empty.stderr

    # A module file of Go's vulnerability database: an array of records.
    text = realdebian.go_vulndb_dir() / "cmd/govulncheck/testdata/vulndb/golang.org/x/text.json"
    first = ok(cli(server, "advisories", "import", str(text), "--json"))
    report = json.loads(first.stdout)
    assert report["imported"] >= 2 and report["imagesRematched"] == 1
    again = json.loads(ok(cli(server, "advisories", "import", str(text), "--json")).stdout)
    assert again["unchanged"] == report["imported"] and again["imagesRematched"] == 0
    # The GHSA fixtures as a directory, and zipped the way osv.dev publishes an ecosystem.
    ok(cli(server, "advisories", "import", str(FIXTURES)))
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in FIXTURES.glob("*.osv.json"):
            z.write(p, p.name.replace(".osv", ""))
    zipped = json.loads(ok(cli(server, "advisories", "import", str(archive), "--json")).stdout)
    assert zipped["unchanged"] == 7 and zipped["imagesRematched"] == 0

    vulns = json.loads(ok(cli(server, "image", "vulns", IMAGE, "-p", "prod", "--json")).stdout)
    ids = {f["id"] for f in vulns["sources"]["chainproof"]}
    assert "GO-2020-0015" in ids
    shown = json.loads(ok(cli(server, "advisories", "show", "GO-2020-0015", "--json")).stdout)
    assert [i["resource"] for i in shown["affectedImages"]] == [IMAGE]
    assert shown["affectedImages"][0]["fixedVersion"] == "0.3.3"
    assert "golang.org/x/text" in ok(cli(server, "advisories", "show", "GO-2020-0015")).stdout

    # The not-vulnerable attestor.
    keys = ok(runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "nv"), "--json"]))
    key_id = json.loads(keys.stdout)["keyId"]
    ok(
        cli(
            server,
            "attestor",
            "create",
            "sec/not-vulnerable",
            "--note",
            "projects/sec/notes/not-vulnerable",
            "--pkix-key",
            str(tmp_path / "nv.pub"),
            "--algorithm",
            "ECDSA_P256_SHA256",
        )
    )
    policy = tmp_path / "vuln-policy.yaml"
    policy.write_text(
        "vulnerabilities:\n  maximumFixableSeverity: BLOCK_ALL\n"
        "freshness:\n  maximumScanAgeHours: 24\n"
    )
    vouch = [
        "vouch",
        "--image",
        IMAGE,
        "--policy",
        str(policy),
        "--attestor",
        "projects/sec/attestors/not-vulnerable",
        "--key",
        str(tmp_path / "nv.key"),
        "--key-id",
        key_id,
        "-p",
        "prod",
    ]
    refused = cli(server, *vouch)
    assert refused.exit_code == 1, refused.output
    assert "GO-2020-0015" in refused.stdout and "nothing was signed" in refused.stdout

    _sbom(http, "v0.3.7")  # GO-2021-0113 is fixed only in 0.3.7
    scanned = json.loads(ok(cli(server, "image", "scan", IMAGE, "-p", "prod", "--json")).stdout)
    assert scanned["findings"] == 0
    assert (
        json.loads(ok(cli(server, "advisories", "show", "GO-2020-0015", "--json")).stdout)[
            "affectedImages"
        ]
        == []
    )
    signed = ok(cli(server, *vouch))
    assert "signed and uploaded" in signed.stdout
    attestations = http.get(
        "/v1/projects/prod/occurrences", params={"filter": 'kind="ATTESTATION"'}
    ).json()["occurrences"]
    assert len(attestations) == 1
    assert attestations[0]["noteName"] == "projects/sec/notes/not-vulnerable"

    # The same attestor signs an in-toto statement with the vulns v0.1 predicate.
    vulns = ok(cli(server, *vouch, "--format", "in-toto-vulns"))
    assert "signed and uploaded" in vulns.stdout
    [dsse] = http.get(
        "/v1/projects/prod/occurrences", params={"filter": 'kind="DSSE_ATTESTATION"'}
    ).json()["occurrences"]
    envelope = DsseEnvelope.from_json(dsse["dsseAttestation"]["envelope"])
    public = load_public_key(
        KeySpec(
            "PKIX",
            (tmp_path / "nv.pub").read_text(),
            key_id=key_id,
            algorithm="ECDSA_P256_SHA256",
        )
    )
    verified = verify_attestation(
        parse_image_reference(IMAGE), envelope, [public], now=datetime.now(UTC)
    )
    assert verified.verified, verified.reasons
    statement = verified.statement
    assert statement is not None and statement.predicate_type == VULNS_V01
    predicate = dict(statement.predicate or {})
    assert predicate["scanner"]["result"] == []  # nothing left after the fix
    assert predicate["metadata"]["scanFinishedOn"].endswith("Z")
    # A judge policy that trusts the attestor's signed scan admits the image on it alone.
    checks = {
        "vulnerabilities": {
            "maximumFixableSeverity": "BLOCK_ALL",
            "attestedBy": ["projects/sec/attestors/not-vulnerable"],
        },
        "freshness": {
            "maximumScanAgeHours": 24,
            "attestedBy": ["projects/sec/attestors/not-vulnerable"],
        },
    }
    rule = {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": checks,
    }
    http.put("/v1/projects/prod/policy", json={"defaultAdmissionRule": rule}).raise_for_status()
    decided = http.post("/v1/projects/prod/policy:evaluate", json={"images": [IMAGE]}).json()
    assert decided["outcome"] == "allowed", decided["explanation"]


def test_bad_input_is_refused_with_a_message(server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "X-1", "affected": []}))
    result = cli(server, "advisories", "import", str(bad))
    assert result.exit_code == 2
    assert "modified: missing" in result.stderr and "nothing was imported" in result.stderr
    http = httpx.Client(base_url=server.base_url)
    for body in ({}, {"records": []}, {"records": [{"id": "x"}]}, [1]):
        r = http.post("/v1/advisories:import", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["message"]
    missing = http.get("/v1/advisories/NOPE-1")
    assert missing.status_code == 404 and "import it first" in missing.json()["message"]
    r = http.post("/v1/projects/prod/images:checkVulnerabilityPolicy", json={"image": IMAGE})
    assert r.status_code == 400 and "vulnerability policy" in r.json()["message"]
    r = http.post(
        "/v1/projects/prod/images:checkVulnerabilityPolicy",
        json={"image": "gcr.io/acme/goapp:latest", "policy": {"vulnerabilities": {}}},
    )
    assert r.status_code == 400 and "digest" in r.json()["message"]


def test_imports_are_chunked_under_the_body_limit() -> None:
    from chainproof.cli.scanning import CHUNK, CHUNK_BYTES, _chunks
    from chainproof.vuln.osv import parse_record

    big = "x" * 600_000
    records = [
        parse_record({"id": f"BIG-{i}", "modified": "2026-01-01T00:00:00Z", "details": big})
        for i in range(12)
    ]
    small = [
        parse_record({"id": f"S-{i}", "modified": "2026-01-01T00:00:00Z"}) for i in range(2_500)
    ]
    chunks = list(_chunks(records + small))
    assert sum(len(c) for c in chunks) == 2_512
    assert all(len(c) <= CHUNK for c in chunks)
    assert all(sum(len(json.dumps(a.raw)) for a in c) <= CHUNK_BYTES for c in chunks)
