"""Extracting attestations from grafeas.v1 Occurrence messages, then verifying them."""

from __future__ import annotations

from datetime import datetime

import pytest
from grafeas.grafeas_v1.types import grafeas

from chainproof.attest import (
    INTOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
    SignedAttestation,
    attestation_from_occurrence,
    build_image_url_payload,
    build_statement,
    verify_attestation,
)
from chainproof.crypto import DsseEnvelope
from chainproof.crypto.signing import PkixSigner, generate_pkix_key, sign_envelope
from chainproof.errors import InvalidArgument

from .conftest import IMAGE_A, Attestors

RawOccurrence = grafeas.Occurrence.pb()


def test_attestation_occurrence_from_seed_000(attestors: Attestors, now: datetime) -> None:
    url = build_image_url_payload(IMAGE_A)
    clearsigned = attestors.gpg.clearsign("qa@example.com", url)
    occurrence = grafeas.Occurrence(
        name="projects/p/occurrences/1",
        resource_uri=f"https://{IMAGE_A}",
        note_name="projects/image-signing/notes/qa",
        attestation={
            "serialized_payload": url.rstrip(),
            "signatures": [{"signature": clearsigned, "public_key_id": attestors.qa.key_id}],
        },
    )

    for message in (occurrence, grafeas.Occurrence.pb(occurrence)):
        extracted = attestation_from_occurrence(message)
        assert isinstance(extracted, SignedAttestation)
        assert extracted.signatures[0].key_id_hint == attestors.qa.key_id
        assert verify_attestation(IMAGE_A, extracted, [attestors.qa], now=now).verified


def test_dsse_attestation_and_generic_envelope(now: datetime) -> None:
    signer = PkixSigner.from_pem(generate_pkix_key().private_pem, key_id="k")
    envelope = sign_envelope(
        build_statement(IMAGE_A, SLSA_PROVENANCE_V1, {}), INTOTO_PAYLOAD_TYPE, [signer]
    )
    fields = {
        "payload": envelope.payload,
        "payload_type": envelope.payload_type,
        "signatures": [{"sig": envelope.signatures[0].sig, "keyid": "k"}],
    }
    dsse = RawOccurrence()
    dsse.dsse_attestation.envelope.payload = envelope.payload
    dsse.dsse_attestation.envelope.payload_type = envelope.payload_type
    dsse.dsse_attestation.envelope.signatures.add(sig=envelope.signatures[0].sig, keyid="k")
    generic = grafeas.Occurrence(envelope=fields)

    for message in (dsse, generic):
        extracted = attestation_from_occurrence(message)
        assert extracted == envelope
        assert isinstance(extracted, DsseEnvelope)
        assert verify_attestation(IMAGE_A, extracted, [signer.public_key], now=now).verified


def test_non_attestations_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="not an attestation"):
        attestation_from_occurrence(grafeas.Occurrence(name="projects/p/occurrences/2"))
    jwt_only = grafeas.Occurrence(attestation={"jwts": [{"compact_jwt": "a.b.c"}]})
    with pytest.raises(InvalidArgument, match="JWT"):
        attestation_from_occurrence(jwt_only)
