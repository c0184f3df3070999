"""``chainproof keys …``: make PKIX signing keys for attestors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chainproof.cli.options import JsonOpt
from chainproof.cli.output import errors, note, print_json
from chainproof.crypto.pkix import ALGORITHMS
from chainproof.crypto.signing import DEFAULT_PKIX_ALGORITHM, generate_pkix_key
from chainproof.errors import InvalidArgument

app = typer.Typer(
    help="Create signing keys (PKIX: ECDSA, Ed25519, RSA) for attestors.",
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
