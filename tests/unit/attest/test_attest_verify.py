"""verify_attestation end to end on real signatures, including every attack the issue lists."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from chainproof.attest import (
    IMAGE_URL_CONTENT_TYPE,
    INTOTO_PAYLOAD_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    ImageUrlPayload,
    SignedAttestation,
    SimpleSigningPayload,
    build_image_url_payload,
    build_simple_signing,
    build_statement,
    verify_attestation,
)
from chainproof.crypto import DsseEnvelope, PkixPublicKey
from chainproof.crypto.signing import PkixSigner, sign_envelope
from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument, PermissionDenied

from .conftest import HEX_A, HEX_B, IMAGE_A, IMAGE_B, OTHER_REPO, REPO, Attestors

URL_A = build_image_url_payload(IMAGE_A)


def seed_attestation(signature: bytes, key_id: str, payload: bytes = b"") -> SignedAttestation:
    return SignedAttestation.of(payload, [(signature, key_id)], IMAGE_URL_CONTENT_TYPE)


class TestAccepted:
    def test_seed_000_clearsigned_image_url(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("qa@example.com", URL_A)

        result = verify_attestation(
            IMAGE_A, seed_attestation(signature, attestors.qa.key_id), [attestors.qa], now=now
        )

        assert result.verified, result.reasons
        assert result.key_ids == (attestors.qa.key_id,)
        assert result.payload_format == "image-url"
        assert isinstance(result.payload, ImageUrlPayload)
        assert result.reasons == ()
        result.raise_for_failure()

    def test_seed_000_url_with_scheme_and_stored_cleartext(
        self, attestors: Attestors, now: datetime
    ) -> None:
        text = f"https://{REPO}@sha256:{HEX_A}\n".encode()
        signature = attestors.gpg.clearsign("qa@example.com", text)

        # How the legacy upgrade stores it: the cleartext beside the clearsigned message.
        stored = SignedAttestation.of(text.rstrip(), [(signature, attestors.qa.key_id)])

        assert verify_attestation(IMAGE_A, stored, [attestors.qa], now=now).verified

    def test_binauthz_pgp_inline_signed_simple_signing(
        self, attestors: Attestors, now: datetime
    ) -> None:
        payload = build_simple_signing(IMAGE_A)
        signature = attestors.gpg.sign_inline("qa@example.com", payload)

        result = verify_attestation(
            IMAGE_A,
            SignedAttestation.of(payload, [(signature, attestors.qa.key_id)]),
            [attestors.other, attestors.qa],
            now=now,
        )

        assert result.verified, result.reasons
        assert isinstance(result.payload, SimpleSigningPayload)
        assert result.payload_format == "simple-signing"

    @pytest.mark.parametrize("which", ["p256", "rsa_pss"])
    def test_pkix_openssl_signed_simple_signing(
        self, which: str, attestors: Attestors, now: datetime
    ) -> None:
        made = getattr(attestors, which)
        key = getattr(attestors, f"{which}_key")
        payload = build_simple_signing(IMAGE_A)
        signature = made.sign(payload, attestors.tmp)

        result = verify_attestation(
            IMAGE_A,
            SignedAttestation.of(payload, [(signature, key.key_id)]),
            [attestors.p256_key, attestors.rsa_pss_key],
            now=now,
        )

        assert result.verified, result.reasons
        assert result.key_ids == (key.key_id,)

    def test_dsse_in_toto_from_securesystemslib(self, now: datetime) -> None:
        signer = CryptoSigner.generate_ecdsa()
        statement = build_statement(IMAGE_A, SLSA_PROVENANCE_V1, {"buildDefinition": {}})
        env = Envelope(statement, INTOTO_PAYLOAD_TYPE, {})
        env.sign(signer)
        key = _public(signer, "//keys/builder")

        result = verify_attestation(
            IMAGE_A,
            DsseEnvelope.from_json(json.dumps(env.to_dict())),
            [key],
            now=now,
            expected_payload_type=INTOTO_PAYLOAD_TYPE,
        )

        assert result.verified, result.reasons
        assert result.statement is not None
        assert result.statement.predicate_kind == "slsa-provenance"
        assert result.key_ids == ("//keys/builder",)

    def test_key_id_hint_naming_another_trusted_key(
        self, attestors: Attestors, now: datetime
    ) -> None:
        payload = build_simple_signing(IMAGE_A)
        signature = attestors.p256.sign(payload, attestors.tmp)

        result = verify_attestation(
            IMAGE_A,
            SignedAttestation.of(payload, [(signature, attestors.rsa_pss_key.key_id)]),
            [attestors.rsa_pss_key, attestors.p256_key],
            now=now,
        )

        assert result.key_ids == (attestors.p256_key.key_id,)


class TestAttacks:
    def test_payload_for_another_digest(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("qa@example.com", URL_A)

        result = verify_attestation(
            IMAGE_B, seed_attestation(signature, attestors.qa.key_id), [attestors.qa], now=now
        )

        assert not result.verified
        assert result.key_ids == (attestors.qa.key_id,)  # signed by the right key, wrong image
        assert result.reasons == (f"payload names sha256:{HEX_A} but the image is sha256:{HEX_B}",)
        with pytest.raises(PermissionDenied, match="does not vouch for") as raised:
            result.raise_for_failure()
        assert raised.value.details == result.reasons

    def test_payload_for_another_repository(self, attestors: Attestors, now: datetime) -> None:
        other = parse_image_reference(f"{OTHER_REPO}@sha256:{HEX_A}")
        payload = build_simple_signing(other)
        signature = attestors.p256.sign(payload, attestors.tmp)

        result = verify_attestation(
            IMAGE_A, SignedAttestation.of(payload, [(signature, "")]), [attestors.p256_key], now=now
        )

        assert not result.verified
        assert result.reasons == (
            f"payload names repository {OTHER_REPO} but the image is in {REPO}",
        )

    def test_wrong_key(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("other@example.com", URL_A)

        result = verify_attestation(
            IMAGE_A, seed_attestation(signature, attestors.qa.key_id), [attestors.qa], now=now
        )

        assert not result.verified
        assert result.key_ids == ()
        assert result.payload is None, "an unverified payload is never parsed"
        assert f"signed by unknown key {attestors.other.key_id}" in result.reasons[0]

    def test_expired_key(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("short@example.com", URL_A)
        attestation = seed_attestation(signature, attestors.short.key_id)

        assert verify_attestation(IMAGE_A, attestation, [attestors.short], now=now).verified
        result = verify_attestation(
            IMAGE_A, attestation, [attestors.short], now=now + timedelta(days=2)
        )

        assert not result.verified
        assert f"key {attestors.short.key_id} expired at" in result.reasons[0]

    def test_revoked_key(self, attestors: Attestors, now: datetime) -> None:
        attestation = SignedAttestation.of(
            URL_A, [(attestors.revoked_detached, attestors.revoked.key_id)]
        )

        result = verify_attestation(IMAGE_A, attestation, [attestors.revoked], now=now)

        assert not result.verified
        assert f"key {attestors.revoked.key_id} is revoked" in result.reasons[0]

    def test_truncated_armor(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.sign_inline("qa@example.com", URL_A)
        cut = signature[: len(signature) - 60]

        result = verify_attestation(
            IMAGE_A, seed_attestation(cut, attestors.qa.key_id), [attestors.qa], now=now
        )

        assert not result.verified
        assert "malformed or truncated" in result.reasons[0]

    def test_altered_armor(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("qa@example.com", URL_A)
        head, sep, armor = signature.partition(b"-----BEGIN PGP SIGNATURE-----")
        lines = armor.split(b"\n")
        line = bytearray(lines[2])
        line[10] = ord("Q") if line[10] != ord("Q") else ord("R")
        lines[2] = bytes(line)
        altered = head + sep + b"\n".join(lines)

        result = verify_attestation(
            IMAGE_A, seed_attestation(altered, attestors.qa.key_id), [attestors.qa], now=now
        )

        assert not result.verified
        assert result.key_ids == ()
        assert result.reasons[0].startswith(f"signature 1 (key id '{attestors.qa.key_id}'): ")

    def test_dsse_payload_type_mismatch(self, now: datetime) -> None:
        signer = PkixSigner.from_pem(_pem(), key_id="k")
        statement = build_statement(IMAGE_A, SLSA_PROVENANCE_V1, {})
        as_simple = sign_envelope(statement, SIMPLE_SIGNING_MEDIA_TYPE, [signer])
        as_text = sign_envelope(statement, "text/plain", [signer])
        relabelled = DsseEnvelope(statement, INTOTO_PAYLOAD_TYPE, as_simple.signatures)
        keys = [signer.public_key]

        required = verify_attestation(
            IMAGE_A, as_simple, keys, now=now, expected_payload_type=INTOTO_PAYLOAD_TYPE
        )
        unknown = verify_attestation(IMAGE_A, as_text, keys, now=now)
        forged = verify_attestation(IMAGE_A, relabelled, keys, now=now)

        assert required.reasons == (
            f"DSSE payloadType is '{SIMPLE_SIGNING_MEDIA_TYPE}', but '{INTOTO_PAYLOAD_TYPE}' "
            "is required",
        )
        assert (
            "DSSE payloadType 'text/plain' is not one chainproof understands" in unknown.reasons[0]
        )
        assert not forged.verified
        assert "does not verify" in forged.reasons[0]

    def test_empty_signature_list(self, attestors: Attestors, now: datetime) -> None:
        for attestation in (
            SignedAttestation.of(URL_A, []),
            DsseEnvelope(build_statement(IMAGE_A, SLSA_PROVENANCE_V1, {}), INTOTO_PAYLOAD_TYPE, ()),
        ):
            result = verify_attestation(IMAGE_A, attestation, [attestors.qa], now=now)
            assert not result.verified
            assert result.reasons == ("the attestation carries no signatures",)

    def test_valid_signature_replayed_from_another_image(
        self, attestors: Attestors, now: datetime
    ) -> None:
        payload_a = build_simple_signing(IMAGE_A)
        signature_a = attestors.p256.sign(payload_a, attestors.tmp)
        keys = [attestors.p256_key]

        as_is = verify_attestation(
            IMAGE_B, SignedAttestation.of(payload_a, [(signature_a, "")]), keys, now=now
        )
        swapped = verify_attestation(
            IMAGE_B,
            SignedAttestation.of(build_simple_signing(IMAGE_B), [(signature_a, "")]),
            keys,
            now=now,
        )

        assert as_is.reasons == (f"payload names sha256:{HEX_A} but the image is sha256:{HEX_B}",)
        assert not swapped.verified
        assert "does not verify" in swapped.reasons[0]

    def test_pgp_message_beside_a_payload_for_another_image(
        self, attestors: Attestors, now: datetime
    ) -> None:
        signature = attestors.gpg.clearsign("qa@example.com", URL_A)
        attestation = seed_attestation(
            signature, attestors.qa.key_id, payload=build_image_url_payload(IMAGE_B)
        )

        result = verify_attestation(IMAGE_B, attestation, [attestors.qa], now=now)

        assert not result.verified
        assert "differs from the content the signed message carries" in result.reasons[0]

    def test_statement_with_right_digest_under_another_name(self, now: datetime) -> None:
        signer = PkixSigner.from_pem(_pem(), key_id="k")
        doc = json.loads(build_statement(IMAGE_A, SLSA_PROVENANCE_V1, {}))
        doc["subject"] = [{"name": OTHER_REPO, "digest": {"sha256": HEX_A}}]
        envelope = sign_envelope(json.dumps(doc).encode(), INTOTO_PAYLOAD_TYPE, [signer])

        result = verify_attestation(IMAGE_A, envelope, [signer.public_key], now=now)

        assert not result.verified
        assert result.statement is not None
        assert result.reasons == (
            f"statement names sha256:{HEX_A} only under '{OTHER_REPO}', not under the image's "
            f"repository {REPO}",
        )

    def test_untrusted_key_with_matching_key_id(self, attestors: Attestors, now: datetime) -> None:
        impostor = PkixSigner.from_pem(_pem(), key_id=attestors.p256_key.key_id)
        payload = build_simple_signing(IMAGE_A)

        result = verify_attestation(
            IMAGE_A,
            SignedAttestation.of(payload, [(impostor.sign(payload), impostor.key_id)]),
            [attestors.p256_key],
            now=now,
        )

        assert not result.verified
        assert "does not verify with key //keys/qa-p256" in result.reasons[0]

    def test_signed_garbage_is_not_a_payload(self, attestors: Attestors, now: datetime) -> None:
        payload = b'{"critical": {"type": "atomic container signature"}}'
        signature = attestors.p256.sign(payload, attestors.tmp)

        result = verify_attestation(
            IMAGE_A, SignedAttestation.of(payload, [(signature, "")]), [attestors.p256_key], now=now
        )

        assert not result.verified
        assert result.reasons[0].startswith("the signed payload is not valid simple-signing")


class TestCallerErrors:
    def test_image_without_digest(self, attestors: Attestors, now: datetime) -> None:
        with pytest.raises(InvalidArgument, match="no digest"):
            verify_attestation(
                parse_image_reference(f"{REPO}:latest"),
                SignedAttestation.of(URL_A, []),
                [attestors.qa],
                now=now,
            )

    def test_threshold_below_one(self, attestors: Attestors, now: datetime) -> None:
        with pytest.raises(InvalidArgument, match="at least 1"):
            verify_attestation(
                IMAGE_A, SignedAttestation.of(URL_A, []), [attestors.qa], now=now, threshold=0
            )

    def test_no_trusted_keys(self, attestors: Attestors, now: datetime) -> None:
        signature = attestors.gpg.clearsign("qa@example.com", URL_A)

        result = verify_attestation(IMAGE_A, seed_attestation(signature, ""), [], now=now)

        assert not result.verified
        assert "no trusted public keys" in result.reasons[0]


def _pem() -> bytes:
    from chainproof.crypto.signing import generate_pkix_key

    return generate_pkix_key().private_pem


def _public(signer: CryptoSigner, key_id: str) -> PkixPublicKey:
    private = serialization.load_pem_private_key(signer.private_bytes, None)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PkixPublicKey.from_pem(pem, key_id=key_id)
