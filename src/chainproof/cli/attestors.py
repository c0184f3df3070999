"""``chainproof attestor …``: attestors (a note plus the keys that may sign for it) on a server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from chainproof.cli.inputs import read_text
from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json
from chainproof.cli.output import table as make_table
from chainproof.crypto.pkix import PkixPublicKey
from chainproof.domain.names import parse_attestor_ref, parse_note_name
from chainproof.errors import InvalidArgument, NotFound
from chainproof.policy.attestors import AttestorPublicKey

app = typer.Typer(
    help="Manage attestors: who may vouch for an image, and with which public keys.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str,
    typer.Argument(
        metavar="PROJECT/ID", help="The attestor: PROJECT/ID or projects/PROJECT/attestors/ID."
    ),
]


def _split(text: str) -> tuple[str, str]:
    name = parse_attestor_ref(text)
    return name.project, name.attestor_id


def pgp_key_entry(path: Path) -> dict[str, Any]:
    armored = read_text(path, "PGP public key")
    entry = AttestorPublicKey(id="", ascii_armored_pgp_public_key=armored)
    key = entry.load()
    assert key is not None  # the entry has material
    # Binary Authorization names a PGP key by its fingerprint.
    return replace(entry, id=key.key_id).to_dict()


def pkix_key_entry(path: Path, algorithm: str | None, key_id: str | None) -> dict[str, Any]:
    pem = read_text(path, "PKIX public key")
    try:
        key = PkixPublicKey.from_pem(pem, algorithm, key_id)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}: {exc.message}") from None
    return {
        "id": key.key_id,
        "pkixPublicKey": {
            "publicKeyPem": key.public_pem(),
            "signatureAlgorithm": key.algorithm.canonical_name,
        },
    }


def _paired(values: list[str], count: int, option: str) -> list[str | None]:
    if not values:
        return [None] * count
    if len(values) != count:
        raise InvalidArgument(
            f"{option} was given {len(values)} times for {count} --pkix-key: give it once per "
            "--pkix-key, in the same order, or not at all"
        )
    return list(values)


def _key_rows(attestor: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for key in (attestor.get("userOwnedGrafeasNote") or {}).get("publicKeys") or ():
        if "pkixPublicKey" in key:
            kind = "PKIX " + str(key["pkixPublicKey"].get("signatureAlgorithm", ""))
        else:
            kind = "PGP"
        rows.append((str(key.get("id", "")), kind, str(key.get("comment", ""))))
    return rows


def show_attestor(attestor: dict[str, Any]) -> None:
    note(f"attestor: {attestor.get('name', '')}")
    if attestor.get("description"):
        note(f"description: {attestor['description']}")
    owned = attestor.get("userOwnedGrafeasNote") or {}
    note(f"note: {owned.get('noteReference', '')}")
    rows = _key_rows(attestor)
    if not rows:
        note("keys: none (nothing this attestor signs can verify)", style="yellow")
    for key_id, kind, comment in rows:
        note(f"  key {key_id} ({kind})" + (f" - {comment}" if comment else ""))


@app.command("create")
@connected
def create(
    server: Server,
    name: NameArg,
    note_ref: Annotated[
        str,
        typer.Option(
            "--note",
            help="ATTESTATION note the attestor signs for, projects/P/notes/N; created if missing.",
        ),
    ],
    pgp_key: Annotated[
        list[Path] | None,
        typer.Option("--pgp-key", help="ASCII-armored OpenPGP public key file (repeatable)."),
    ] = None,
    pkix_key: Annotated[
        list[Path] | None,
        typer.Option("--pkix-key", help="PEM public key file (repeatable)."),
    ] = None,
    algorithm: Annotated[
        list[str] | None,
        typer.Option(
            "--algorithm",
            help="Signature algorithm of each --pkix-key, in order (inferred for EC/Ed25519).",
        ),
    ] = None,
    key_id: Annotated[
        list[str] | None,
        typer.Option(
            "--key-id",
            help="Key id of each --pkix-key, in order (default: its sha256 fingerprint).",
        ),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", help="What the attestor vouches for.")
    ] = "",
    evidence_source: Annotated[
        str,
        typer.Option(
            "--evidence-source",
            help="Where its evidence lives: SCRIBE (occurrences), REGISTRY (cosign signatures, "
            "attestations, Sigstore bundles beside the image) or BOTH.",
        ),
    ] = "SCRIBE",
    keyless_issuer: Annotated[
        str | None,
        typer.Option("--keyless-issuer", help="OIDC issuer of a trusted keyless signer."),
    ] = None,
    keyless_subject: Annotated[
        str | None,
        typer.Option(
            "--keyless-subject-regexp",
            help="Regular expression (full match) for the keyless signer's certificate SAN.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an attestor (and its ATTESTATION note when it does not exist yet).

    Example: chainproof attestor create my-project/qa --note projects/my-project/notes/qa
    --pkix-key qa.pub
    """
    with errors():
        project, attestor_id = _split(name)
        note_name = parse_note_name(note_ref.strip(), field="--note")
        pkix_paths = pkix_key or []
        algorithms = _paired(algorithm or [], len(pkix_paths), "--algorithm")
        key_ids = _paired(key_id or [], len(pkix_paths), "--key-id")
        keys = [pgp_key_entry(p) for p in pgp_key or []]
        keys += [
            pkix_key_entry(p, a, k) for p, a, k in zip(pkix_paths, algorithms, key_ids, strict=True)
        ]
        keyless = keyless_issuer is not None or keyless_subject is not None
        if keyless and (keyless_issuer is None or keyless_subject is None):
            raise InvalidArgument(
                "a keyless signer needs both --keyless-issuer and --keyless-subject-regexp"
            )
        if not keys and not keyless:
            raise InvalidArgument(
                "an attestor needs at least one key: give --pgp-key FILE.asc or --pkix-key "
                "FILE.pub (or a keyless signer with --keyless-issuer and "
                "--keyless-subject-regexp)"
            )
        body: dict[str, Any] = {
            "userOwnedGrafeasNote": {"noteReference": str(note_name), "publicKeys": keys}
        }
        if evidence_source.upper() != "SCRIBE":
            body["evidenceSource"] = evidence_source.upper()
        if keyless:
            body["keylessIdentities"] = [
                {"issuer": keyless_issuer, "subjectRegExp": keyless_subject}
            ]
        if description:
            body["description"] = description
        with server.client() as api:
            note_created = False
            try:
                api.get_note(str(note_name))
            except NotFound:
                api.create_note(
                    note_name.project,
                    note_name.note_id,
                    {
                        "shortDescription": description or f"attestor {project}/{attestor_id}",
                        "attestation": {"hint": {"humanReadableName": attestor_id}},
                    },
                )
                note_created = True
            created = api.create_attestor(project, attestor_id, body)
    if as_json:
        print_json(created)
        return
    if note_created:
        note(f"created note {note_name}")
    note(f"created attestor {created.get('name', f'projects/{project}/attestors/{attestor_id}')}")
    for kid, kind, _ in _key_rows(created):
        note(f"  key {kid} ({kind})")


