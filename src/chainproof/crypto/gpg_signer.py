"""Signing through the ``gpg`` binary, for the command line.

This is the one module of the core that runs a subprocess, and it only *signs*: people keep
their OpenPGP keys in GnuPG (often on a smartcard), and ``gpg`` is the tool that can reach them.
:class:`GpgSigner` makes clearsigned, inline-signed (``--sign``, Binary Authorization style) and
detached signatures with a given key in a given ``GNUPGHOME``, and exports the public key and
its fingerprint so an attestor can be created from them.

Verification never comes here: :mod:`chainproof.crypto.pgp` verifies with pysequoia.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from chainproof.errors import FailedPrecondition, InvalidArgument

__all__ = ["GpgSigner"]


@dataclass(frozen=True, slots=True)
class GpgSigner:
    """Signs with GnuPG key ``key`` (user id, key id or fingerprint).

    ``gnupghome`` overrides ``$GNUPGHOME``; ``passphrase`` is handed to gpg on a pipe in
    loopback mode when the key needs one; ``timeout`` bounds every gpg run, in seconds.
    """

    key: str
    gnupghome: str | None = None
    gpg: str = "gpg"
    passphrase: str | None = None
    timeout: float = 60.0

    def _run(self, args: Sequence[str], data: bytes = b"") -> bytes:
        binary = shutil.which(self.gpg)
        if binary is None:
            raise FailedPrecondition(
                f"cannot sign with GnuPG: {self.gpg!r} is not on PATH; install gnupg or sign "
                "with a PKIX key file instead"
            )
        env = dict(os.environ)
        if self.gnupghome:
            env["GNUPGHOME"] = self.gnupghome
        command = [binary, "--batch", "--yes", "--no-tty"]
        pass_fds: tuple[int, ...] = ()
        read_end = write_end = -1
        if self.passphrase is not None:
            # The passphrase goes through its own pipe, never argv or the environment.
            read_end, write_end = os.pipe()
            os.write(write_end, self.passphrase.encode() + b"\n")
            os.close(write_end)
            pass_fds = (read_end,)
            command += ["--pinentry-mode", "loopback", "--passphrase-fd", str(read_end)]
        command += list(args)
        try:
            done = subprocess.run(
                command,
                input=data,
                capture_output=True,
                env=env,
                timeout=self.timeout,
                check=False,
                pass_fds=pass_fds,
            )
        except subprocess.TimeoutExpired as exc:
            raise FailedPrecondition(f"gpg did not finish within {self.timeout:g} s") from exc
        finally:
            if read_end >= 0:
                os.close(read_end)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()
            raise FailedPrecondition(
                f"gpg failed (exit {done.returncode}) signing with key {self.key!r}",
                details=detail.splitlines()[-5:],
            )
        return done.stdout

    def clearsign(self, data: bytes) -> bytes:
        """``gpg --clearsign``: the seed 000 form; the text stays readable."""
        return self._run(["--local-user", self.key, "--armor", "--clearsign"], data)

    def sign_inline(self, data: bytes, *, armor: bool = True) -> bytes:
        """``gpg --sign``: a message carrying the data, as Binary Authorization expects."""
        return self._run(
            ["--local-user", self.key, *(["--armor"] if armor else []), "--sign"], data
        )

    def sign_detached(self, data: bytes, *, armor: bool = True) -> bytes:
        """``gpg --detach-sign``: a signature alone; the data travels separately."""
        return self._run(
            ["--local-user", self.key, *(["--armor"] if armor else []), "--detach-sign"], data
        )

    def export_public_key(self) -> str:
        """The ASCII-armored public key (``gpg --armor --export``)."""
        out = self._run(["--armor", "--export", self.key]).decode()
        if "BEGIN PGP PUBLIC KEY BLOCK" not in out:
            raise InvalidArgument(f"GnuPG has no public key {self.key!r}")
        return out

    def fingerprint(self) -> str:
        """The primary key fingerprint in upper-case hex (the PGP key id chainproof uses)."""
        listing = self._run(["--with-colons", "--list-keys", self.key]).decode()
        for line in listing.splitlines():
            fields = line.split(":")
            if fields[0] == "fpr" and len(fields) > 9 and fields[9]:
                return fields[9].upper()
        raise InvalidArgument(f"GnuPG has no public key {self.key!r}")
