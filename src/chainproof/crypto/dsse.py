"""DSSE envelopes: their JSON form, the pre-authentication encoding and their verification.

This module owns :class:`DsseEnvelope` (parsed once from JSON, then trusted as a value),
:func:`pae` and :func:`verify_envelope`. Verification follows the DSSE protocol:

1. compute ``PAE(payloadType, payload)`` from the envelope;
2. verify each signature over that encoding with each trusted key; a signature's ``keyid`` only
   orders the search (cosign writes ``""``, sigstore-python omits it);
3. accept when at least ``threshold`` distinct trusted keys verified; refuse a threshold ≤ 0.

The caller must still check ``payload_type`` against what it expects and, only then, parse the
payload: a verified envelope says who signed, not that the payload is the kind the caller wants
(see :func:`chainproof.attest.verify_attestation`). Signing is in :mod:`chainproof.crypto.signing`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.crypto.keys import PublicKey
from chainproof.crypto.verify import (
    SignatureInput,
    SignaturesVerification,
    VerificationBudget,
    verify_signatures,
)
from chainproof.domain.jsontext import parse_signed_json
from chainproof.errors import InvalidArgument

__all__ = [
    "DSSE_ENVELOPE_MEDIA_TYPE",
    "DsseEnvelope",
    "DsseSignature",
    "b64decode_lenient",
    "pae",
    "verify_envelope",
]

DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def b64decode_lenient(text: str, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (both appear in real envelopes)."""
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(cleaned)
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"{what} is not valid base64: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DsseSignature:
    """One signature of an envelope; ``keyid`` is a hint and may be empty."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class DsseEnvelope:
    """A DSSE envelope with its payload and signatures decoded from base64."""

    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...] = ()

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> DsseEnvelope:
        """Parse the JSON envelope (``payload``, ``payloadType``, ``signatures[{keyid, sig}]``)."""
        if isinstance(data, bytes | str):
            obj: Any = parse_signed_json(data, "DSSE envelope")
        else:
            obj = data
        if not isinstance(obj, Mapping):
            raise InvalidArgument("DSSE envelope must be a JSON object")
        payload_type = obj.get("payloadType")
        payload = obj.get("payload")
        if not isinstance(payload_type, str) or not payload_type:
            raise InvalidArgument("DSSE envelope needs a non-empty string payloadType")
        if not isinstance(payload, str):
            raise InvalidArgument("DSSE envelope needs a base64 string payload")
        raw_sigs = obj.get("signatures", [])
        if not isinstance(raw_sigs, list):
            raise InvalidArgument("DSSE envelope signatures must be a list")
        signatures: list[DsseSignature] = []
        for index, item in enumerate(raw_sigs):
            if not isinstance(item, Mapping) or not isinstance(item.get("sig"), str):
                raise InvalidArgument(f"DSSE signature {index} needs a base64 string 'sig'")
            keyid = item.get("keyid") or ""
            if not isinstance(keyid, str):
                raise InvalidArgument(f"DSSE signature {index} has a non-string keyid")
            signatures.append(
                DsseSignature(b64decode_lenient(item["sig"], f"DSSE signature {index}"), keyid)
            )
        return cls(
            payload=b64decode_lenient(payload, "DSSE payload"),
            payload_type=payload_type,
            signatures=tuple(signatures),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form (standard base64), as cosign and securesystemslib write it."""
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures
            ],
        }


def verify_envelope(
    envelope: DsseEnvelope,
    keys: Sequence[PublicKey],
    *,
    now: datetime,
    threshold: int = 1,
    budget: VerificationBudget | None = None,
) -> SignaturesVerification:
    """Verify the envelope's signatures over its PAE; see the module docstring for the rules."""
    return verify_signatures(
        envelope.pae(),
        [SignatureInput(s.sig, s.keyid) for s in envelope.signatures],
        keys,
        now=now,
        threshold=threshold,
        budget=budget,
    )
