"""OpenPGP verification against signatures GnuPG makes while the tests run."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chainproof.crypto import KeySpec, PgpPublicKey, load_public_key
from chainproof.crypto.gpg_signer import GpgSigner
from chainproof.errors import FailedPrecondition, InvalidArgument

from .conftest import DIGEST_A, REPO, PgpKeys

DATA = f"{REPO}@{DIGEST_A}\n".encode()


def key_for(keys: PgpKeys, email: str) -> PgpPublicKey:
    return PgpPublicKey.from_armored(keys.gpg.export(email))  # type: ignore[attr-defined]


SIGNING_KEYS = ["qa@example.com", "rsa@example.com", "ec@example.com", "sub@example.com"]


@pytest.mark.parametrize("email", SIGNING_KEYS)
@pytest.mark.parametrize(
    "mode", ["clearsign", "inline-armored", "inline-binary", "detached-armored", "detached-binary"]
)
def test_every_gnupg_signature_form_verifies(
    gpg_keys: PgpKeys, email: str, mode: str, now: datetime
) -> None:
    gpg: Any = gpg_keys.gpg
    signers = {
        "clearsign": lambda: (gpg.clearsign(email, DATA), None),
        "inline-armored": lambda: (gpg.sign_inline(email, DATA), None),
        "inline-binary": lambda: (gpg.sign_inline(email, DATA, armor=False), None),
        "detached-armored": lambda: (gpg.detach_sign(email, DATA), DATA),
        "detached-binary": lambda: (gpg.detach_sign(email, DATA, armor=False), DATA),
    }
    signature, data = signers[mode]()
    key = key_for(gpg_keys, email)

    check = key.verify(signature, data, now=now)

    assert check.verified, check.reason
    assert check.key_id == gpg.fingerprint(email).upper()
    # gpg --clearsign drops the final line ending; every other form keeps the bytes as signed.
    assert check.signed_content is not None
    assert check.signed_content.rstrip(b"\n") == DATA.rstrip(b"\n")


def test_key_id_is_primary_fingerprint_and_subkey_ids_are_hints(gpg_keys: PgpKeys) -> None:
    key = key_for(gpg_keys, "sub@example.com")

    assert key.key_id == gpg_keys.with_subkey.upper()
    assert key.fingerprints == (gpg_keys.with_subkey.upper(), gpg_keys.subkey.upper())
    assert key.matches_hint(gpg_keys.subkey.lower())
    assert key.matches_hint(gpg_keys.subkey[-16:])
    assert key.matches_hint("0x" + gpg_keys.with_subkey[-16:])
    spaced = " ".join(gpg_keys.with_subkey[i : i + 4] for i in range(0, 40, 4))
    assert key.matches_hint(spaced)
    assert not key.matches_hint(gpg_keys.ed25519)
    assert not key.matches_hint(gpg_keys.with_subkey[-8:]), "short key ids collide; not hints"


def test_subkey_signature_reports_the_subkey(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign("sub@example.com", DATA)  # type: ignore[attr-defined]

    check = key_for(gpg_keys, "sub@example.com").verify(signature, DATA, now=now)

    assert check.verified
    assert check.key_id == gpg_keys.with_subkey.upper()
    assert check.signer == gpg_keys.subkey.upper()


def test_wrong_key_names_the_signer(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.clearsign("other@example.com", DATA)  # type: ignore[attr-defined]

    check = key_for(gpg_keys, "qa@example.com").verify(signature, None, now=now)

    assert not check.verified
    assert f"signed by unknown key {gpg_keys.other.upper()}" in check.reason


def test_key_expired_by_now_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign("short@example.com", DATA)  # type: ignore[attr-defined]
    key = key_for(gpg_keys, "short@example.com")

    assert key.verify(signature, DATA, now=now).verified
    later = key.verify(signature, DATA, now=now + timedelta(days=2))

    assert not later.verified
    assert f"key {gpg_keys.short.upper()} expired at" in later.reason


def test_key_that_expired_years_ago_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign(  # type: ignore[attr-defined]
        "old@example.com", DATA, faked_time="20200101T010000"
    )

    check = key_for(gpg_keys, "old@example.com").verify(signature, DATA, now=now)

    assert not check.verified
    assert "expired at 2020-01-02" in check.reason


def test_signing_subkey_expired_by_now_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign("brief@example.com", DATA)  # type: ignore[attr-defined]
    key = key_for(gpg_keys, "brief@example.com")

    assert key.verify(signature, DATA, now=now).verified
    later = key.verify(signature, DATA, now=now + timedelta(days=3))

    assert not later.verified
    assert f"signing subkey {gpg_keys.short_subkey.upper()}" in later.reason
    assert "expired at" in later.reason


def test_revoked_key_is_refused(revoked_signature: tuple[bytes, bytes], now: datetime) -> None:
    signature, public = revoked_signature
    key = PgpPublicKey.from_armored(public)

    check = key.verify(signature, DATA, now=now)

    assert key.revoked
    assert not check.verified
    assert "is revoked" in check.reason


def test_signature_made_after_now_is_refused(gpg_keys: PgpKeys) -> None:
    signature = gpg_keys.gpg.detach_sign("qa@example.com", DATA)  # type: ignore[attr-defined]
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)

    check = key_for(gpg_keys, "qa@example.com").verify(signature, DATA, now=long_ago)

    assert not check.verified
    assert "after the verification time" in check.reason


def test_truncated_armor_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.sign_inline("qa@example.com", DATA)  # type: ignore[attr-defined]
    truncated = signature[: len(signature) // 2]

    check = key_for(gpg_keys, "qa@example.com").verify(truncated, None, now=now)

    assert not check.verified
    assert "malformed or truncated" in check.reason


def test_altered_armor_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.sign_inline("qa@example.com", DATA)  # type: ignore[attr-defined]
    lines = signature.split(b"\n")
    body = bytearray(lines[2])
    body[20] = ord("A") if body[20] != ord("A") else ord("B")
    lines[2] = bytes(body)

    check = key_for(gpg_keys, "qa@example.com").verify(b"\n".join(lines), None, now=now)

    assert not check.verified
    assert check.reason


def test_altered_clearsigned_text_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.clearsign("qa@example.com", DATA)  # type: ignore[attr-defined]
    forged = signature.replace(DIGEST_A.encode(), ("sha256:" + "c" * 64).encode())
    assert forged != signature

    check = key_for(gpg_keys, "qa@example.com").verify(forged, None, now=now)

    assert not check.verified
    assert "does not verify" in check.reason


def test_detached_signature_over_other_data_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign("qa@example.com", DATA)  # type: ignore[attr-defined]

    check = key_for(gpg_keys, "qa@example.com").verify(signature, b"other", now=now)

    assert not check.verified
    assert "does not verify" in check.reason


def test_detached_signature_without_data_is_refused(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.detach_sign("qa@example.com", DATA)  # type: ignore[attr-defined]

    check = key_for(gpg_keys, "qa@example.com").verify(signature, None, now=now)

    assert not check.verified
    assert "no signed data" in check.reason


def test_stored_payload_must_match_the_message(gpg_keys: PgpKeys, now: datetime) -> None:
    signature = gpg_keys.gpg.clearsign("qa@example.com", DATA)  # type: ignore[attr-defined]
    key = key_for(gpg_keys, "qa@example.com")

    assert key.verify(signature, DATA, now=now).verified
    assert key.verify(signature, signature, now=now).verified  # legacy: message as payload
    check = key.verify(signature, f"{REPO}@sha256:{'b' * 64}".encode(), now=now)
    assert not check.verified
    assert "differs from the content" in check.reason


def test_garbage_is_refused_not_raised(gpg_keys: PgpKeys, now: datetime) -> None:
    check = key_for(gpg_keys, "qa@example.com").verify(b"not a signature", DATA, now=now)

    assert not check.verified
    assert check.reason


def test_naive_now_is_an_invalid_argument(gpg_keys: PgpKeys) -> None:
    with pytest.raises(InvalidArgument, match="no time zone"):
        key_for(gpg_keys, "qa@example.com").verify(b"x", DATA, now=datetime(2030, 1, 1))


def test_loading_refuses_secret_keys_and_several_keys(gpg_keys: PgpKeys) -> None:
    gpg: Any = gpg_keys.gpg
    with pytest.raises(InvalidArgument, match="secret key material"):
        PgpPublicKey.from_armored(gpg.export_secret("qa@example.com"))
    with pytest.raises(InvalidArgument, match="exactly one"):
        PgpPublicKey.from_armored(gpg.export("qa@example.com") + gpg.export("rsa@example.com"))
    with pytest.raises(InvalidArgument, match="not an OpenPGP public key"):
        PgpPublicKey.from_armored(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n")


def test_registry_loads_pgp_and_checks_the_configured_id(gpg_keys: PgpKeys) -> None:
    armored = gpg_keys.gpg.export("qa@example.com").decode()  # type: ignore[attr-defined]

    key = load_public_key(KeySpec("pgp", armored, key_id=gpg_keys.ed25519.lower()))

    assert key.key_id == gpg_keys.ed25519.upper()
    with pytest.raises(InvalidArgument, match="does not name this key"):
        load_public_key(KeySpec("PGP", armored, key_id=gpg_keys.rsa))
    with pytest.raises(InvalidArgument, match="unknown public key type"):
        load_public_key(KeySpec("X509", armored))


def test_verification_never_runs_a_subprocess(
    gpg_keys: PgpKeys, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = gpg_keys.gpg.clearsign("qa@example.com", DATA)  # type: ignore[attr-defined]
    key = key_for(gpg_keys, "qa@example.com")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("verification must not run a subprocess")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)

    assert key.verify(signature, None, now=now).verified


def test_verifiers_do_not_import_signing_code() -> None:
    code = (
        "import sys, chainproof.crypto, chainproof.attest;"
        "print(sorted(m for m in sys.modules if m in "
        "('chainproof.crypto.signing', 'chainproof.crypto.gpg_signer')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "[]"


class TestGpgSigner:
    def test_signs_in_every_form_and_verifies_without_gpg(
        self, gpg_keys: PgpKeys, now: datetime
    ) -> None:
        home: Any = gpg_keys.gpg
        signer = GpgSigner("qa@example.com", gnupghome=str(home.home))
        key = PgpPublicKey.from_armored(signer.export_public_key())

        assert signer.fingerprint() == gpg_keys.ed25519.upper() == key.key_id
        assert key.verify(signer.clearsign(DATA), None, now=now).verified
        assert key.verify(signer.sign_inline(DATA), None, now=now).verified
        assert key.verify(signer.sign_inline(DATA, armor=False), None, now=now).verified
        assert key.verify(signer.sign_detached(DATA), DATA, now=now).verified
        assert key.verify(signer.sign_detached(DATA, armor=False), DATA, now=now).verified

    def test_passphrase_goes_through_a_pipe(self, gpg_keys: PgpKeys, now: datetime) -> None:
        home: Any = gpg_keys.gpg
        good = GpgSigner("locked@example.com", gnupghome=str(home.home), passphrase="correct horse")
        key = PgpPublicKey.from_armored(good.export_public_key())

        assert key.verify(good.sign_detached(DATA), DATA, now=now).verified
        # gpg-agent caches the passphrase, so a wrong one is not guaranteed to fail here; a
        # missing key is.
        with pytest.raises(FailedPrecondition, match="gpg failed"):
            GpgSigner("nobody@example.com", gnupghome=str(home.home)).clearsign(DATA)

    def test_missing_binary_is_a_failed_precondition(self) -> None:
        with pytest.raises(FailedPrecondition, match="not on PATH"):
            GpgSigner("qa@example.com", gpg="gpg-that-does-not-exist").clearsign(DATA)
