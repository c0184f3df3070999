"""``chainproof subscriptions …``: where a project's events go (webhooks, NATS JetStream).

* ``create ID --url URL [--secret-file F]`` or ``create ID --nats-subject S``, filtered with
  ``--kind`` and ``--event-type`` (repeatable); a webhook secret the server generates is
  printed once;
* ``list`` (optionally only those receiving a kind or an event type), ``get``, ``delete``;
* ``deliveries ID [--state dead]``: the delivery log, and its dead letters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from chainproof.cli.inputs import read_text
from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json, table
from chainproof.domain.events import RESOURCE_KINDS, EventType
from chainproof.domain.names import validate_resource_id
from chainproof.errors import InvalidArgument

app = typer.Typer(
    help="Subscriptions: send a project's events (CloudEvents) to webhooks or NATS JetStream.",
    no_args_is_help=True,
)

_TYPES = ", ".join(t.value.removeprefix("dev.chainproof.") for t in EventType)
IdArg = Annotated[str, typer.Argument(help="Subscription ID, e.g. security-hook.")]


def _path(project: str, subscription_id: str | None = None) -> str:
    base = f"/v1/projects/{quote(project, safe='')}/subscriptions"
    if subscription_id is None:
        return base
    validate_resource_id(subscription_id, what="subscription ID")
    return f"{base}/{quote(subscription_id, safe='')}"


def _destination(sub: dict[str, Any]) -> str:
    if "http" in sub:
        return str(sub["http"]["url"])
    if "nats" in sub:
        return f"nats: {sub['nats']['subject']}"
    return f"internal: {sub.get('internal', '')}"


def _show(sub: dict[str, Any]) -> None:
    note(sub["name"])
    note(f"  destination  {_destination(sub)}")
    note(f"  kinds        {', '.join(sub['kinds']) or 'every kind'}")
    note(f"  event types  {', '.join(sub['eventTypes']) or 'every type'}")
    if sub.get("description"):
        note(f"  description  {sub['description']}")
    note(f"  created      {sub['createTime']}")


@app.command("create")
@connected
def create(
    server: Server,
    subscription_id: IdArg,
    project: ProjectOpt,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Webhook URL; each event is POSTed there, HMAC-signed."),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            help="A file holding the webhook secret (whsec_…). Without it the server makes "
            "one and this command prints it, once.",
        ),
    ] = None,
    nats_subject: Annotated[
        str | None,
        typer.Option("--nats-subject", help="Publish to this NATS JetStream subject instead."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="Only events about this kind of resource (repeatable): "
            + ", ".join(sorted(RESOURCE_KINDS))
            + ". Default: every kind.",
        ),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--event-type", help=f"Only this event type (repeatable): {_TYPES}. Default: all."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="A note for people.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a subscription: PROJECT's events go to a webhook (--url) or a NATS subject."""
    with errors():
        if (url is None) == (nats_subject is None):
            raise InvalidArgument("give exactly one destination: --url or --nats-subject")
        if secret_file is not None and url is None:
            raise InvalidArgument("--secret-file goes with --url (NATS messages are not signed)")
        body: dict[str, Any] = {
            "description": description,
            "kinds": list(kind or []),
            "eventTypes": list(event_type or []),
        }
        if url is not None:
            http: dict[str, str] = {"url": url}
            if secret_file is not None:
                http["secret"] = read_text(secret_file, "--secret-file").strip()
            body["http"] = http
        else:
            body["nats"] = {"subject": nats_subject}
        with server.client() as c:
            made = c.request(
                "POST", _path(project), params={"subscriptionId": subscription_id}, body=body
            )
    if json_out:
        print_json(made)
        return
    _show(made)
    secret = made.get("http", {}).get("secret")
    if secret:
        note("The webhook secret is shown now and never again; give it to the receiver:")
        typer.echo(secret)


@app.command("list")
@connected
def list_(
    server: Server,
    project: ProjectOpt,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only subscriptions receiving this kind.")
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option("--event-type", help="Only subscriptions receiving this event type."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the subscriptions of PROJECT (never their secrets)."""
    with errors():
        params = {"kind": kind or "", "eventType": event_type or ""}
        with server.client() as c:
            got = c.request("GET", _path(project), params=params)
    subs = got.get("subscriptions", [])
    if json_out:
        print_json({"subscriptions": subs})
        return
    if not subs:
        note(f"projects/{project} has no subscriptions that match")
        return
    t = table("id", "destination", "kinds", "event types", "created")
    for sub in subs:
        t.add_row(
            sub["name"].rsplit("/", 1)[1],
            _destination(sub),
            ", ".join(sub["kinds"]) or "all",
            ", ".join(sub["eventTypes"]) or "all",
            sub["createTime"],
        )
    out.print(t)


@app.command("get")
@connected
def get(
    server: Server,
    subscription_id: IdArg,
    project: ProjectOpt,
    json_out: JsonOpt = False,
) -> None:
    """Show one subscription (without its secret)."""
    with errors(), server.client() as c:
        got = c.request("GET", _path(project, subscription_id))
    if json_out:
        print_json(got)
        return
    _show(got)


@app.command("delete")
@connected
def delete(
    server: Server,
    subscription_id: IdArg,
    project: ProjectOpt,
) -> None:
    """Delete a subscription with its delivery log; events not yet delivered are dropped."""
    with errors(), server.client() as c:
        c.request("DELETE", _path(project, subscription_id))
    note(f"deleted projects/{project}/subscriptions/{subscription_id}")


@app.command("deliveries")
@connected
def deliveries(
    server: Server,
    subscription_id: IdArg,
    project: ProjectOpt,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only pending, delivered or dead (the dead letters)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many, oldest first.")
    ] = 100,
    json_out: JsonOpt = False,
) -> None:
    """The delivery log of a subscription: each event, its state, attempts and last error."""
    with errors():
        params: dict[str, str | int] = {"state": state or "", "pageSize": limit}
        with server.client() as c:
            got = c.request("GET", _path(project, subscription_id) + "/deliveries", params=params)
    rows = got.get("deliveries", [])
    if json_out:
        print_json({"deliveries": rows})
        return
    if not rows:
        note("no deliveries match")
        return
    t = table("event", "subject", "state", "attempts", "last error")
    for d in rows:
        t.add_row(d["eventId"], d["subject"], d["state"], str(d["attempts"]), d["lastError"])
    out.print(t)
