"""``chainproof attestation …``: sign an image digest, upload it, list and verify attestations.

Creating: this module reads the options, the key file or the GnuPG key and the predicate;
:func:`chainproof.attest.create.attestation_occurrence` builds the payload for the digest
given on the command line (simple signing JSON, the seed 000 image URL, or an in-toto
Statement), signs it and shapes the Grafeas occurrence: ATTESTATION (``serializedPayload`` +
``signatures[{signature, publicKeyId}]``) or, for in-toto, DSSE_ATTESTATION (the envelope).

Verifying happens here, on the client, through :mod:`chainproof.attest` and
:mod:`chainproof.crypto`: the attestor and the occurrences of its note come from the server,
but the image digest every attestation must name comes from ``--image``, never from the
attestation, and the keys come from the attestor only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from chainproof.attest.create import FORMATS, PayloadFormat, attestation_occurrence
from chainproof.attest.grafeas import attestation_from_occurrence
from chainproof.attest.predicates import cli_names, predicate_type_uri
from chainproof.attest.verify import AttestationVerification, verify_attestation
from chainproof.cli.inputs import load_document, pinned_image, read_text
from chainproof.cli.options import JsonOpt, Server, connected, project_option
from chainproof.cli.output import check_failed, errors, note, out, print_json, warn
from chainproof.cli.output import table as make_table
from chainproof.crypto.gpg_signer import GpgSigner
from chainproof.crypto.keys import PublicKey
from chainproof.crypto.signing import PkixSigner
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.messages import occurrence_from_json
from chainproof.domain.names import parse_attestor_ref, parse_note_name
from chainproof.errors import ChainproofError, InvalidArgument
from chainproof.policy.attestors import parse_attestor
from chainproof.services.common import utc_now

app = typer.Typer(
    help="Create, upload, list and verify attestations (signed statements about an image digest).",
    no_args_is_help=True,
)


def _predicate_options(
    fmt: PayloadFormat, predicate_type: str | None, predicate: dict[str, Any] | None
) -> None:
    """What --format says about --predicate-type and --predicate, in the CLI's words."""
    if fmt is PayloadFormat.IN_TOTO and (predicate_type is None or predicate is None):
        raise InvalidArgument(
            "--format in-toto needs --predicate-type TYPE and --predicate FILE.json"
        )
    if fmt is not PayloadFormat.IN_TOTO and (predicate_type is not None or predicate is not None):
        raise InvalidArgument(
            "--predicate-type and --predicate belong to --format in-toto; "
            f"--format {fmt.value} signs the image digest alone"
        )


