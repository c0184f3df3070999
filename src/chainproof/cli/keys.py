"""``chainproof keys …``: make PKIX signing keys for attestors, and the server key file that
seals webhook secrets at rest (a rotation's new key, ADR 0213)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chainproof.cli.options import JsonOpt
from chainproof.cli.output import errors, note, print_json
from chainproof.crypto.pkix import ALGORITHMS
from chainproof.crypto.sealing import SealError, SecretBox, parse_key
from chainproof.crypto.signing import DEFAULT_PKIX_ALGORITHM, generate_pkix_key
from chainproof.errors import InvalidArgument
from chainproof.services.secret_key_file import create_key_file

app = typer.Typer(
    help="Create signing keys (PKIX: ECDSA, Ed25519, RSA) for attestors, and the server key "
    "that seals webhook secrets.",
    no_args_is_help=True,
)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise InvalidArgument(
            f"{path} already exists: choose another --out prefix, or pass --force to replace it"
        ) from None
    except OSError as exc:
        raise InvalidArgument(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    # O_CREAT's mode does not apply to a file that already existed (--force).
    os.chmod(path, mode)


@app.command("generate")
def generate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Path prefix: writes PREFIX.key (private, mode 0600) and PREFIX.pub (public).",
        ),
    ],
    algorithm: Annotated[
        str,
        typer.Option(
            "--algorithm",
            "-a",
            help="Signature algorithm (Binary Authorization name): "
            + ", ".join(sorted(ALGORITHMS)),
        ),
    ] = DEFAULT_PKIX_ALGORITHM,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate a PKIX key pair; print its key id (sha256 fingerprint) and algorithm.

    Give PREFIX.pub to `chainproof attestor create --pkix-key`, and sign with
    `chainproof attestation create --key PREFIX.key`.
    """
    with errors():
        key = generate_pkix_key(algorithm)
        private_path = out.with_name(out.name + ".key")
        public_path = out.with_name(out.name + ".pub")
        if not out.parent.is_dir():
            raise InvalidArgument(f"directory {out.parent} does not exist")
        _write(private_path, key.private_pem, 0o600, force)
        _write(public_path, key.public_pem, 0o644, force)
    if as_json:
        print_json(
            {
                "keyId": key.fingerprint,
                "algorithm": key.algorithm,
                "privateKey": str(private_path),
                "publicKey": str(public_path),
            }
        )
        return
    note(f"key id:      {key.fingerprint}")
    note(f"algorithm:   {key.algorithm}")
    note(f"private key: {private_path} (keep it secret)")
    note(f"public key:  {public_path}")


@app.command("secret-key")
def secret_key(
    path: Annotated[Path, typer.Argument(help="The key file to create (mode 0600).")],
    as_json: JsonOpt = False,
) -> None:
    """Create a key file for sealing webhook secrets (32 random bytes, base64) and print its
    key ID; an existing file is never replaced, only its key ID printed.

    Rotating the key (docs/runtime.md, "Rotating the secret key"):

    1. Make the new key; list it in notifications.extra_secret_key_files; restart all.

    2. Swap: the new key as secret_key_file, the old one as the extra; restart all.

    3. Restart one server more (it seals again what a server of step 1 sealed under the
    old key meanwhile); then drop the old key and its file.
    """
    with errors():
        try:
            text = create_key_file(path)
            created = text is not None
            if text is None:
                text = path.read_text(encoding="ascii")
            key_id = SecretBox(parse_key(text)).key_id
        except (SealError, OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{path}: {exc}") from None
    if as_json:
        print_json({"path": str(path), "keyId": key_id, "created": created})
        return
    if created:
        note(f"key id: {key_id}")
        note(f"file:   {path} (mode 0600; keep it out of the database's backups)")
    else:
        note(f"{path} exists already and was left as it is (key id {key_id}): replacing a key")
        note("would leave every secret sealed under it unopenable")
