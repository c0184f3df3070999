"""Fixtures made by real tools at test time: GnuPG, OpenSSL and securesystemslib.

Nothing here is written by hand: keys and signatures come from the same programs users run,
so the verifiers are tested against what those programs actually emit. Shared by the crypto
and attest test folders (their conftest.py files load this module by path).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

GPG = shutil.which("gpg")
OPENSSL = shutil.which("openssl")


def need(tool: str | None, name: str) -> str:
    if tool is None:
        pytest.skip(f"{name} is not installed")
    return tool


@dataclass
class GpgHome:
    """A throwaway GNUPGHOME and helpers around the gpg binary."""

    home: Path
    fingerprints: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, data: bytes = b"", faked_time: str | None = None) -> bytes:
        cmd = [need(GPG, "gpg"), "--batch", "--yes", "--no-tty"]
        if faked_time:
            cmd += ["--faked-system-time", faked_time]
        done = subprocess.run(
            [*cmd, *args],
            input=data,
            capture_output=True,
            env={**os.environ, "GNUPGHOME": str(self.home)},
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)} failed: {done.stderr.decode()}")
        return done.stdout

    def generate(
        self,
        email: str,
        algo: str = "ed25519",
        usage: str = "sign",
        expire: str = "never",
        faked_time: str | None = None,
        passphrase: str = "",
    ) -> str:
        uid = f"{email.split('@')[0].title()} <{email}>"
        self.run(
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--quick-generate-key",
            uid,
            algo,
            usage,
            expire,
            faked_time=faked_time,
        )
        fpr = self.fingerprint(email)
        self.fingerprints[email] = fpr
        return fpr

    def add_subkey(
        self, fpr: str, algo: str = "ed25519", usage: str = "sign", expire: str = "never"
    ) -> str:
        self.run("--passphrase", "", "--quick-add-key", fpr, algo, usage, expire)
        listing = self.run("--with-colons", "--list-keys", fpr).decode()
        fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
        return fprs[-1]

    def fingerprint(self, email: str) -> str:
        listing = self.run("--with-colons", "--list-keys", email).decode()
        for line in listing.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise AssertionError(f"no key for {email}")

    def export(self, who: str) -> bytes:
        return self.run("--armor", "--export", who)

    def export_secret(self, who: str) -> bytes:
        return self.run(
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--armor",
            "--export-secret-keys",
            who,
        )

    def clearsign(self, who: str, data: bytes, faked_time: str | None = None) -> bytes:
        return self.run("-u", who, "--armor", "--clearsign", data=data, faked_time=faked_time)

    def sign_inline(self, who: str, data: bytes, armor: bool = True) -> bytes:
        return self.run("-u", who, *(["--armor"] if armor else []), "--sign", data=data)

    def detach_sign(
        self, who: str, data: bytes, armor: bool = True, faked_time: str | None = None
    ) -> bytes:
        return self.run(
            "-u",
            who,
            *(["--armor"] if armor else []),
            "--detach-sign",
            data=data,
            faked_time=faked_time,
        )

    def close(self) -> None:
        """Stop the gpg-agent this home started: tests leave no daemons behind."""
        subprocess.run(
            ["gpgconf", "--kill", "all"],
            env={**os.environ, "GNUPGHOME": str(self.home)},
            capture_output=True,
            check=False,
            timeout=30,
        )

    def revoke(self, fpr: str) -> None:
        """Import the revocation certificate gpg made at key generation (reason: none given)."""
        stored = (self.home / "openpgp-revocs.d" / f"{fpr}.rev").read_text()
        # gpg guards the stored certificate with a leading colon so it is not imported by accident.
        certificate = stored.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"
        )
        self.run("--import", data=certificate.encode())


def make_gpg_home(tmp: Path) -> GpgHome:
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    return GpgHome(home)


@dataclass(frozen=True)
class OpensslKey:
    """A PKIX key pair made by `openssl genpkey`, with the signer's digest and options."""

    algorithm: str
    private: Path
    public_pem: bytes
    digest: str | None
    sigopts: tuple[str, ...]

    def sign(self, data: bytes, tmp: Path, sigopts: tuple[str, ...] | None = None) -> bytes:
        src = tmp / f"data-{hashlib.sha256(data).hexdigest()[:12]}"
        src.write_bytes(data)
        out = tmp / f"{src.name}.{self.algorithm}.sig"
        openssl = need(OPENSSL, "openssl")
        if self.digest is None:
            cmd = [
                openssl,
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                str(self.private),
                "-in",
                str(src),
                "-out",
                str(out),
            ]
        else:
            opts = self.sigopts if sigopts is None else sigopts
            cmd = [openssl, "dgst", f"-{self.digest}", "-sign", str(self.private)]
            for opt in opts:
                cmd += ["-sigopt", opt]
            cmd += ["-out", str(out), str(src)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return out.read_bytes()

    def public_der(self) -> bytes:
        done = subprocess.run(
            [need(OPENSSL, "openssl"), "pkey", "-pubin", "-outform", "DER"],
            input=self.public_pem,
            capture_output=True,
            check=True,
        )
        return done.stdout


#: Binary Authorization algorithm → (genpkey arguments, digest, sigopts).
OPENSSL_RECIPES: dict[str, tuple[tuple[str, ...], str | None, tuple[str, ...]]] = {
    "RSA_PSS_2048_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
        "sha256",
        ("rsa_padding_mode:pss", "rsa_pss_saltlen:digest"),
    ),
    "RSA_PSS_3072_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"),
        "sha256",
        ("rsa_padding_mode:pss", "rsa_pss_saltlen:digest"),
    ),
    "RSA_PSS_4096_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"),
        "sha256",
        ("rsa_padding_mode:pss", "rsa_pss_saltlen:digest"),
    ),
    "RSA_PSS_4096_SHA512": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"),
        "sha512",
        ("rsa_padding_mode:pss", "rsa_pss_saltlen:digest"),
    ),
    "RSA_SIGN_PKCS1_2048_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
        "sha256",
        (),
    ),
    "RSA_SIGN_PKCS1_3072_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"),
        "sha256",
        (),
    ),
    "RSA_SIGN_PKCS1_4096_SHA256": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"),
        "sha256",
        (),
    ),
    "RSA_SIGN_PKCS1_4096_SHA512": (
        ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"),
        "sha512",
        (),
    ),
    "ECDSA_P256_SHA256": (
        ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
        "sha256",
        (),
    ),
    "ECDSA_P384_SHA384": (
        ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
        "sha384",
        (),
    ),
    "ECDSA_P521_SHA512": (
        ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"),
        "sha512",
        (),
    ),
    "ED25519": (("-algorithm", "ED25519"), None, ()),
}


