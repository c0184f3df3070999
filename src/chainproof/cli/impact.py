"""``chainproof impact``: which running workloads a CVE, package, key, attestor or image
touches, and whether the policy denies them now (GET /v1/projects/P/impact).

A thin client: the server finds, confirms and judges; this prints the pages it answers,
following next page tokens up to ``--limit`` affected images and saying when more remain.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json, table, warn
from chainproof.errors import InvalidArgument


@connected
def impact(
    server: Server,
    project: ProjectOpt,
    cve: Annotated[
        str | None, typer.Option("--cve", help="CVE-…, GHSA-…, GO-… (aliases match).")
    ] = None,
    purl: Annotated[
        str | None, typer.Option("--purl", help="A package, with or without @version.")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="A key ID of an attestor.")] = None,
    attestor: Annotated[
        str | None, typer.Option("--attestor", help="projects/P/attestors/ID.")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="registry/repo@sha256:….")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Affected images to show at most.")
    ] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Which running workloads (cluster/namespace/workload/container, since when) are
    affected, and whether the current policy denies each.

    Exactly one of --cve, --purl, --key, --attestor, --image. Exits 1 when a shown workload
    is denied now.
    """
    asked = {"cve": cve, "purl": purl, "key": key, "attestor": attestor, "image": image}
    with errors():
        given = {k: v for k, v in asked.items() if v}
        if len(given) != 1:
            raise InvalidArgument("give exactly one of --cve, --purl, --key, --attestor, --image")
        pages: list[dict[str, Any]] = []
        token = ""
        shown = 0
        with server.client() as api:
            while True:
                params: dict[str, str | int] = {**given, "pageSize": min(500, limit - shown)}
                if token:
                    params["pageToken"] = token
                page = api.impact(project, params)
                pages.append(page)
                shown += len(page.get("images", []))
                token = str(page.get("nextPageToken", ""))
                if not token or shown >= limit:
                    break
    images = [i for p in pages for i in p.get("images", [])]
    vex = [v for p in pages for v in p.get("resolvedByVex", [])]
    result = {
        "query": given,
        "images": images,
        "resolvedByVex": vex,
        "complete": not token,
        "nextPageToken": token,
        "clusters": pages[0].get("clusters", []) if pages else [],
    }
    denied = any(w.get("denied") for i in images for w in i.get("workloads", []))
    if as_json:
        print_json(result)
    else:
        _show(result)
    if denied:
        raise typer.Exit(1)


def _show(result: dict[str, Any]) -> None:
    images = result["images"]
    if not result["clusters"]:
        warn("no cluster belongs to this project (runtime.clusters[].project): nothing runs here")
    if not images:
        note("no running workload is affected")
    t = table("image", "cluster/namespace", "workload", "container", "pods", "since", "verdict")
    for i in images:
        for w in i["workloads"]:
            t.add_row(
                i["image"],
                f"{w['cluster']}/{w['namespace']}",
                w["workload"],
                w["container"],
                str(w["pods"]),
                w["since"],
                w["verdict"].upper() if w["denied"] else w["verdict"],
            )
    if images:
        out.print(t)
        for i in images:
            for w in i["workloads"]:
                for reason in w.get("reasons", [])[:3]:
                    note(f"{w['namespace']}/{w['workload']}: {reason}")
    for v in result["resolvedByVex"]:
        note(f"not affected (VEX): {v['image']} — {v['statement']}")
    if not result["complete"]:
        warn(
            "more affected images follow: raise --limit, or page on with --json's "
            "nextPageToken over the REST API"
        )
