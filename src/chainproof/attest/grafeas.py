"""The bridge from grafeas.v1 Occurrence messages to the plain values attest/ verifies.

This module owns :func:`attestation_from_occurrence`: it reads, and only reads, an
ATTESTATION occurrence (``attestation.serialized_payload`` and
``attestation.signatures[].signature/public_key_id``), a DSSE_ATTESTATION occurrence
(``dsse_attestation.envelope``) or an occurrence's generic ``envelope`` and returns a
:class:`~chainproof.attest.verify.SignedAttestation` or a
:class:`~chainproof.crypto.dsse.DsseEnvelope`. It accepts the proto-plus wrapper
(``grafeas.Occurrence``) or the raw protobuf (``grafeas.Occurrence.pb()``), and never touches
storage; nothing it returns is trusted until :func:`~chainproof.attest.verify.verify_attestation`
has checked it. :func:`occurrence_json` goes the other way: the JSON of the occurrence that
carries a signed attestation (for copying registry evidence into the scribe).
"""

from __future__ import annotations

import base64
from typing import Any

from chainproof.attest.verify import SignedAttestation
from chainproof.crypto.dsse import DsseEnvelope, DsseSignature
from chainproof.crypto.verify import SignatureInput
from chainproof.errors import InvalidArgument

__all__ = ["attestation_from_occurrence", "envelope_from_message", "occurrence_json"]


def _raw(message: Any) -> Any:
    # proto-plus wrappers keep the protobuf message in ``_pb``; raw messages are used as they are.
    return getattr(message, "_pb", message)


def envelope_from_message(envelope: Any) -> DsseEnvelope:
    """A :class:`DsseEnvelope` from a grafeas.v1 ``Envelope`` message (bytes already decoded)."""
    raw = _raw(envelope)
    return DsseEnvelope(
        payload=bytes(raw.payload),
        payload_type=str(raw.payload_type),
        signatures=tuple(DsseSignature(bytes(s.sig), str(s.keyid)) for s in raw.signatures),
    )


def attestation_from_occurrence(occurrence: Any) -> SignedAttestation | DsseEnvelope:
    """Extract the signed content of an attestation occurrence; raise InvalidArgument if none."""
    raw = _raw(occurrence)
    if raw.HasField("dsse_attestation") and raw.dsse_attestation.HasField("envelope"):
        return envelope_from_message(raw.dsse_attestation.envelope)
    if raw.HasField("attestation"):
        att = raw.attestation
        if not att.signatures and att.jwts:
            raise InvalidArgument(
                f"occurrence {raw.name or '(unnamed)'} carries JWT attestations, which "
                "chainproof does not verify: sign with PGP, PKIX or DSSE"
            )
        return SignedAttestation(
            serialized_payload=bytes(att.serialized_payload),
            signatures=tuple(
                SignatureInput(bytes(s.signature), str(s.public_key_id)) for s in att.signatures
            ),
        )
    if raw.HasField("envelope"):
        return envelope_from_message(raw.envelope)
    raise InvalidArgument(
        f"occurrence {raw.name or '(unnamed)'} is not an attestation: expected attestation, "
        "dsse_attestation.envelope or envelope"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def occurrence_json(
    resource: str, note: str, item: SignedAttestation | DsseEnvelope, key_id: str
) -> dict[str, Any]:
    """The occurrence (REST JSON) filing ``item`` about ``resource`` under ``note``: an
    ATTESTATION occurrence for a simple-signing payload (each signature marked with the id of
    the key that verified it), a DSSE_ATTESTATION occurrence for an envelope (as signed)."""
    if isinstance(item, DsseEnvelope):
        return {
            "resourceUri": resource,
            "noteName": note,
            "dsseAttestation": {
                "envelope": {
                    "payload": _b64(item.payload),
                    "payloadType": item.payload_type,
                    "signatures": [{"sig": _b64(s.sig), "keyid": s.keyid} for s in item.signatures],
                }
            },
        }
    return {
        "resourceUri": resource,
        "noteName": note,
        "attestation": {
            "serializedPayload": _b64(item.serialized_payload),
            "signatures": [
                {"signature": _b64(s.signature), "publicKeyId": key_id} for s in item.signatures
            ],
        },
    }
