"""Session fixtures for the attest tests: a GnuPG home, openssl keys and a securesystemslib
signer, all made while the tests run (helpers in ../crypto/realtools.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chainproof.crypto import PgpPublicKey, PkixPublicKey
from chainproof.domain.images import ImageReference, parse_image_reference


def _load_realtools() -> ModuleType:
    name = "chainproof_test_realtools"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "crypto" / "realtools.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


realtools = _load_realtools()

HEX_A = "a" * 64
HEX_B = "b" * 64
REPO = "gcr.io/image-signing/payment"
OTHER_REPO = "evil.example.com/attacker/payment"
IMAGE_A = parse_image_reference(f"{REPO}@sha256:{HEX_A}")
IMAGE_B = parse_image_reference(f"{REPO}@sha256:{HEX_B}")


@dataclass(frozen=True)
class Attestors:
    """Real keys: gpg (qa, other, short-lived, revoked) and openssl (P-256, RSA-PSS 2048)."""

    gpg: Any
    qa: PgpPublicKey
    other: PgpPublicKey
    short: PgpPublicKey
    revoked: PgpPublicKey
    revoked_detached: bytes  # a detached signature over image A's URL, made before revocation
    p256: Any
    rsa_pss: Any
    p256_key: PkixPublicKey
    rsa_pss_key: PkixPublicKey
    tmp: Path


@pytest.fixture(scope="session")
def attestors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attestors]:
    tmp = tmp_path_factory.mktemp("attest")
    gpg = realtools.make_gpg_home(tmp)
    for email in ("qa@example.com", "other@example.com", "rev@example.com"):
        gpg.generate(email)
    gpg.generate("short@example.com", expire="1d")
    revoked_detached = gpg.detach_sign("rev@example.com", f"{IMAGE_A}\n".encode())
    gpg.revoke(gpg.fingerprints["rev@example.com"])

    keys_dir = tmp / "openssl"
    keys_dir.mkdir()
    made = realtools.openssl_keys_for(keys_dir, ("ECDSA_P256_SHA256", "RSA_PSS_2048_SHA256"))

    def pgp(email: str) -> PgpPublicKey:
        return PgpPublicKey.from_armored(gpg.export(email))

    yield Attestors(
        gpg=gpg,
        qa=pgp("qa@example.com"),
        other=pgp("other@example.com"),
        short=pgp("short@example.com"),
        revoked=pgp("rev@example.com"),
        revoked_detached=revoked_detached,
        p256=made["ECDSA_P256_SHA256"],
        rsa_pss=made["RSA_PSS_2048_SHA256"],
        p256_key=PkixPublicKey.from_pem(
            made["ECDSA_P256_SHA256"].public_pem, key_id="//keys/qa-p256"
        ),
        rsa_pss_key=PkixPublicKey.from_pem(
            made["RSA_PSS_2048_SHA256"].public_pem, "RSA_PSS_2048_SHA256", "//keys/qa-rsa"
        ),
        tmp=tmp,
    )
    gpg.close()


@pytest.fixture
def now() -> datetime:
    # Tests may read the clock; the code under test never does.
    return datetime.now(UTC)


__all__ = ["IMAGE_A", "IMAGE_B", "ImageReference"]
