"""``chainproof ingest`` and the image/package queries against a live server, on real files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

from .test_ingest_api import IMAGE as BUSTER
from .test_ingest_api import openvex

_register_groups()
runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
IMAGE = "registry.example/team/alpine@sha256:" + "f" * 64


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def cli(server: LiveServer, *args: str):
    return runner.invoke(app, [*args, "--server", server.base_url])


def test_ingest_many_files_then_query(server: LiveServer) -> None:
    files = [
        str(FIXTURES / "sbom/alpine-cyclonedx.json"),
        str(FIXTURES / "scans/trivy/alpine-310.json"),
        str(FIXTURES / "sbom/invalid-cyclonedx.json"),
    ]
    r = cli(server, "ingest", *files, "--image", IMAGE, "-p", "cli", "--json")
    assert r.exit_code == 1  # one file refused
    results = json.loads(r.stdout)
    assert results[0]["created"]["PACKAGE"] == 14
    assert results[1]["created"] == {"DISCOVERY": 1, "VULNERABILITY": 4}
    assert "not a format chainproof knows" in results[2]["error"]

    r = cli(server, "image", "packages", IMAGE, "-p", "cli", "--json")
    assert r.exit_code == 0, r.output
    assert "musl" in {p["name"] for p in json.loads(r.stdout)}
    r = cli(server, "image", "vulns", IMAGE, "-p", "cli", "--json")
    assert r.exit_code == 0, r.output
    sources = json.loads(r.stdout)["sources"]
    found = {(f["id"], f["package"]) for findings in sources.values() for f in findings}
    assert ("CVE-2019-1549", "libssl1.1") in found and len(found) == 4
    r = cli(server, "package", "images", "pkg:alpine/musl", "-p", "cli", "--json")
    assert [i["image"] for i in json.loads(r.stdout)] == [IMAGE]

    again = cli(server, "ingest", files[1], "--image", IMAGE, "-p", "cli")
    assert again.exit_code == 0 and "(unchanged)" in again.stdout


def test_single_refused_file_says_why(server: LiveServer) -> None:
    r = cli(
        server,
        "ingest",
        str(FIXTURES / "sbom/invalid-spdx.json"),
        "--image",
        IMAGE,
        "-p",
        "cli",
        "--format",
        "spdx-json",
    )
    assert r.exit_code != 0 and "spdxVersion" in r.output


def test_image_vulns_shows_the_statement_that_resolves_each_finding(
    server: LiveServer, tmp_path: Path
) -> None:
    report = FIXTURES / "scans/trivy/debian-buster.json"
    vex = tmp_path / "vex.json"
    vex.write_bytes(openvex("pkg:deb/debian/libidn2-0"))
    for document in (report, vex):
        r = cli(server, "ingest", str(document), "--image", BUSTER, "-p", "vexed")
        assert r.exit_code == 0, r.output
    # Wide enough that no cell folds: each finding is one line of the table.
    shown = runner.invoke(
        app,
        ["image", "vulns", BUSTER, "-p", "vexed", "--server", server.base_url],
        env={"COLUMNS": "300"},
    )
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.stdout.splitlines() if "libidn2-0" in x)
    assert "NOT_AFFECTED" in line and "projects/vexed/notes/vex-" in line
    bash = next(x for x in shown.stdout.splitlines() if " bash " in x)
    assert "vex-" not in bash
    as_json = json.loads(cli(server, "image", "vulns", BUSTER, "-p", "vexed", "--json").stdout)
    (findings,) = as_json["sources"].values()
    resolved = {f["package"]: f["resolvedBy"] for f in findings}
    assert resolved["bash"] == "" and resolved["libidn2-0"].startswith("projects/vexed/notes/vex-")
