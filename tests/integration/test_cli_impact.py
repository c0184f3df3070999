"""``chainproof impact`` and ``chainproof policy replay|diff|coverage`` against a live server
whose database also holds inventory rows and recorded admissions (tests/impact_samples.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from chainproof.store.factory import create_store
from impact_samples import POLICY, PROPOSED, A, E, P, record_admissions, seed
from live import LiveServer, live_server

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db')}/cp.db"

    def write(work: Any) -> None:
        async def run() -> None:
            store = create_store(url)
            await store.open()
            try:
                await work(store)
            finally:
                await store.close()

        asyncio.run(run())

    with live_server(
        grpc_enabled=False, database_url=url, admission={"project": P, "cluster": "prod"}
    ) as live:
        with httpx.Client(base_url=live.base_url) as http:
            seed(http, write, ec.generate_private_key(ec.SECP256R1()))
        record_admissions(write)
        yield live


def cli(server: LiveServer, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", server.base_url])


def test_impact_by_cve(server: LiveServer) -> None:
    r = cli(server, "impact", "-p", P, "--cve", "CVE-2026-1111", "--json")
    assert r.exit_code == 1, r.output  # a shown workload is denied now
    found = json.loads(r.stdout)
    assert [i["image"] for i in found["images"]] == [A, E] and found["complete"]
    text = cli(server, "impact", "-p", P, "--cve", "CVE-2026-1111")
    assert "Deployment/api" in text.stdout and "DENIED" in text.stdout
    assert "not affected (VEX)" in text.stdout
    limited = cli(server, "impact", "-p", P, "--cve", "CVE-2026-1111", "--limit", "1", "--json")
    page = json.loads(limited.stdout)
    assert len(page["images"]) == 1 and not page["complete"] and page["nextPageToken"]
    none = cli(server, "impact", "-p", P, "--purl", "pkg:npm/nothing-here")
    assert none.exit_code == 0 and "no running workload is affected" in none.stdout
    both = cli(server, "impact", "-p", P, "--cve", "CVE-1", "--purl", "pkg:npm/x")
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_policy_replay_diff_and_coverage(server: LiveServer, tmp_path: Path) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(yaml.safe_dump(PROPOSED))
    current = tmp_path / "current.yaml"
    current.write_text(yaml.safe_dump(POLICY))
    r = cli(server, "policy", "replay", str(proposed), "-p", P, "--since", "7d")
    assert r.exit_code == 1, r.output  # outcomes change
    assert "6 would change" in r.stdout and "namespace[edge] -> default" in r.stdout
    assert "now fails:" in r.stdout and "now passes:" in r.stdout
    data = json.loads(cli(server, "policy", "replay", str(proposed), "-p", P, "--json").stdout)
    assert data["byTransition"] == {"allowed->denied": 3, "denied->allowed": 3}
    same = cli(server, "policy", "diff", str(current), str(current), "-p", P)
    assert same.exit_code == 0 and "0 would change" in same.stdout
    diff = cli(server, "policy", "diff", str(current), str(proposed), "-p", P)
    assert diff.exit_code == 1
    assert "rule removed: kubernetesNamespaceAdmissionRules[edge]" in diff.stdout
    cov = cli(server, "policy", "coverage", "-p", P)
    assert cov.exit_code == 0 and "fall to no specific rule" in cov.stdout
    assert "shop:runner" in cov.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaultAdmissionRule: {evaluationMode: MAYBE}\n")
    refused = cli(server, "policy", "replay", str(bad), "-p", P)
    assert refused.exit_code == 2 and "evaluationMode" in refused.output
