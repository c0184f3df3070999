"""Things every CLI command must do: explain itself with --help, say clearly when the server
cannot be reached (exit 3), and work as the installed ``chainproof`` program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from chainproof.cli.client import ChainproofClient, ServerOptions, error_from_response
from chainproof.cli.main import _register_groups, app
from chainproof.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from chainproof.services.secret_key_file import SecretKeyFile
from live import free_port, live_server

_register_groups()
runner = CliRunner()
CHAINPROOF = Path(sys.executable).parent / "chainproof"
IMAGE = f"gcr.io/acme/app@sha256:{'a' * 64}"


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(group: Any, prefix: list[str]) -> None:
        for name, sub in getattr(group, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "chainproof")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"


def test_the_command_tree_is_complete() -> None:
    names = {" ".join(p) for p in _command_paths()}
    assert {
        "keys generate",
        "attestor create",
        "attestor get",
        "attestor list",
        "attestor delete",
        "attestation create",
        "attestation upload",
        "attestation list",
        "attestation verify",
        "policy validate",
        "policy set",
        "policy get",
        "policy evaluate",
        "decisions list",
    } <= names


UNREACHABLE_COMMANDS = [
    ["attestor", "list", "--project", "p"],
    ["attestor", "get", "p/qa"],
    ["attestation", "list", "--image", IMAGE, "--project", "p"],
    ["attestation", "verify", "--image", IMAGE, "--attestor", "p/qa"],
    ["policy", "get", "--project", "p"],
    ["policy", "evaluate", "--image", IMAGE, "--project", "p"],
    ["decisions", "list", "--project", "p"],
]


@pytest.mark.parametrize("args", UNREACHABLE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unreachable_server_exits_3_with_a_clear_message(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, [*args, "--server", url])
    assert result.exit_code == 3, result.output
    assert f"cannot reach the chainproof server at {url}" in result.stderr
    assert "chainproof serve" in result.stderr


def test_server_comes_from_the_environment() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["decisions", "list", "-p", "p"], env={"CHAINPROOF_SERVER": url})
    assert result.exit_code == 3
    assert url in result.stderr


def test_a_server_url_without_scheme_is_a_usage_error() -> None:
    result = runner.invoke(app, ["decisions", "list", "-p", "p", "--server", "localhost:8080"])
    assert result.exit_code == 2
    assert "has no scheme" in result.stderr


def test_client_key_without_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    with pytest.raises(InvalidArgument, match="--client-key needs --client-cert"):
        ChainproofClient(ServerOptions("https://127.0.0.1:1", client_key=key))
    with pytest.raises(InvalidArgument, match="--ca-cert .*no such file"):
        ChainproofClient(ServerOptions("https://127.0.0.1:1", ca_cert=tmp_path / "none.pem"))


def test_server_errors_become_the_matching_error_leaves() -> None:
    import httpx

    request = httpx.Request("GET", "http://x/v1/projects/p/notes/n")

    def answer(status: int, grpc: str, message: str, details: list[str]) -> httpx.Response:
        full = message + (": " + "; ".join(details) if details else "")
        violations = [{"field": "", "description": d} for d in details]
        body = {
            "code": 0,
            "message": full,
            "error": {
                "code": status,
                "status": grpc,
                "message": full,
                "details": [{"fieldViolations": violations}] if details else [],
            },
        }
        return httpx.Response(status, json=body, request=request)

    not_found = error_from_response(answer(404, "NOT_FOUND", "note x does not exist", []))
    assert isinstance(not_found, NotFound)
    assert not_found.message == "note x does not exist"
    precondition = error_from_response(
        answer(400, "FAILED_PRECONDITION", "attestor is in use", ["a", "b"])
    )
    assert isinstance(precondition, FailedPrecondition)
    assert precondition.message == "attestor is in use"
    assert precondition.details == ("a", "b")
    proxy = error_from_response(httpx.Response(502, text="Bad Gateway", request=request))
    assert isinstance(proxy, Unavailable)
    assert "HTTP 502" in proxy.message


def test_installed_program_smoke(tmp_path: Path) -> None:
    assert CHAINPROOF.exists(), "the project is installed in the venv with its entry point"
    env = {**os.environ, "NO_COLOR": "1"}
    help_ = subprocess.run(
        [str(CHAINPROOF), "attestation", "--help"], capture_output=True, text=True, env=env
    )
    assert help_.returncode == 0
    assert "verify" in help_.stdout

    generated = subprocess.run(
        [str(CHAINPROOF), "keys", "generate", "--out", str(tmp_path / "k"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["algorithm"] == "ECDSA_P256_SHA256"

    url = f"http://127.0.0.1:{free_port()}"
    down = subprocess.run(
        [str(CHAINPROOF), "policy", "get", "--project", "p", "--server", url],
        capture_output=True,
        text=True,
        env=env,
    )
    assert down.returncode == 3
    assert "cannot reach the chainproof server" in down.stderr

    with live_server(grpc_enabled=False) as live:
        listed = subprocess.run(
            [str(CHAINPROOF), "attestor", "list", "--project", "p", "--json"],
            capture_output=True,
            text=True,
            env={**env, "CHAINPROOF_SERVER": live.base_url},
        )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"attestors": []}


def test_keys_secret_key_makes_a_key_file_once_and_never_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "webhook-secret-new.key"
    made = runner.invoke(app, ["keys", "secret-key", str(path), "--json"])
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert answer["created"] is True and len(answer["keyId"]) == 16
    assert (path.stat().st_mode & 0o777) == 0o600
    text = path.read_text()
    # The key ID printed is the one the server uses for this file.
    assert SecretKeyFile(path).ring().key_id == answer["keyId"]
    again = runner.invoke(app, ["keys", "secret-key", str(path)])
    assert again.exit_code == 0, again.output
    assert "left as it is" in again.output and answer["keyId"] in again.output
    assert path.read_text() == text

    damaged = tmp_path / "damaged.key"
    damaged.write_text("not a key\n")
    refused = runner.invoke(app, ["keys", "secret-key", str(damaged)])
    assert refused.exit_code != 0
    assert "not base64" in refused.output and str(damaged) in refused.output
