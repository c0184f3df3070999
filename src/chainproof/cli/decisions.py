"""``chainproof decisions …``: read the judge's decision log (what was admitted or refused)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from chainproof.cli.inputs import moment
from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json
from chainproof.cli.output import table as make_table
from chainproof.domain.images import parse_image_reference
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import InvalidArgument
from chainproof.services.common import utc_now

app = typer.Typer(
    help="Read the decision log: every admission the judge allowed, denied or let through.",
    no_args_is_help=True,
)

OUTCOMES = ("allowed", "denied", "dry-run-would-deny", "breakglass", "error")


def _short(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
@connected
def list_(
    server: Server,
    project: ProjectOpt,
    image: Annotated[
        str | None, typer.Option("--image", help="Only decisions about this image.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace.")
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", help="Only this outcome: " + ", ".join(OUTCOMES) + "."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this time (RFC 3339) or age (30m, 2h, 7d)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Up to this time (RFC 3339) or age."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most this many decisions.")
    ] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List recorded admission decisions; the filters are applied by the server."""
    with errors():
        params: dict[str, str | int] = {}
        if image:
            params["image"] = parse_image_reference(image).canonical
        if namespace:
            params["namespace"] = namespace
        if outcome:
            chosen = outcome.strip().lower()
            if chosen not in OUTCOMES:
                raise InvalidArgument(f"--outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
            params["outcome"] = chosen
        now = utc_now()
        start = moment(since, "--since", now) if since else None
        end = moment(until, "--until", now) if until else None
        if start is not None:
            params["since"] = rfc3339(start)
        if end is not None:
            params["until"] = rfc3339(end)
        if start is not None and end is not None and start > end:
            raise InvalidArgument(
                f"--since {since} is after --until {until}: no decision can match"
            )
        with server.client() as api:
            decisions = api.list_decisions(project, params, limit)
    if as_json:
        print_json({"decisions": decisions})
        return
    if not decisions:
        note(f"no decisions recorded in projects/{project} match")
        return
    table = make_table("time", "outcome", "namespace", "workload", "images", "reason")
    for d in decisions:
        table.add_row(*_row(d))
    out.print(table)


def _row(d: dict[str, Any]) -> tuple[Text, ...]:
    outcome = str(d.get("outcome", ""))
    style = {"allowed": "green", "denied": "red", "breakglass": "yellow"}.get(outcome, "")
    return (
        Text(str(d.get("time", ""))),
        Text(outcome, style=style),
        Text(str(d.get("namespace", ""))),
        Text(str(d.get("workload", ""))),
        Text("\n".join(str(i) for i in d.get("images") or ())),
        Text(_short(str(d.get("message", "")))),
    )
