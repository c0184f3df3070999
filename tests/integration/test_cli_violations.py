"""``chainproof violations list`` against a live server: filters, the state, JSON output
and the table, and a bad --state refused before any request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import Result
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from chainproof.store.memory import MemoryStore
from contract.runtime_samples import T0, violation
from live import LiveServer, live_server

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    store = MemoryStore()
    rows = [
        violation("v1", "web-1", T0),
        violation("v2", "web-2", T0 + timedelta(seconds=1)),
        replace(violation("e1", "api-1", T0), cluster="edge", namespace="ops"),
        violation("old", "web-0", T0, closed=T0 + timedelta(hours=1), close_reason="VEX"),
    ]

    async def seed() -> None:
        async with store.session() as s:
            await s.violations.put_many(rows)

    asyncio.run(seed())
    with live_server(store, grpc_enabled=False) as live:
        yield live


def cli(server: LiveServer, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", server.base_url])


def test_violations_list(server: LiveServer) -> None:
    got = cli(server, "violations", "list", "-p", "p", "--json")
    assert got.exit_code == 0, got.output
    assert [v["id"] for v in json.loads(got.stdout)["violations"]] == ["v2", "v1", "e1"]
    got = cli(server, "violations", "list", "-p", "p", "--cluster", "edge", "--json")
    assert [v["id"] for v in json.loads(got.stdout)["violations"]] == ["e1"]
    got = cli(server, "violations", "list", "-p", "p", "--state", "all", "--limit", "10", "--json")
    assert "old" in [v["id"] for v in json.loads(got.stdout)["violations"]]
    got = cli(server, "violations", "list", "-p", "p", "-n", "ops")
    assert got.exit_code == 0 and "ops/api-1" in got.stdout and "CVE-2026-1" in got.stdout
    got = cli(server, "violations", "list", "-p", "nobody")
    assert got.exit_code == 0 and "no open violations" in got.stdout


def test_bad_state_is_refused(server: LiveServer) -> None:
    got = cli(server, "violations", "list", "-p", "p", "--state", "shut")
    assert got.exit_code != 0 and "--state" in got.output


def test_help_names_the_filters() -> None:
    got = runner.invoke(app, ["violations", "list", "--help"])
    assert got.exit_code == 0
    assert all(o in got.stdout for o in ("--cluster", "--namespace", "--state", "--limit"))
