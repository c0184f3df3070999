"""DSSE envelopes: securesystemslib signs, chainproof verifies (and the other way round)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from chainproof.crypto import (
    ALGORITHMS,
    DsseEnvelope,
    DsseSignature,
    PgpPublicKey,
    PkixPublicKey,
    pae,
)
from chainproof.crypto.dsse import verify_envelope
from chainproof.crypto.pkix import algorithm_for_key
from chainproof.crypto.signing import PkixSigner, generate_pkix_key, sign_envelope
from chainproof.errors import InvalidArgument

from .conftest import PgpKeys

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def sslib_envelope(
    signer: CryptoSigner, payload: bytes = PAYLOAD, kind: str = PAYLOAD_TYPE
) -> DsseEnvelope:
    env = Envelope(payload, kind, {})
    env.sign(signer)
    return DsseEnvelope.from_json(json.dumps(env.to_dict()))


def our_key(
    signer: CryptoSigner, algorithm: str | None = None, key_id: str | None = None
) -> PkixPublicKey:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(signer.private_bytes, None)
    return PkixPublicKey(
        private.public_key(),
        ALGORITHMS[algorithm] if algorithm else algorithm_for_key(private.public_key()),
        key_id,
    )


SSLIB_SIGNERS = {
    "ecdsa-p256": (lambda: CryptoSigner.generate_ecdsa(), None),
    "ed25519": (lambda: CryptoSigner.generate_ed25519(), None),
    "rsa-pss-2048": (lambda: CryptoSigner.generate_rsa(size=2048), "RSA_PSS_2048_SHA256"),
}


def test_pae_matches_the_dsse_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("kind", sorted(SSLIB_SIGNERS))
def test_securesystemslib_envelope_verifies(kind: str, now: datetime) -> None:
    make, algorithm = SSLIB_SIGNERS[kind]
    signer = make()
    envelope = sslib_envelope(signer)

    result = verify_envelope(envelope, [our_key(signer, algorithm, "builder")], now=now)

    assert result.verified, result.reasons
    assert result.key_ids == ("builder",)


def test_keyid_is_only_a_hint(now: datetime) -> None:
    signer = CryptoSigner.generate_ecdsa()
    trusted = our_key(signer, key_id="release")
    other = our_key(CryptoSigner.generate_ecdsa(), key_id="other")
    good = sslib_envelope(signer)
    sig = good.signatures[0].sig
    for hint in ("", "other", "someone-untrusted"):
        envelope = DsseEnvelope(good.payload, good.payload_type, (DsseSignature(sig, hint),))
        result = verify_envelope(envelope, [other, trusted], now=now)
        assert result.key_ids == ("release",), hint


def test_wrong_key_is_refused(now: datetime) -> None:
    envelope = sslib_envelope(CryptoSigner.generate_ed25519())
    stranger = our_key(CryptoSigner.generate_ed25519(), key_id="stranger")

    result = verify_envelope(envelope, [stranger], now=now)

    assert not result.verified
    assert "does not verify with key stranger" in result.reasons[0]


def test_payload_type_changed_after_signing_is_refused(now: datetime) -> None:
    signer = CryptoSigner.generate_ecdsa()
    good = sslib_envelope(signer)
    forged = DsseEnvelope(
        good.payload, "application/vnd.dev.cosign.simplesigning.v1+json", good.signatures
    )

    result = verify_envelope(forged, [our_key(signer)], now=now)

    assert not result.verified
    assert "does not verify" in result.reasons[0]


def test_empty_signature_list_is_refused(now: datetime) -> None:
    signer = CryptoSigner.generate_ecdsa()

    result = verify_envelope(DsseEnvelope(PAYLOAD, PAYLOAD_TYPE, ()), [our_key(signer)], now=now)

    assert not result.verified
    assert result.reasons == ("the attestation carries no signatures",)


def test_threshold_counts_distinct_keys_and_refuses_zero(now: datetime) -> None:
    one = PkixSigner.from_pem(generate_pkix_key().private_pem, key_id="one")
    two = PkixSigner.from_pem(generate_pkix_key("ED25519").private_pem, key_id="two")
    keys = [one.public_key, two.public_key]

    both = sign_envelope(PAYLOAD, PAYLOAD_TYPE, [one, two])
    twice = sign_envelope(PAYLOAD, PAYLOAD_TYPE, [one, one])

    assert verify_envelope(both, keys, now=now, threshold=2).key_ids == ("one", "two")
    repeated = verify_envelope(twice, keys, now=now, threshold=2)
    assert not repeated.verified
    assert "1 trusted key(s) verified (one), but 2 are required" in repeated.reasons
    for bad in (0, -1):
        with pytest.raises(InvalidArgument, match="at least 1"):
            verify_envelope(both, keys, now=now, threshold=bad)


def test_our_envelope_verifies_with_securesystemslib() -> None:
    from securesystemslib.signer import SSlibKey

    signer = PkixSigner.from_pem(generate_pkix_key().private_pem)
    envelope = sign_envelope(PAYLOAD, PAYLOAD_TYPE, [signer])
    key = SSlibKey.from_crypto(signer.public_key.public_key, scheme="ecdsa-sha2-nistp256")
    # securesystemslib only counts signatures whose keyid equals its own key id.
    doc = envelope.to_json()
    doc["signatures"][0]["keyid"] = key.keyid

    verified = Envelope.from_dict(doc).verify([key], 1)

    assert list(verified) == [key.keyid]


def test_envelope_json_round_trip_and_lenient_base64() -> None:
    envelope = DsseEnvelope(PAYLOAD, PAYLOAD_TYPE, (DsseSignature(b"\xfb\xff\x00", ""),))
    doc = envelope.to_json()
    doc["signatures"][0]["sig"] = base64.urlsafe_b64encode(b"\xfb\xff\x00").decode().rstrip("=")
    del doc["signatures"][0]["keyid"]  # sigstore-python omits it

    assert DsseEnvelope.from_json(doc) == envelope
    with pytest.raises(InvalidArgument, match="not valid base64"):
        DsseEnvelope.from_json({"payload": "!!", "payloadType": "x", "signatures": []})
    with pytest.raises(InvalidArgument, match="payloadType"):
        DsseEnvelope.from_json(b'{"payload": ""}')
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        DsseEnvelope.from_json(b"{")


def test_gpg_detached_signature_over_pae_verifies(gpg_keys: PgpKeys, now: datetime) -> None:
    gpg: Any = gpg_keys.gpg
    signature = gpg.detach_sign("qa@example.com", pae(PAYLOAD_TYPE, PAYLOAD), armor=False)
    envelope = DsseEnvelope(PAYLOAD, PAYLOAD_TYPE, (DsseSignature(signature, ""),))
    key = PgpPublicKey.from_armored(gpg.export("qa@example.com"))

    assert verify_envelope(envelope, [key], now=now).key_ids == (key.key_id,)