def openssl_keys(tmp: Path) -> dict[str, OpensslKey]:
    """One key per recipe; RSA keys of one size are shared between PSS and PKCS#1 recipes."""
    return openssl_keys_for(tmp, tuple(OPENSSL_RECIPES))


def openssl_keys_for(tmp: Path, names: tuple[str, ...]) -> dict[str, OpensslKey]:
    """Keys for the named recipes only."""
    openssl = need(OPENSSL, "openssl")
    made: dict[tuple[str, ...], tuple[Path, bytes]] = {}
    keys: dict[str, OpensslKey] = {}
    for name in names:
        genargs, digest, sigopts = OPENSSL_RECIPES[name]
        if genargs not in made:
            private = tmp / f"{name}.key.pem"
            subprocess.run(
                [openssl, "genpkey", *genargs, "-out", str(private)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            public = subprocess.run(
                [openssl, "pkey", "-in", str(private), "-pubout"], check=True, capture_output=True
            ).stdout
            made[genargs] = (private, public)
        private, public = made[genargs]
        keys[name] = OpensslKey(name, private, public, digest, sigopts)
    return keys


def openssl_verify(
    public_pem: bytes,
    data: bytes,
    signature: bytes,
    tmp: Path,
    digest: str,
    sigopts: tuple[str, ...] = (),
) -> bool:
    """Ask openssl itself whether a signature verifies (for signatures our signer made)."""
    pub = tmp / "verify.pub.pem"
    pub.write_bytes(public_pem)
    src = tmp / "verify.data"
    src.write_bytes(data)
    sig = tmp / "verify.sig"
    sig.write_bytes(signature)
    cmd = [
        need(OPENSSL, "openssl"),
        "dgst",
        f"-{digest}",
        "-verify",
        str(pub),
        "-signature",
        str(sig),
    ]
    for opt in sigopts:
        cmd += ["-sigopt", opt]
    done = subprocess.run([*cmd, str(src)], capture_output=True, check=False)
    return done.returncode == 0 and b"Verified OK" in done.stdout
