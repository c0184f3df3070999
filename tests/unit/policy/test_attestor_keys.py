"""An attestor's keys become verifiers in one place (AttestorPublicKey.load / Attestor.load_keys),
for the judge, the attestor resources and `chainproof attestation verify` alike."""

from __future__ import annotations

from datetime import UTC, datetime

from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.policy.attestors import (
    Attestor,
    AttestorPublicKey,
    PkixPublicKey,
    SignatureAlgorithm,
)
from chainproof.services.judge.evidence import attestor_keys

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _pkix(key_id: str, pem: str) -> AttestorPublicKey:
    return AttestorPublicKey(
        id=key_id,
        pkix_public_key=PkixPublicKey(pem, SignatureAlgorithm.ECDSA_P256_SHA256),
    )


def test_a_loaded_key_verifies_what_its_private_half_signed() -> None:
    made = generate_pkix_key()
    signer = PkixSigner.from_pem(made.private_pem, key_id="qa")
    key = _pkix("qa", made.public_pem.decode()).load()
    assert key is not None and key.key_id == "qa"
    assert key.verify(signer.sign(b"payload"), b"payload", now=NOW).verified
    assert not key.verify(signer.sign(b"payload"), b"other", now=NOW).verified


def test_unusable_keys_are_named_with_their_place_and_the_rest_still_load() -> None:
    good = generate_pkix_key()
    attestor = Attestor(
        name="projects/p/attestors/qa",
        note_reference="projects/p/notes/qa",
        public_keys=(
            _pkix("broken", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            AttestorPublicKey(id="empty"),  # no material: nothing to load, nothing to report
            _pkix("good", good.public_pem.decode()),
        ),
    )
    keys, unusable = attestor.load_keys()
    assert [k.key_id for k in keys] == ["good"]
    assert [(u.index, u.key.id) for u in unusable] == [(0, "broken")]
    assert unusable[0].describe().startswith("key broken cannot be used: ")
    # The judge reads the same keys.
    assert [k.key_id for k in attestor_keys(attestor)] == ["good"]
