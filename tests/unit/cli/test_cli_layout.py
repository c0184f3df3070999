"""The CLI's shared parts: one module each for options, output and inputs, no import of
cli/main.py from a subcommand, and the exit code each error class carries."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

import chainproof.cli
from chainproof.cli.options import JsonOpt, Server, connected, set_token
from chainproof.cli.output import EXIT_CHECK_FAILED, check_failed, errors, fail
from chainproof.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

CLI = Path(chainproof.cli.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize(
    "module", sorted(p.name for p in CLI.glob("*.py") if p.name != "main.py"), ids=str
)
def test_no_subcommand_imports_main(module: str) -> None:
    imported = _imports(CLI / module)
    assert "chainproof.cli.main" not in imported
    assert not any(name.startswith("chainproof.cli.main.") for name in imported)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("x"), 2),
        (FailedPrecondition("x"), 2),
        (NotFound("x"), 2),
        (PermissionDenied("x"), 2),
        (Internal("x"), 2),
        (Unavailable("x"), 3),
        (DeadlineExceeded("x"), 3),
    ],
)
def test_each_error_class_carries_its_exit_code(error: Exception, code: int) -> None:
    assert fail(error).exit_code == code  # type: ignore[arg-type]
    with pytest.raises(typer.Exit) as info, errors():
        raise error
    assert info.value.exit_code == code
    assert check_failed().exit_code == EXIT_CHECK_FAILED == 1


app = typer.Typer()
seen: list[Server] = []


@app.command()
@connected
def probe(
    server: Server,
    name: Annotated[str, typer.Argument()],
    as_json: JsonOpt = False,
) -> None:
    seen.append(server)
    typer.echo(f"{name} {as_json}")


def test_connected_commands_take_the_connection_options_after_their_own() -> None:
    seen.clear()
    set_token("t0ken")
    try:
        result = CliRunner().invoke(
            app,
            ["n", "--json", "--server", "https://cp.example:8443", "--ca-cert", "ca.pem",
             "--client-cert", "me.pem", "--client-key", "me.key"],
        )  # fmt: skip
    finally:
        set_token(None)
    assert result.exit_code == 0, result.output
    assert result.output == "n True\n"
    (server,) = seen
    options = server.options
    assert (options.url, options.ca_cert, options.client_cert, options.client_key) == (
        "https://cp.example:8443",
        Path("ca.pem"),
        Path("me.pem"),
        Path("me.key"),
    )
    assert options.bearer == "t0ken"
    help_text = CliRunner().invoke(app, ["--help"]).output
    for option in ("--server", "--ca-cert", "--client-cert", "--client-key", "--json"):
        assert option in help_text


def test_a_command_without_a_server_parameter_is_refused() -> None:
    def no_server(name: str) -> None: ...

    with pytest.raises(TypeError, match="server: Server"):
        connected(no_server)


@pytest.mark.parametrize(
    "command",
    [
        ["attestor", "list"],
        ["tokens", "list"],
        ["audit", "list"],
        ["image", "packages", "r.example/app@sha256:" + "a" * 64],
        ["attestation", "upload", "occ.json"],
    ],
)
def test_every_project_option_is_checked_before_any_request(command: list[str]) -> None:
    from chainproof.cli.main import _register_groups
    from chainproof.cli.main import app as root

    _register_groups()
    # Port 1 answers nobody: a request would end in exit 3 (unreachable), not 2.
    result = CliRunner().invoke(root, [*command, "-p", "a/../b", "--server", "http://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert "--project 'a/../b' is not a valid project ID" in result.output
