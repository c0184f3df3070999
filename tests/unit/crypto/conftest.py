"""Session fixtures for the crypto tests: keys and signatures made by gpg, openssl and
securesystemslib while the tests run (see realtools.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest


def _load_realtools() -> ModuleType:
    name = "chainproof_test_realtools"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("realtools.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


realtools = _load_realtools()

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
REPO = "gcr.io/image-signing/payment"


@dataclass(frozen=True)
class PgpKeys:
    """The GnuPG home and the fingerprints of every key the tests use."""

    gpg: object
    ed25519: str
    rsa: str
    ecdsa: str
    with_subkey: str
    subkey: str
    short_subkey_primary: str
    short_subkey: str
    short: str
    old: str
    revoked: str
    other: str
    locked: str


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgpKeys]:
    home = realtools.make_gpg_home(tmp_path_factory.mktemp("gpg"))
    with_subkey = home.generate("sub@example.com", "ed25519", "cert")
    subkey = home.add_subkey(with_subkey, "ed25519", "sign", "never")
    short_primary = home.generate("brief@example.com", "ed25519", "cert")
    short_subkey = home.add_subkey(short_primary, "ed25519", "sign", "1d")
    revoked = home.generate("rev@example.com")
    keys = PgpKeys(
        gpg=home,
        ed25519=home.generate("qa@example.com", "ed25519"),
        rsa=home.generate("rsa@example.com", "rsa3072"),
        ecdsa=home.generate("ec@example.com", "nistp256"),
        with_subkey=with_subkey,
        subkey=subkey,
        short_subkey_primary=short_primary,
        short_subkey=short_subkey,
        short=home.generate("short@example.com", "ed25519", "sign", "1d"),
        old=home.generate("old@example.com", "ed25519", "sign", "1d", faked_time="20200101T000000"),
        revoked=revoked,
        other=home.generate("other@example.com"),
        locked=home.generate("locked@example.com", passphrase="correct horse"),
    )
    yield keys
    home.close()


@pytest.fixture(scope="session")
def revoked_signature(gpg_keys: PgpKeys) -> tuple[bytes, bytes]:
    """A detached signature made before the key was revoked, and the revoked public key."""
    home = gpg_keys.gpg
    data = f"{REPO}@{DIGEST_A}\n".encode()
    signature = home.detach_sign("rev@example.com", data)  # type: ignore[attr-defined]
    home.revoke(gpg_keys.revoked)  # type: ignore[attr-defined]
    return signature, home.export("rev@example.com")  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def openssl_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return realtools.openssl_keys(tmp_path_factory.mktemp("openssl"))  # type: ignore[no-any-return]


@pytest.fixture
def now() -> datetime:
    # Tests may read the clock; the code under test never does.
    return datetime.now(UTC)
