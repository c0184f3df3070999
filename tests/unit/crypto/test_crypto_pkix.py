"""PKIX verification for every Binary Authorization algorithm, with keys and signatures from
openssl, and the signing helpers checked back by openssl."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chainproof.crypto import ALGORITHMS, KeySpec, PkixPublicKey, load_public_key
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.errors import InvalidArgument

from .conftest import realtools

DATA = b'{"critical":{"identity":{"docker-reference":"gcr.io/p/app"}}}'

CANONICAL = sorted(realtools.OPENSSL_RECIPES)
ALIASES = {
    "EC_SIGN_P256_SHA256": "ECDSA_P256_SHA256",
    "EC_SIGN_P384_SHA384": "ECDSA_P384_SHA384",
    "EC_SIGN_P521_SHA512": "ECDSA_P521_SHA512",
    "RSA_SIGN_PSS_2048_SHA256": "RSA_PSS_2048_SHA256",
    "RSA_SIGN_PSS_4096_SHA512": "RSA_PSS_4096_SHA512",
    "EC_SIGN_ED25519": "ED25519",
}


def test_every_binary_authorization_name_is_known() -> None:
    names = {
        "RSA_PSS_2048_SHA256", "RSA_PSS_3072_SHA256", "RSA_PSS_4096_SHA256",
        "RSA_PSS_4096_SHA512", "RSA_SIGN_PKCS1_2048_SHA256", "RSA_SIGN_PKCS1_3072_SHA256",
        "RSA_SIGN_PKCS1_4096_SHA256", "RSA_SIGN_PKCS1_4096_SHA512", "ECDSA_P256_SHA256",
        "EC_SIGN_P256_SHA256", "ECDSA_P384_SHA384", "EC_SIGN_P384_SHA384",
        "ECDSA_P521_SHA512", "EC_SIGN_P521_SHA512", "ED25519",
    }  # fmt: skip
    assert names <= set(ALGORITHMS)


@pytest.mark.parametrize("algorithm", CANONICAL)
def test_openssl_signature_verifies(
    algorithm: str, openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys[algorithm]
    signature = made.sign(DATA, tmp_path)
    key = load_public_key(
        KeySpec("PKIX", made.public_pem, key_id="//attestors/qa", algorithm=algorithm)
    )

    check = key.verify(signature, DATA, now=now)

    assert check.verified, check.reason
    assert check.key_id == "//attestors/qa"
    assert check.signed_content == DATA
    assert not key.verify(signature, DATA + b" ", now=now).verified


@pytest.mark.parametrize(("alias", "canonical"), sorted(ALIASES.items()))
def test_aliases_verify_like_their_canonical_name(
    alias: str, canonical: str, openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys[canonical]
    key = PkixPublicKey.from_pem(made.public_pem, alias)

    assert key.algorithm.canonical_name == canonical
    assert key.verify(made.sign(DATA, tmp_path), DATA, now=now).verified


def test_pss_with_openssl_default_salt_length_verifies(
    openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys["RSA_PSS_2048_SHA256"]
    signature = made.sign(DATA, tmp_path, sigopts=("rsa_padding_mode:pss",))
    key = PkixPublicKey.from_pem(made.public_pem, "RSA_PSS_2048_SHA256")

    assert key.verify(signature, DATA, now=now).verified


def test_pss_signature_does_not_pass_as_pkcs1(
    openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys["RSA_PSS_2048_SHA256"]
    signature = made.sign(DATA, tmp_path)
    key = PkixPublicKey.from_pem(made.public_pem, "RSA_SIGN_PKCS1_2048_SHA256")

    check = key.verify(signature, DATA, now=now)

    assert not check.verified
    assert "does not verify" in check.reason
    assert "RSA_SIGN_PKCS1_2048_SHA256" in check.reason


@pytest.mark.parametrize(
    ("made_for", "claimed", "message"),
    [
        ("RSA_PSS_2048_SHA256", "RSA_PSS_3072_SHA256", "needs an RSA 3072-bit key"),
        ("RSA_PSS_3072_SHA256", "RSA_SIGN_PKCS1_4096_SHA512", "needs an RSA 4096-bit key"),
        ("RSA_SIGN_PKCS1_4096_SHA256", "RSA_SIGN_PKCS1_2048_SHA256", "but this is an RSA 4096"),
        ("ECDSA_P256_SHA256", "ECDSA_P384_SHA384", "needs an EC key on secp384r1"),
        ("ECDSA_P521_SHA512", "EC_SIGN_P256_SHA256", "needs an EC key on secp256r1"),
        ("RSA_PSS_2048_SHA256", "ECDSA_P256_SHA256", "but this is an RSA 2048-bit key"),
        ("ECDSA_P256_SHA256", "ED25519", "needs an Ed25519 key"),
        ("ED25519", "RSA_PSS_2048_SHA256", "but this is an Ed25519 key"),
    ],
)
def test_algorithm_that_does_not_fit_the_key_is_refused(
    made_for: str, claimed: str, message: str, openssl_keys: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        PkixPublicKey.from_pem(openssl_keys[made_for].public_pem, claimed)


def test_unknown_algorithm_and_rsa_without_algorithm_are_refused(
    openssl_keys: dict[str, Any],
) -> None:
    with pytest.raises(InvalidArgument, match="unknown PKIX signature algorithm"):
        PkixPublicKey.from_pem(openssl_keys["ECDSA_P256_SHA256"].public_pem, "ECDSA_P256_SHA1")
    with pytest.raises(InvalidArgument, match="cannot infer"):
        PkixPublicKey.from_pem(openssl_keys["RSA_PSS_2048_SHA256"].public_pem)
    with pytest.raises(InvalidArgument, match="not a PEM public key"):
        PkixPublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_ec_and_ed25519_algorithms_are_inferred(openssl_keys: dict[str, Any]) -> None:
    assert PkixPublicKey.from_pem(openssl_keys["ECDSA_P384_SHA384"].public_pem).algorithm.name == (
        "ECDSA_P384_SHA384"
    )
    assert PkixPublicKey.from_pem(openssl_keys["ED25519"].public_pem).algorithm.name == "ED25519"


def test_fingerprint_is_sha256_of_the_der_spki(openssl_keys: dict[str, Any]) -> None:
    made = openssl_keys["ECDSA_P256_SHA256"]
    expected = "sha256:" + hashlib.sha256(made.public_der()).hexdigest()

    unnamed = PkixPublicKey.from_pem(made.public_pem)
    named = PkixPublicKey.from_pem(made.public_pem, key_id="https://example.com/keys/qa")

    assert unnamed.key_id == unnamed.fingerprint == expected
    assert named.key_id == "https://example.com/keys/qa"
    assert named.matches_hint(expected.upper().replace("SHA256:", "sha256:"))
    assert named.matches_hint("https://example.com/keys/qa")
    assert not named.matches_hint("https://example.com/keys/other")


def test_raw_r_s_ecdsa_signature_is_accepted(
    openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    made = openssl_keys["ECDSA_P256_SHA256"]
    r, s = decode_dss_signature(made.sign(DATA, tmp_path))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")

    assert PkixPublicKey.from_pem(made.public_pem).verify(raw, DATA, now=now).verified


def test_raw_r_s_signature_that_begins_like_der_is_accepted(now: datetime) -> None:
    """Once in 256 signatures r's first byte is 0x30, a DER SEQUENCE's tag: such an r || s
    must still verify (CI met one, read as DER and refused), and not under another key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for _ in range(20_000):  # ~256 tries on average; the bound only stops a broken loop
        r, s = decode_dss_signature(private.sign(DATA, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if raw[0] == 0x30:
            break
    assert raw[0] == 0x30
    key = PkixPublicKey.from_pem(pem)
    assert key.verify(raw, DATA, now=now).verified
    assert not key.verify(raw, DATA + b" ", now=now).verified
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert not PkixPublicKey.from_pem(other_pem).verify(raw, DATA, now=now).verified


def test_pkix_needs_the_signed_data(
    openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys["ED25519"]
    check = PkixPublicKey.from_pem(made.public_pem).verify(made.sign(DATA, tmp_path), None, now=now)

    assert not check.verified
    assert "needs the signed data" in check.reason


@pytest.mark.parametrize(
    ("algorithm", "digest", "sigopts"),
    [
        ("ECDSA_P256_SHA256", "sha256", ()),
        ("ECDSA_P384_SHA384", "sha384", ()),
        ("RSA_PSS_2048_SHA256", "sha256", ("rsa_padding_mode:pss", "rsa_pss_saltlen:digest")),
        ("RSA_SIGN_PKCS1_2048_SHA256", "sha256", ()),
    ],
)
def test_our_signatures_verify_with_openssl(
    algorithm: str, digest: str, sigopts: tuple[str, ...], tmp_path: Path, now: datetime
) -> None:
    generated = generate_pkix_key(algorithm)
    signer = PkixSigner.from_pem(generated.private_pem, algorithm)
    signature = signer.sign(DATA)

    assert realtools.openssl_verify(
        generated.public_pem, DATA, signature, tmp_path, digest, sigopts
    )
    assert (
        PkixPublicKey.from_pem(generated.public_pem, algorithm)
        .verify(signature, DATA, now=now)
        .verified
    )


def test_generate_defaults_to_p256_and_supports_ed25519_and_rsa(now: datetime) -> None:
    default = generate_pkix_key()
    assert default.algorithm == "ECDSA_P256_SHA256"
    assert b"BEGIN PRIVATE KEY" in default.private_pem
    for algorithm, bits in (("RSA_PSS_3072_SHA256", 3072), ("RSA_SIGN_PKCS1_4096_SHA256", 4096)):
        key = PkixPublicKey.from_pem(generate_pkix_key(algorithm).public_pem, algorithm)
        assert key.public_key.key_size == bits  # type: ignore[union-attr]
    ed = generate_pkix_key("ED25519", password=b"pw")
    assert b"ENCRYPTED PRIVATE KEY" in ed.private_pem
    signer = PkixSigner.from_pem(ed.private_pem, password=b"pw", key_id="k1")
    assert signer.key_id == "k1"
    assert PkixPublicKey.from_pem(ed.public_pem).verify(signer.sign(DATA), DATA, now=now).verified
    with pytest.raises(InvalidArgument, match="not a usable PEM private key"):
        PkixSigner.from_pem(ed.private_pem, password=b"wrong")


def test_openssl_key_loads_into_our_signer(
    openssl_keys: dict[str, Any], tmp_path: Path, now: datetime
) -> None:
    made = openssl_keys["RSA_PSS_3072_SHA256"]
    signer = PkixSigner.from_pem(made.private.read_bytes(), "RSA_PSS_3072_SHA256")

    signature = signer.sign(DATA)

    assert realtools.openssl_verify(
        made.public_pem, DATA, signature, tmp_path, "sha256", ("rsa_padding_mode:pss",)
    )
