"""``chainproof advisories …``, ``chainproof image …`` and ``chainproof vouch``: the scanner.

* ``advisories import PATH``: one OSV record, a directory of them, or a zip in the layout
  osv.dev publishes per ecosystem (``<ECOSYSTEM>/all.zip``: one ``<ID>.json`` per record);
  parsed here (all or nothing), sent to the server in chunks, with a progress bar;
* ``advisories show ID``: the advisory and the images it was found in;
* ``image vulns REF`` / ``image scan REF``: an image's findings by source, each with the VEX
  statement that resolves it / match it now;
* ``vouch``: the "not-vulnerable" attestor — the server judges the image against the policy;
  only when it passes is the payload signed *here*, with the key file given, and uploaded.
  The key never leaves this process.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chainproof.attest.create import binauthz_resource_uri
from chainproof.attest.vouch_forms import attestation_body, read_forms
from chainproof.cli.inputs import load_document, read_text
from chainproof.cli.options import ImageArg, JsonOpt, ProjectOpt, Server, connected, project_option
from chainproof.cli.output import check_failed, errors, note, out, print_json
from chainproof.cli.output import table as make_table
from chainproof.crypto.signing import PkixSigner
from chainproof.domain.images import parse_image_reference
from chainproof.domain.names import parse_attestor_ref
from chainproof.errors import InvalidArgument
from chainproof.vuln.osv import Advisory, parse_document

advisories_app = typer.Typer(
    help="OSV advisories: import them, see what they affect.", no_args_is_help=True
)
image_app = typer.Typer(help="An image's vulnerability findings.", no_args_is_help=True)

CHUNK = 1_000
#: Bytes of records per request, under the server's default 4 MiB body limit.
CHUNK_BYTES = 3 * 1024 * 1024
#: Bounds on a zip: one member, and all members together, uncompressed.
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_ZIP_BYTES = 4 * 1024 * 1024 * 1024


def read_advisory_documents(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every OSV document under ``path``: a file, a directory or a zip."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise InvalidArgument(f"{path}: no *.json files; expected OSV records")
        for p in files:
            yield str(p), p.read_bytes()
        return
    if not path.is_file():
        raise InvalidArgument(f"{path}: no such file or directory")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(".json")]
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_BYTES:
                raise InvalidArgument(
                    f"{path}: {total} bytes uncompressed; at most {MAX_ZIP_BYTES}"
                )
            for m in members:
                if m.file_size > MAX_MEMBER_BYTES:
                    raise InvalidArgument(
                        f"{path}:{m.filename}: {m.file_size} bytes; at most {MAX_MEMBER_BYTES}"
                    )
                with archive.open(m) as f:
                    data = f.read(MAX_MEMBER_BYTES + 1)
                if len(data) > MAX_MEMBER_BYTES:  # the header lied about the size
                    raise InvalidArgument(f"{path}:{m.filename}: larger than {MAX_MEMBER_BYTES}")
                yield f"{path}:{m.filename}", data
        return
    yield str(path), path.read_bytes()


def load_advisories(path: Path) -> list[Advisory]:
    """Every record under ``path``, parsed; InvalidArgument naming each bad document."""
    out_list: list[Advisory] = []
    problems: list[str] = []
    for name, data in read_advisory_documents(path):
        try:
            out_list += parse_document(data, source=name)
        except InvalidArgument as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidArgument(
            f"{len(problems)} documents under {path} are not valid OSV; nothing was imported",
            details=problems[:50],
        )
    if not out_list:
        raise InvalidArgument(f"{path}: no OSV records found")
    return out_list


@advisories_app.command("import")
@connected
def import_(
    server: Server,
    path: Annotated[Path, typer.Argument(help="An OSV record, a directory, or an osv.dev zip.")],
    as_json: JsonOpt = False,
) -> None:
    """Import OSV advisories; re-importing is harmless, newer records replace older ones,
    withdrawn ones retract their findings. Prints how many images were re-matched.

    Example: chainproof advisories import ~/osv/PyPI/all.zip
    """
    with errors():
        advisories = load_advisories(path)
        totals: dict[str, int] = {}
        with (
            server.client() as api,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=as_json,
                disable=as_json,
            ) as progress,
        ):
            task = progress.add_task("import", total=len(advisories))
            for chunk in _chunks(advisories):
                report = api.request(
                    "POST", "/v1/advisories:import", body={"records": [dict(a.raw) for a in chunk]}
                )
                for key, value in report.items():
                    totals[key] = totals.get(key, 0) + int(value)
                progress.advance(task, len(chunk))
    if as_json:
        print_json(totals)
        return
    note(
        f"{len(advisories)} records: {totals.get('imported', 0)} new, "
        f"{totals.get('replaced', 0)} replaced, {totals.get('unchanged', 0)} unchanged, "
        f"{totals.get('withdrawn', 0)} withdrawn, {totals.get('olderIgnored', 0)} older ignored; "
        f"{totals.get('imagesRematched', 0)} images re-matched "
        f"({totals.get('findingsOpened', 0)} findings opened, "
        f"{totals.get('findingsClosed', 0)} closed)"
    )


def _chunks(advisories: list[Advisory]) -> Iterator[list[Advisory]]:
    """At most CHUNK records and about CHUNK_BYTES of JSON per request."""
    chunk: list[Advisory] = []
    size = 0
    for a in advisories:
        n = len(json.dumps(a.raw))
        if chunk and (len(chunk) >= CHUNK or size + n > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(a)
        size += n
    if chunk:
        yield chunk


@advisories_app.command("show")
@connected
def show(
    server: Server,
    advisory_id: Annotated[str, typer.Argument(help="OSV id, e.g. GHSA-xxxx-xxxx-xxxx.")],
    as_json: JsonOpt = False,
) -> None:
    """Show an imported advisory and the images chainproof found it in."""
    with errors(), server.client() as api:
        data = api.request("GET", f"/v1/advisories/{advisory_id}")
    if as_json:
        print_json(data)
        return
    adv = data.get("advisory", {})
    note(f"{adv.get('id')}: {adv.get('summary') or ''}".strip())
    if adv.get("aliases"):
        note("aliases: " + ", ".join(adv["aliases"]))
    if adv.get("withdrawn"):
        note(f"withdrawn {adv['withdrawn']}", "yellow")
    images = data.get("affectedImages", [])
    if not images:
        note("no image holds an affected package")
        return
    t = make_table("project", "image", "package", "version", "fixed in")
    for i in images:
        t.add_row(i["project"], i["resource"], i["package"], i["version"], i["fixedVersion"] or "-")
    out.print(t)


@image_app.command("vulns")
@connected
def vulns(
    server: Server,
    ref: ImageArg,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """List an image's findings by source (chainproof, Trivy, Grype…), with the VEX statement
    that resolves each."""
    with errors():
        image = parse_image_reference(ref).canonical
        with server.client() as api:
            findings = api.image_vulnerabilities(project, image)
    sources: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        sources.setdefault(str(f.get("source", "")), []).append(f)
    if as_json:
        print_json({"image": image, "sources": sources})
        return
    if not sources:
        note(f"no findings recorded for {image} in projects/{project}")
        return
    for source, found in sources.items():
        t = make_table("id", "severity", "package", "version", "fixed in", "VEX", "resolved by")
        for f in found:
            t.add_row(
                f["id"],
                f["severity"],
                f["package"],
                f["version"],
                f["fixedVersion"] or "-",
                f["vex"],
                f["resolvedBy"],
            )
        note(f"{source}: {len(found)} findings", "bold")
        out.print(t)


@image_app.command("scan")
@connected
def scan(
    server: Server,
    ref: ImageArg,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """Match an image's SBOM packages against the advisories now."""
    with errors():
        image = parse_image_reference(ref).canonical
        with server.client() as api:
            data = api.request(
                "POST", f"/v1/projects/{project}/images:scan", params={"image": image}
            )
    if as_json:
        print_json(data)
        return
    note(
        f"{data['resource']}: {data['packages']} packages, {data['findings']} findings "
        f"({data['opened']} new, {data['closed']} closed); {len(data['undecided'])} undecided"
    )
    for u in data["undecided"]:
        note(f"  undecided: {u['package']}: {u['reason']}", "yellow")


