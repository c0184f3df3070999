"""``chainproof tokens|iam|auth|audit`` and ``--token``/$CHAINPROOF_TOKEN against a live
server on loopback (where the anonymous caller is the local administrator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def cli(
    server: LiveServer, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> Result:
    pre = ["--token", token] if token else []
    return runner.invoke(app, [*pre, *args, "--server", server.base_url], env=env)


def test_whoami_on_loopback_is_the_local_admin(server: LiveServer) -> None:
    r = cli(server, "auth", "whoami", "--json")
    assert r.exit_code == 0, r.output
    me = json.loads(r.stdout)
    assert me["member"] == "anonymous" and me["grants"] == [
        {"project": "*", "role": "roles/chainproof.admin"}
    ]


def test_tokens_iam_and_audit_from_the_cli(server: LiveServer, tmp_path: Path) -> None:
    made = cli(server, "tokens", "create", "ci", "-p", "cli", "-r",
               "roles/containeranalysis.occurrences.viewer", "--expires", "1d", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = json.loads(made.stdout)["secret"]
    assert secret.startswith("cpt_")

    listed = cli(server, "tokens", "list", "-p", "cli", "--json")
    assert secret not in listed.stdout
    assert [t["name"] for t in json.loads(listed.stdout)["tokens"]] == ["ci"]

    me = cli(server, "auth", "whoami", "--json", env={"CHAINPROOF_TOKEN": secret})
    assert json.loads(me.stdout)["member"] == "token:ci"
    # The token may read, not write: the CLI exits 2 with the server's reason.
    denied = cli(server, "policy", "get", "-p", "cli", token=secret)
    assert denied.exit_code == 2
    assert "binaryauthorization.policy.get" in denied.stderr

    added = cli(server, "iam", "add-binding", "-p", "cli", "-r",
                "roles/binaryauthorization.policyViewer", "-m", "token:ci", "--json")  # fmt: skip
    assert added.exit_code == 0, added.output
    policy = json.loads(added.stdout)
    assert policy["bindings"] == [
        {"role": "roles/binaryauthorization.policyViewer", "members": ["token:ci"]}
    ]
    # A stale etag is refused (read-modify-write), a fresh one accepted.
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"bindings": [], "etag": "AAAAAAAAAAAAAAAA"}))
    refused = cli(server, "iam", "set", str(stale), "-p", "cli")
    assert refused.exit_code == 2 and "etag mismatch" in refused.stderr
    removed = cli(server, "iam", "remove-binding", "-p", "cli", "-r",
                  "roles/binaryauthorization.policyViewer", "-m", "token:ci", "--json")  # fmt: skip
    assert json.loads(removed.stdout)["bindings"] == []

    revoked = cli(server, "tokens", "revoke", "ci", "-p", "cli")
    assert revoked.exit_code == 0, revoked.output
    gone = cli(server, "auth", "whoami", token=secret)
    assert gone.exit_code == 2 and "revoked" in gone.stderr

    audit = cli(server, "audit", "list", "-p", "cli", "--json")
    entries = json.loads(audit.stdout)["auditLogs"]
    perms = {(e["permission"], e["outcome"]) for e in entries}
    assert ("chainproof.tokens.create", "granted") in perms
    assert ("chainproof.projects.setIamPolicy", "granted") in perms
    assert secret not in audit.stdout
    # A granted write records how it ended: the stale-etag setIamPolicy failed.
    codes = {e["code"] for e in entries if e["permission"] == "chainproof.projects.setIamPolicy"}
    assert codes == {"OK", "FAILED_PRECONDITION"}
    only = cli(server, "audit", "list", "-p", "cli", "--permission", "chainproof.tokens.revoke",
               "--since", "1h", "--json")  # fmt: skip
    assert {e["permission"] for e in json.loads(only.stdout)["auditLogs"]} == {
        "chainproof.tokens.revoke"
    }


def test_token_is_not_sent_over_plain_http_to_another_machine() -> None:
    r = runner.invoke(
        app, ["--token", "cpt_x", "auth", "whoami", "--server", "http://chainproof.example:8080"]
    )
    assert r.exit_code == 2 and "plain http" in r.stderr


def test_serve_refuses_a_public_address_without_authentication(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["serve", "--host", "0.0.0.0", "--database-url", f"sqlite:///{tmp_path}/x.db"],  # noqa: S104
    )
    assert r.exit_code == 2
    assert "refusing to listen on 0.0.0.0 with no authentication configured" in r.stderr
    assert "--allow-anonymous" in r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching anything
