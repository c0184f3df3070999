"""``chainproof subscriptions create|list|get|delete|deliveries`` against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from chainproof.domain import webhook_signature
from live import LiveServer, live_server

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def cli(server: LiveServer, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", server.base_url])


def test_subscriptions_from_the_cli(server: LiveServer, tmp_path: Path) -> None:
    made = cli(server, "subscriptions", "create", "hook", "-p", "cli",
               "--url", "https://hooks.example/cp", "--kind", "occurrence",
               "--event-type", "occurrence.created", "--description", "sec team")  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert webhook_signature.check_secret(secret) == secret
    assert "shown now and never again" in made.stdout

    key = tmp_path / "secret"
    key.write_text(webhook_signature.new_secret() + "\n")
    made = cli(server, "subscriptions", "create", "mine", "-p", "cli",
               "--url", "https://hooks.example/2", "--secret-file", str(key), "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "secret" not in json.loads(made.stdout)["http"]
    made = cli(server, "subscriptions", "create", "bus", "-p", "cli",
               "--nats-subject", "chainproof.cli", "--kind", "decision", "--json")  # fmt: skip
    assert json.loads(made.stdout)["nats"] == {"subject": "chainproof.cli"}

    listed = cli(server, "subscriptions", "list", "-p", "cli", "--json")
    names = [s["name"] for s in json.loads(listed.stdout)["subscriptions"]]
    assert names == [f"projects/cli/subscriptions/{i}" for i in ("bus", "hook", "mine")]
    assert secret not in listed.stdout
    only = cli(server, "subscriptions", "list", "-p", "cli", "--kind", "decision", "--json")
    assert [s["name"] for s in json.loads(only.stdout)["subscriptions"]] == [
        "projects/cli/subscriptions/bus",
        "projects/cli/subscriptions/mine",
    ]
    table = cli(server, "subscriptions", "list", "-p", "cli")
    assert table.exit_code == 0 and all(i in table.stdout for i in ("bus", "hook", "mine"))

    got = cli(server, "subscriptions", "get", "hook", "-p", "cli")
    assert got.exit_code == 0 and "occurrence.created" in got.stdout and secret not in got.stdout
    log = cli(server, "subscriptions", "deliveries", "hook", "-p", "cli", "--state", "dead")
    assert log.exit_code == 0 and "no deliveries match" in log.stdout

    assert cli(server, "subscriptions", "delete", "hook", "-p", "cli").exit_code == 0
    gone = cli(server, "subscriptions", "get", "hook", "-p", "cli")
    assert gone.exit_code == 2 and "does not exist" in gone.stderr


def test_bad_cli_input_exits_2_saying_why(server: LiveServer) -> None:
    both = cli(server, "subscriptions", "create", "x", "-p", "cli", "--url", "https://a/",
               "--nats-subject", "a")  # fmt: skip
    assert both.exit_code == 2 and "exactly one destination" in both.stderr
    neither = cli(server, "subscriptions", "create", "x", "-p", "cli")
    assert neither.exit_code == 2 and "exactly one destination" in neither.stderr
    plain = cli(server, "subscriptions", "create", "x", "-p", "cli", "--url", "http://a.example/")
    assert plain.exit_code == 2 and "plain http" in plain.stderr
    bad_id = cli(server, "subscriptions", "get", "a/b", "-p", "cli")
    assert bad_id.exit_code == 2 and "must not contain '/'" in bad_id.stderr


@pytest.mark.parametrize("command", ["create", "list", "get", "delete", "deliveries"])
def test_every_subscriptions_command_has_help(command: str) -> None:
    r = runner.invoke(app, ["subscriptions", command, "--help"])
    assert r.exit_code == 0 and "--project" in r.stdout
