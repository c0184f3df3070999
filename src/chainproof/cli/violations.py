"""``chainproof violations list``: which running pods the policy denies now, and why
(continuous validation, docs/runtime.md), read from a server."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json, table
from chainproof.errors import InvalidArgument

app = typer.Typer(
    help="Violations: running pods the policy now denies (continuous validation).",
    no_args_is_help=True,
)

STATES = ("open", "all")


def _denied(v: dict[str, Any]) -> list[dict[str, Any]]:
    images = v.get("podEvent", {}).get("images") or []
    return [i for i in images if i.get("result") == "DENY"]


@app.command("list")
@connected
def list_(
    server: Server,
    project: ProjectOpt,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster.")] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace.")
    ] = None,
    state: Annotated[
        str,
        typer.Option("--state", help="open (the default: still violating) or all (closed too)."),
    ] = "open",
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most this many violations.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List PROJECT's violations, newest first: the pod, since when, and what fails."""
    with errors():
        chosen = state.strip().lower()
        if chosen not in STATES:
            raise InvalidArgument(f"--state {state!r} is not one of {', '.join(STATES)}")
        params: dict[str, str | int] = {"state": chosen}
        if cluster:
            params["cluster"] = cluster
        if namespace:
            params["namespace"] = namespace
        path = f"/v1/projects/{quote(project, safe='')}/violations"
        with server.client() as api:
            found = list(api.paged(path, "violations", params, limit=limit))
    if as_json:
        print_json({"violations": found})
        return
    if not found:
        note(
            f"projects/{project} has no {'open ' if chosen == 'open' else ''}violations that match"
        )
        return
    t = table("opened", "state", "cluster", "namespace/pod", "workload", "why")
    for v in found:
        pod = v.get("podEvent", {})
        workload = pod.get("workload", {})
        state_text = Text(v["state"], style="red" if v["state"] == "OPEN" else "green")
        why = "; ".join(f"{i['image']}: {i['description']}" for i in _denied(v))
        if v["state"] != "OPEN":
            why = f"closed {v.get('closeTime')}: {v.get('closeReason', '')}"
        t.add_row(
            Text(str(v["openTime"])),
            state_text,
            Text(str(v["cluster"])),
            Text(f"{pod.get('podNamespace', '')}/{pod.get('pod', '')}"),
            Text(f"{workload.get('kind', '')}/{workload.get('name', '')}"),
            Text(why),
        )
    out.print(t)
