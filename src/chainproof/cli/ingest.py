"""``chainproof ingest FILE…``, ``chainproof image packages|vulns REF`` and
``chainproof package images PURL``: documents in, and the questions people ask of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from chainproof.cli.options import ImageArg, JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import check_failed, errors, note, out, print_json, table, warn
from chainproof.errors import ChainproofError, InvalidArgument
from chainproof.ingest import Format

_FORMATS = ", ".join(f.value for f in Format)

ingest_app = typer.Typer(help="Ingest SBOMs, scan reports, VEX and provenance.")
#: Joined to the scanner's ``image`` group (which owns ``image vulns``).
image_app = typer.Typer(help="What is known about an image.", no_args_is_help=True)
package_app = typer.Typer(help="Where a package is.", no_args_is_help=True)


@ingest_app.command("ingest")
@connected
def ingest(
    server: Server,
    files: Annotated[list[Path], typer.Argument(help="Documents to ingest.", exists=True)],
    project: ProjectOpt,
    image: Annotated[
        str,
        typer.Option(
            "--image",
            help="The image the documents are about, registry/repository@sha256:… (may be "
            "omitted for in-toto statements and DSSE envelopes, which name their subject).",
        ),
    ] = "",
    fmt: Annotated[
        str, typer.Option("--format", help=f"The documents' format when not detected: {_FORMATS}.")
    ] = "",
    signatures: Annotated[
        str,
        typer.Option(
            "--signatures",
            help="required: refuse a document unless every DSSE envelope in it verifies under "
            "an attestor (the default with --attestor); optional: store what no attestor "
            "verifies as unattested, with a warning (the default otherwise).",
        ),
    ] = "",
    attestors: Annotated[
        list[str] | None,
        typer.Option(
            "--attestor",
            help="An attestor (projects/P/attestors/A) that may vouch for the documents; "
            "repeat for several. Default: every attestor of the project.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest documents into PROJECT as Grafeas notes and occurrences.

    Each file is refused or accepted whole; items inside a file that cannot be used are
    skipped and listed as warnings. Re-ingesting a file changes nothing.
    """
    results: list[dict[str, Any]] = []
    failures = 0
    with errors(), server.client() as c:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=out,
            disable=as_json or len(files) < 2,
            transient=True,
        )
        with progress:
            task = progress.add_task("ingesting", total=len(files))
            for path in files:
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
                try:
                    result = c.ingest(
                        project,
                        raw,
                        resource_uri=image,
                        fmt=fmt,
                        signatures=signatures,
                        attestors=attestors or (),
                    )
                except ChainproofError as exc:
                    if len(files) == 1:
                        raise
                    failures += 1
                    results.append({"file": str(path), "error": exc.message})
                    progress.advance(task)
                    continue
                results.append({"file": str(path), **result})
                progress.advance(task)
    if as_json:
        print_json(results if len(files) > 1 else results[0])
    else:
        for r in results:
            if "error" in r:
                warn(f"{r['file']}: refused: {r['error']}")
                continue
            created = ", ".join(f"{n} {k}" for k, n in sorted(r["created"].items())) or "nothing"
            extra = " (unchanged)" if r.get("unchanged") else ""
            if r.get("superseded"):
                extra += f", superseded {r['superseded']}"
            if r.get("vexApplied"):
                extra += f", VEX applied to {r['vexApplied']} findings"
            note(f"{r['file']}: {r['format']} about {r['resourceUri']}: created {created}{extra}")
            for a in r.get("attestations", []):
                facts = ", ".join(f"{n} {k}" for k, n in sorted(a["facts"].items())) or "no facts"
                note(f"  envelope {a['envelope']} attested by {', '.join(a['attestors'])}: {facts}")
            for w in r.get("warnings", []):
                warn(f"  {w}")
    if failures:
        raise check_failed()


@image_app.command("packages")
@connected
def image_packages(
    server: Server,
    image: ImageArg,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """List the packages an image contains (from its ingested SBOMs and scans)."""
    with errors(), server.client() as c:
        found = c.image_packages(project, image)
    if as_json:
        print_json(found)
        return
    t = table("name", "version", "purl", "license")
    for p in found:
        t.add_row(p["name"], p["version"], p["purl"], p["license"])
    out.print(t)


@package_app.command("images")
@connected
def package_images(
    server: Server,
    purl: Annotated[str, typer.Argument(help="pkg:type/namespace/name[@version]")],
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """List the images that contain a package (any version when PURL has none)."""
    with errors(), server.client() as c:
        found = c.package_images(project, purl)
    if as_json:
        print_json(found)
        return
    t = table("image", "purl")
    for i in found:
        t.add_row(i["image"], i["purl"])
    out.print(t)
