"""Older Grafeas JSON shapes, rewritten into their v1 form before parsing.

The Kubernetes walkthrough that chainproof's users follow (and Kritis) speaks Grafeas
v1alpha1: notes of kind ``ATTESTATION_AUTHORITY`` with an ``attestationAuthority`` block, and
occurrences with ``resourceUrl`` and ``attestation.pgpSignedAttestation{signature,
contentType, pgpKeyId}`` holding a clearsigned message. They are accepted and stored as v1:

* ``attestationAuthority`` → ``attestation``; kind ``ATTESTATION_AUTHORITY`` → derived;
* ``resourceUrl`` → ``resourceUri``;
* ``pgpSignedAttestation`` → ``attestation{serializedPayload, signatures[{signature,
  publicKeyId}]}``: the signature is the whole clearsigned (or inline-signed) message, the
  serialized payload is the cleartext it carries (or, for an inline-signed message, the
  message itself). The signature is not trusted here; the judge
  verifies it and compares the signed text with the trusted image later.

Only JSON dicts are handled; nothing is verified or stored here.
"""

from __future__ import annotations

import base64
from typing import Any

from chainproof.errors import InvalidArgument

_CLEARSIGN_HEAD = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_HEAD = "-----BEGIN PGP SIGNATURE-----"


def clearsigned_text(message: str) -> str | None:
    """The cleartext of an armored clearsigned message (RFC 4880 §7), or None if not one.

    Dash-escaped lines are unescaped; the line ending before the signature block belongs to
    the armor, not to the text.
    """
    lines = message.replace("\r\n", "\n").split("\n")
    try:
        start = lines.index(_CLEARSIGN_HEAD)
    except ValueError:
        return None
    i = start + 1
    while i < len(lines) and lines[i].strip():  # armor headers such as "Hash: SHA512"
        i += 1
    body: list[str] = []
    for line in lines[i + 1 :]:
        if line == _SIGNATURE_HEAD:
            return "\n".join(body)
        body.append(line[2:] if line.startswith("- ") else line)
    return None


def upgrade_note_json(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    if "attestationAuthority" not in data and data.get("kind") != "ATTESTATION_AUTHORITY":
        return data
    out = dict(data)
    if "attestationAuthority" in out:
        if "attestation" in out:
            raise InvalidArgument("note has both attestationAuthority (v1alpha1) and attestation")
        out["attestation"] = out.pop("attestationAuthority")
    if out.get("kind") == "ATTESTATION_AUTHORITY":
        out["kind"] = "ATTESTATION"
    return out


def upgrade_occurrence_json(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    if "resourceUrl" in out:
        if "resourceUri" in out and out["resourceUri"] != out["resourceUrl"]:
            raise InvalidArgument("occurrence has both resourceUrl and resourceUri, differing")
        out["resourceUri"] = out.pop("resourceUrl")
    attestation = out.get("attestation")
    if isinstance(attestation, dict) and "pgpSignedAttestation" in attestation:
        out["attestation"] = _upgrade_pgp(attestation)
    if out.get("kind") == "ATTESTATION_AUTHORITY":
        out["kind"] = "ATTESTATION"
    return out


def _upgrade_pgp(attestation: dict[str, Any]) -> dict[str, Any]:
    pgp = attestation["pgpSignedAttestation"]
    if not isinstance(pgp, dict):
        raise InvalidArgument("attestation.pgpSignedAttestation must be a JSON object")
    signature = pgp.get("signature")
    key_id = pgp.get("pgpKeyId")
    if not isinstance(signature, str) or not signature.strip():
        raise InvalidArgument(
            "attestation.pgpSignedAttestation.signature is required: the armored signed message"
        )
    if not isinstance(key_id, str) or not key_id.strip():
        raise InvalidArgument(
            "attestation.pgpSignedAttestation.pgpKeyId is required: the signing key's fingerprint"
        )
    # An inline-signed message carries its payload inside the signature packets; the verifier
    # recovers it from there, so the signature itself stands in as the serialized payload.
    cleartext = clearsigned_text(signature)
    payload = cleartext if cleartext is not None else signature
    extra = set(attestation) - {"pgpSignedAttestation"}
    if extra:
        raise InvalidArgument(
            "attestation mixes pgpSignedAttestation with v1 fields " + ", ".join(sorted(extra))
        )
    return {
        "serializedPayload": base64.b64encode(payload.encode()).decode(),
        "signatures": [
            {
                "signature": base64.b64encode(signature.encode()).decode(),
                "publicKeyId": key_id.strip(),
            }
        ],
    }
