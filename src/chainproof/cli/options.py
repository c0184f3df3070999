"""The options ``chainproof`` commands share, declared once.

* :func:`connected` gives a command the four options that reach a server (``--server``,
  ``--ca-cert``, ``--client-cert``, ``--client-key``) and hands it one :class:`Server`; the
  command declares ``server: Server`` and opens ``server.client()``. The options stay on the
  command (``chainproof attestor list -p P --server URL``), as they always were.
* The bearer token is the root option (``chainproof --token … COMMAND``, else
  ``$CHAINPROOF_TOKEN``): :func:`set_token` records it for every :class:`Server`.
* :data:`JsonOpt`, :data:`ProjectOpt`, :data:`ConfigOpt` and the other ``Annotated`` types are
  the declarations commands reuse as they are; every ``--project`` (:func:`project_option`
  when its help says more) is checked as a project ID once, here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from chainproof.cli.client import ChainproofClient, ServerOptions
from chainproof.cli.output import fail
from chainproof.domain.names import validate_project_id
from chainproof.errors import InvalidArgument

__all__ = [
    "ConfigOpt",
    "ImageArg",
    "JsonOpt",
    "ProjectOpt",
    "Server",
    "connected",
    "project_option",
    "set_token",
]

R = TypeVar("R")

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="CHAINPROOF_SERVER",
        show_envvar=True,
        help="chainproof server URL (default: http://127.0.0.1:8080).",
    ),
]
CaCertOpt = Annotated[
    Path | None,
    typer.Option("--ca-cert", help="PEM CA bundle to trust for an https:// server."),
]
ClientCertOpt = Annotated[
    Path | None,
    typer.Option("--client-cert", help="PEM client certificate, for a server requiring mTLS."),
]
ClientKeyOpt = Annotated[
    Path | None,
    typer.Option("--client-key", help="PEM private key of --client-cert."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _project_id(value: str | None) -> str | None:
    # Checked here, for every command, before any request: a '/' in it would address
    # another resource.
    if value is None:
        return None
    try:
        return validate_project_id(value, field="--project")
    except InvalidArgument as exc:
        raise fail(exc) from None


def project_option(help_text: str) -> Any:
    """``--project``/``-p`` with its own help, checked as a project ID when given."""
    return typer.Option("--project", "-p", help=help_text, callback=_project_id)


ProjectOpt = Annotated[str, project_option("Project ID, e.g. my-project.")]
ImageArg = Annotated[str, typer.Argument(help="registry/repository@sha256:…")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (TOML, YAML or JSON); also $CHAINPROOF_CONFIG.",
        exists=True,
        dir_okay=False,
    ),
]

#: Set by the root ``--token`` option; else ServerOptions reads $CHAINPROOF_TOKEN.
_token: dict[str, str | None] = {"value": None}


def set_token(token: str | None) -> None:
    _token["value"] = token


@dataclass(frozen=True, slots=True)
class Server:
    """The server a command talks to, as its options (and the root ``--token``) name it."""

    options: ServerOptions

    def client(self) -> ChainproofClient:
        return ChainproofClient(self.options)


def _option(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


# The parameter names are internal; the option names come from the annotations.
_CONNECTION = (
    _option("server_url", ServerOpt),
    _option("ca_cert", CaCertOpt),
    _option("client_cert", ClientCertOpt),
    _option("client_key", ClientKeyOpt),
)


def connected(command: Callable[..., R]) -> Callable[..., R]:
    """Declare the connection options for ``command``, which takes ``server: Server`` instead.

    Typer reads a command's options from its signature: the wrapper shows the command's own
    parameters without ``server``, then the four connection options; when called, it builds
    the :class:`Server` from them and passes it on.
    """
    signature = inspect.signature(command, eval_str=True)
    given = signature.parameters.get("server")
    if given is None or given.annotation is not Server:
        raise TypeError(f"{command.__name__} must take a parameter server: Server")
    kept = [p for p in signature.parameters.values() if p.name != "server"]
    clash = {p.name for p in kept} & {p.name for p in _CONNECTION}
    if clash:
        raise TypeError(f"{command.__name__} already has parameters {sorted(clash)}")

    @functools.wraps(command)
    def run(
        *args: Any,
        server_url: str | None = None,
        ca_cert: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        **kwargs: Any,
    ) -> R:
        options = ServerOptions(server_url, ca_cert, client_cert, client_key, token=_token["value"])
        return command(*args, server=Server(options), **kwargs)

    run.__signature__ = signature.replace(parameters=[*kept, *_CONNECTION])  # type: ignore[attr-defined]
    return run