@app.command("get")
@connected
def get(
    server: Server,
    name: NameArg,
    as_json: JsonOpt = False,
) -> None:
    """Show one attestor: its note and keys."""
    with errors():
        project, attestor_id = _split(name)
        with server.client() as api:
            attestor = api.get_attestor(f"projects/{project}/attestors/{attestor_id}")
    if as_json:
        print_json(attestor)
    else:
        show_attestor(attestor)


@app.command("list")
@connected
def list_(
    server: Server,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """List the attestors of a project."""
    with errors(), server.client() as api:
        attestors = api.list_attestors(project)
    if as_json:
        print_json({"attestors": attestors})
        return
    if not attestors:
        note(f"no attestors in projects/{project}")
        return
    table = make_table("attestor", "note", "keys", "description")
    for a in attestors:
        owned = a.get("userOwnedGrafeasNote") or {}
        keys = "\n".join(f"{kid} ({kind})" for kid, kind, _ in _key_rows(a))
        table.add_row(
            Text(str(a.get("name", ""))),
            Text(str(owned.get("noteReference", ""))),
            Text(keys),
            Text(str(a.get("description", ""))),
        )
    out.print(table)


@app.command("delete")
@connected
def delete(
    server: Server,
    name: NameArg,
    as_json: JsonOpt = False,
) -> None:
    """Delete an attestor (refused while the project's policy requires it)."""
    with errors():
        project, attestor_id = _split(name)
        full = f"projects/{project}/attestors/{attestor_id}"
        with server.client() as api:
            api.delete_attestor(full)
    if as_json:
        print_json({"deleted": full})
    else:
        note(f"deleted attestor {full}")