@connected
def vouch(
    server: Server,
    image_text: Annotated[str, typer.Option("--image", help="registry/repository@sha256:…")],
    policy: Annotated[
        Path, typer.Option("--policy", help="Vulnerability policy, YAML or JSON.", exists=True)
    ],
    attestor: Annotated[
        str,
        typer.Option("--attestor", help="projects/P/attestors/A (its note gets the signature)."),
    ],
    key: Annotated[Path, typer.Option("--key", help="PEM private key of one of its keys.")],
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="Key id as the attestor names it.")
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="Algorithm of --key (needed for RSA).")
    ] = None,
    project: Annotated[str | None, project_option("Project of the image's evidence.")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="simple-signing (the image digest), in-toto-vulns (an in-toto statement with "
            "the vulns v0.1 predicate: the scan and the findings left after VEX), or both.",
        ),
    ] = "simple-signing",
    as_json: JsonOpt = False,
) -> None:
    """Sign "not vulnerable" for an image only if its findings pass the policy; else explain
    and exit 1.

    Example: chainproof vouch --image gcr.io/acme/app@sha256:… --policy vuln-policy.yaml
    --attestor projects/sec/attestors/not-vulnerable --key nv.key -p prod
    """
    with errors():
        ref = parse_image_reference(image_text)
        if ref.digest is None:
            raise InvalidArgument(f"--image {image_text!r} names no digest (…@sha256:<hex>)")
        attestor_name = parse_attestor_ref(attestor, field="--attestor")
        evidence_project = project or attestor_name.project
        forms = read_forms(fmt)
        document = load_document(policy, "vulnerability policy")
        signer = PkixSigner.from_pem(read_text(key, "private key"), algorithm, key_id)
        with server.client() as api:
            result = api.request(
                "POST",
                f"/v1/projects/{evidence_project}/images:checkVulnerabilityPolicy",
                body={"image": ref.canonical, "policy": document},
            )
            created: list[dict[str, Any]] = []
            if result.get("passed"):
                found = api.get_attestor(str(attestor_name))
                note_name = str(found.get("userOwnedGrafeasNote", {}).get("noteReference", ""))
                if not note_name:
                    raise InvalidArgument(f"attestor {attestor} has no note to sign under")
                for form in forms:
                    # Signed here: the key never leaves this process.
                    occurrence = attestation_body(
                        ref,
                        form,
                        note_name,
                        signer,
                        result.get("report") or {},
                        resource_uri=binauthz_resource_uri(ref),
                    )
                    created.append(api.create_occurrence(evidence_project, occurrence))
    if as_json:
        print_json({**result, "attestation": created[0] if created else None})
    elif created:
        names = ", ".join(str(c.get("name", "")) for c in created)
        note(f"{ref.canonical} passes; signed and uploaded {names}", "green")
    else:
        note(f"{ref.canonical} does not pass the vulnerability policy; nothing was signed:", "red")
        for r in result.get("results", []):
            if not r.get("passed"):
                note(f"  - {r.get('reason')}")
    if not created:
        raise check_failed()