@app.command("create")
@connected
def create(
    server: Server,
    image_text: Annotated[
        str, typer.Option("--image", help="The image to vouch for, REGISTRY/REPO@sha256:DIGEST.")
    ],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="PEM private key file to sign with (from `keys generate`)."),
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            help="Key id for --key, as the attestor names it (default: its sha256 fingerprint).",
        ),
    ] = None,
    algorithm: Annotated[
        str | None,
        typer.Option("--algorithm", help="Algorithm of --key (needed for RSA keys)."),
    ] = None,
    gpg_key: Annotated[
        str | None,
        typer.Option("--gpg-key", help="Sign through gpg with this key (fingerprint or email)."),
    ] = None,
    gnupghome: Annotated[
        Path | None, typer.Option("--gnupghome", help="GnuPG home (default: $GNUPGHOME).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="Payload: simple-signing, image-url (seed 000) or in-toto."),
    ] = "simple-signing",
    predicate_type: Annotated[
        str | None,
        typer.Option(
            "--predicate-type",
            help="in-toto predicate type URI or alias: " + ", ".join(sorted(cli_names())),
        ),
    ] = None,
    predicate: Annotated[
        Path | None, typer.Option("--predicate", help="in-toto predicate, a JSON object file.")
    ] = None,
    note_ref: Annotated[
        str | None,
        typer.Option("--note", help="The attestor's note, projects/P/notes/N (noteName)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the occurrence JSON here (default: stdout)."),
    ] = None,
    upload: Annotated[
        bool, typer.Option("--upload", help="Upload the occurrence to the server (needs --note).")
    ] = False,
    project: Annotated[
        str | None,
        project_option("Project to upload into (default: the note's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign an image digest and write (or upload) the attestation occurrence.

    Example: chainproof attestation create --image gcr.io/acme/app@sha256:… --key qa.key
    --note projects/acme/notes/qa --upload
    """
    with errors():
        image = pinned_image(image_text)
        chosen = fmt.strip().lower()
        if chosen not in FORMATS:
            raise InvalidArgument(f"--format {chosen!r} is not one of {', '.join(FORMATS)}")
        payload_format = PayloadFormat(chosen)
        if (key is None) == (gpg_key is None):
            raise InvalidArgument(
                "sign with exactly one of --key FILE.key (PKIX) or --gpg-key FINGERPRINT_OR_EMAIL"
            )
        parsed_note = parse_note_name(note_ref.strip(), field="--note") if note_ref else None
        note_name = str(parsed_note) if parsed_note else None
        if upload and note_name is None:
            raise InvalidArgument(
                "--upload needs --note projects/P/notes/N: an occurrence belongs to a note"
            )
        target_project = project or (parsed_note.project if parsed_note else None)
        signer: PkixSigner | GpgSigner
        if key is not None:
            signer = PkixSigner.from_pem(read_text(key, "private key"), algorithm, key_id)
        else:
            assert gpg_key is not None
            if algorithm or key_id:
                raise InvalidArgument("--algorithm and --key-id go with --key, not --gpg-key")
            signer = GpgSigner(gpg_key, str(gnupghome) if gnupghome else None)
        predicate_uri = predicate_type_uri(predicate_type) if predicate_type else None
        predicate_doc: dict[str, Any] | None = None
        if predicate is not None:
            loaded = load_document(predicate, "predicate")
            if not isinstance(loaded, dict):
                raise InvalidArgument(f"predicate {predicate} must hold a JSON object")
            predicate_doc = loaded
        _predicate_options(payload_format, predicate_uri, predicate_doc)
        occurrence = attestation_occurrence(
            image,
            payload_format,
            signer,
            predicate_type=predicate_uri,
            predicate=predicate_doc,
            note_name=note_name,
        )
        if output is not None:
            try:
                output.write_text(json.dumps(occurrence, indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                raise InvalidArgument(f"cannot write {output}: {exc.strerror}") from None
        created: dict[str, Any] | None = None
        if upload:
            assert target_project is not None
            with server.client() as api:
                created = api.create_occurrence(target_project, occurrence)
    if created is not None:
        if as_json:
            print_json(created)
        else:
            note(f"uploaded {created.get('name', '')}")
        return
    if output is None:
        print_json(occurrence)
    elif as_json:
        print_json({"output": str(output), "occurrence": occurrence})
    else:
        note(f"wrote {output}")


@app.command("upload")
@connected
def upload_file(
    server: Server,
    file: Annotated[Path, typer.Argument(help="Occurrence JSON (from `attestation create`).")],
    project: Annotated[
        str | None,
        project_option("Project to upload into (default: the note's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload an occurrence JSON file as it is (POST /v1/projects/P/occurrences)."""
    with errors():
        occurrence = load_document(file, "occurrence")
        if not isinstance(occurrence, dict):
            raise InvalidArgument(f"occurrence {file} must hold a JSON object")
        if project is None:
            note_name = occurrence.get("noteName")
            if not isinstance(note_name, str) or not note_name:
                raise InvalidArgument(
                    f"occurrence {file} has no noteName: add it, or create the attestation "
                    "with --note"
                )
            project = parse_note_name(note_name, field="noteName").project
        with server.client() as api:
            created = api.create_occurrence(project, occurrence)
    if as_json:
        print_json(created)
    else:
        note(f"uploaded {created.get('name', '')}")


def _key_hints(occurrence: dict[str, Any]) -> list[str]:
    if "attestation" in occurrence:
        sigs = (occurrence["attestation"] or {}).get("signatures") or ()
        return [str(s.get("publicKeyId", "")) for s in sigs]
    envelope = (occurrence.get("dsseAttestation") or {}).get("envelope") or occurrence.get(
        "envelope"
    )
    if isinstance(envelope, dict):
        return [str(s.get("keyid", "")) for s in envelope.get("signatures") or ()]
    return []


@app.command("list")
@connected
def list_(
    server: Server,
    image_text: Annotated[
        str, typer.Option("--image", help="The image whose attestations to list.")
    ],
    project: Annotated[str, project_option("Project holding them.")],
    note_ref: Annotated[
        str | None, typer.Option("--note", help="Only occurrences of this note.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the attestation occurrences of an image in a project (not verified)."""
    with errors():
        image = parse_image_reference(image_text)
        where = (
            f'resourceUrl="{image.canonical}" AND (kind="ATTESTATION" OR kind="DSSE_ATTESTATION")'
        )
        if note_ref:
            where += f' AND noteName="{parse_note_name(note_ref.strip(), field="--note")}"'
        with server.client() as api:
            occurrences = api.list_occurrences(project, where)
    if as_json:
        print_json({"occurrences": occurrences})
        return
    if not occurrences:
        note(f"no attestations for {image.canonical} in projects/{project}")
        return
    table = make_table("occurrence", "kind", "note", "key ids", "created")
    for occ in occurrences:
        table.add_row(
            Text(str(occ.get("name", ""))),
            Text(str(occ.get("kind", ""))),
            Text(str(occ.get("noteName", ""))),
            Text("\n".join(_key_hints(occ))),
            Text(str(occ.get("createTime", ""))),
        )
    out.print(table)


def verify_occurrence(
    image: ImageReference, occurrence: dict[str, Any], keys: list[PublicKey]
) -> AttestationVerification:
    """Verify one occurrence (Grafeas JSON) for ``image``; malformed content is a failure."""
    try:
        message = occurrence_from_json(occurrence, "occurrence")
        signed = attestation_from_occurrence(message)
        return verify_attestation(image, signed, keys, now=utc_now())
    except ChainproofError as exc:
        return AttestationVerification(
            image=image.canonical, verified=False, reasons=(exc.message,)
        )


def _result_json(name: str, result: AttestationVerification) -> dict[str, Any]:
    return {
        "occurrence": name,
        "verified": result.verified,
        "keyIds": list(result.key_ids),
        "format": result.payload_format,
        "reasons": list(result.reasons),
    }


@app.command("verify")
@connected
def verify(
    server: Server,
    image_text: Annotated[
        str, typer.Option("--image", help="The image to check, REGISTRY/REPO@sha256:DIGEST.")
    ],
    attestor_ref: Annotated[
        str,
        typer.Option(
            "--attestor", help="The attestor whose keys must have signed: projects/P/attestors/ID."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Verify an image's attestations against an attestor's keys, here on this machine.

    Exits 0 when at least one attestation verifies, 1 when none does.
    """
    with errors():
        image = pinned_image(image_text)
        full_name = str(parse_attestor_ref(attestor_ref, field="--attestor"))
        with server.client() as api:
            attestor = parse_attestor(api.get_attestor(full_name))
            note_name = parse_note_name(
                attestor.note_reference, field="userOwnedGrafeasNote.noteReference"
            )
            occurrences = api.list_note_occurrences(
                str(note_name), f'resourceUrl="{image.canonical}"'
            )
        keys, unusable = attestor.load_keys()
        key_problems = [bad.describe() for bad in unusable]
    results = [(str(o.get("name", "")), verify_occurrence(image, o, keys)) for o in occurrences]
    verified = any(r.verified for _, r in results)
    if as_json:
        print_json(
            {
                "image": image.canonical,
                "attestor": full_name,
                "note": str(note_name),
                "verified": verified,
                "keyProblems": key_problems,
                "attestations": [_result_json(n, r) for n, r in results],
            }
        )
    else:
        for problem in key_problems:
            warn(problem)
        if not results:
            note(
                f"no attestations of {note_name} for {image.canonical}: sign the digest with one "
                f"of {full_name}'s keys and upload the occurrence to that note",
                style="red",
            )
        for name, result in results:
            if result.verified:
                note(
                    f"verified  {name}: {result.payload_format} signed by key "
                    + ", ".join(result.key_ids),
                    style="green",
                )
            else:
                note(f"FAILED    {name}:", style="red")
                for reason in result.reasons or ("no reason given",):
                    note(f"  - {reason}")
        count = sum(1 for _, r in results if r.verified)
        summary = (
            f"{image.canonical}: {count} of {len(results)} attestation(s) verified by {full_name}"
        )
        note(summary, style="bold green" if verified else "bold red")
    if not verified:
        raise check_failed()
