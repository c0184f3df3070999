"""The ``chainproof`` command line: the root command, ``serve`` and ``version``, and the
registration of the command groups (one module each, imported lazily).

Subcommands import nothing from here: what they share lives in :mod:`chainproof.cli.options`
(option declarations, the server connection), :mod:`chainproof.cli.output` (printing, errors
and exit codes) and :mod:`chainproof.cli.inputs` (files, images, times). Exit codes: 0 done,
1 a check failed, 2 bad usage or input, 3 the server or database could not be reached.
"""

from __future__ import annotations

from typing import Annotated

import typer

from chainproof.cli.options import ConfigOpt, set_token
from chainproof.cli.output import fail
from chainproof.errors import ChainproofError, FailedPrecondition, InvalidArgument

app = typer.Typer(
    name="chainproof",
    help="Software supply chain security: the scribe (Grafeas v1 store) and the judge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env CHAINPROOF_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="REST port (env CHAINPROOF_PORT, 8080)")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sqlite:///path, postgresql://user@host/db or memory:// "
            "(env CHAINPROOF_DATABASE_URL, sqlite:///./data/chainproof.db)",
        ),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option("--grpc-port", help="gRPC port (env CHAINPROOF_GRPC_PORT, 8090)"),
    ] = None,
    grpc: Annotated[
        bool | None,
        typer.Option("--grpc/--no-grpc", help="Serve gRPC too (env CHAINPROOF_GRPC_ENABLED)"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the REST and gRPC ports. Above 1, prefer "
            "PostgreSQL: every process is a stateless replica of the same database (on "
            "SQLite they take turns writing, and see each other's changes within "
            "admission.cache_ttl_seconds).",
        ),
    ] = 1,
    allow_anonymous: Annotated[
        bool,
        typer.Option(
            "--allow-anonymous",
            help="Start on a non-loopback address even with no authentication configured; "
            "anonymous callers then get only what IAM grants allUsers (see docs/auth.md)",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Start the server: the Grafeas v1 REST and gRPC APIs, operations endpoints, the judge.

    With --workers N, N processes share the REST and gRPC ports (a supervisor starts, watches
    and stops them); SIGTERM or Ctrl-C stops everything cleanly.
    """
    from chainproof.bootstrap import configure_logging, serve_in_this_process
    from chainproof.config import load_settings
    from chainproof.services.access.setup import check_listener
    from chainproof.supervisor import serve_with_workers

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            database_url=database_url,
            grpc_port=grpc_port,
            grpc_enabled=grpc,
        )
        if allow_anonymous:
            settings.auth.allow_anonymous = True
        check_listener(settings)  # says in one line why it will not start
    except (InvalidArgument, FailedPrecondition) as exc:
        raise fail(exc) from None
    configure_logging(settings)
    try:
        if workers > 1:
            code = serve_with_workers(settings, workers)
            if code:
                raise typer.Exit(code)
        else:
            serve_in_this_process(settings)
    except ChainproofError as exc:
        raise fail(exc) from None


@app.callback()
def root(
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CHAINPROOF_TOKEN",
            show_envvar=True,
            help="Bearer token for the server: an OIDC or Kubernetes token, or a chainproof "
            "API token (chainproof tokens create). Prefer the environment variable: a "
            "command line is visible to other users of the machine.",
        ),
    ] = None,
) -> None:
    """Software supply chain security: the scribe (Grafeas v1 store) and the judge."""
    set_token(token)


@app.command()
def version() -> None:
    """Print the chainproof version."""
    from chainproof import __version__

    typer.echo(__version__)


_registered = False


def _register_groups() -> None:
    """Attach the command groups (imported lazily, so ``chainproof --help`` stays fast).

    Idempotent: tests call it before invoking :data:`app` directly.
    """
    global _registered
    if _registered:
        return
    _registered = True
    from chainproof.cli import (
        access,
        attestations,
        attestors,
        decisions,
        impact,
        ingest,
        keys,
        policy,
        registry,
        scanning,
        subscriptions,
        violations,
        webhook,
    )

    app.add_typer(keys.app, name="keys")
    app.add_typer(attestors.app, name="attestor")
    app.add_typer(attestations.app, name="attestation")
    app.add_typer(policy.app, name="policy")
    app.add_typer(decisions.app, name="decisions")
    app.add_typer(webhook.app, name="webhook")
    app.add_typer(registry.app, name="registry")
    app.add_typer(scanning.advisories_app, name="advisories")
    app.add_typer(scanning.image_app, name="image")
    app.command("vouch")(scanning.vouch)
    app.add_typer(access.tokens_app, name="tokens")
    app.add_typer(access.iam_app, name="iam")
    app.add_typer(access.auth_app, name="auth")
    app.add_typer(access.audit_app, name="audit")
    app.add_typer(subscriptions.app, name="subscriptions")
    app.command("impact")(impact.impact)
    app.add_typer(violations.app, name="violations")
    app.registered_commands += ingest.ingest_app.registered_commands
    scanning.image_app.registered_commands += ingest.image_app.registered_commands
    app.add_typer(ingest.package_app, name="package")


def main() -> None:
    _register_groups()
    app()
