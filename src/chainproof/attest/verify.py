"""Verifying one attestation against the image the caller trusts.

This module owns :func:`verify_attestation`, the inputs it accepts (:class:`SignedAttestation`,
the ``serializedPayload`` + ``signatures`` of a Grafeas ATTESTATION occurrence, or a
:class:`~chainproof.crypto.dsse.DsseEnvelope`), the table of payload formats it understands
(:data:`PAYLOAD_FORMATS`) and the result, :class:`AttestationVerification`.

The order is fixed and matters:

1. the image (repository and digest) comes from the caller, from the admission request; it is
   never read from the attestation;
2. the signatures are verified against the attestor's trusted keys (key ids are hints only);
   nothing in an unverified payload is looked at;
3. only the content a trusted key signed is parsed: simple signing JSON, the seed 000 image
   URL, or an in-toto Statement (for DSSE, chosen by ``payloadType``, which is itself signed);
4. the payload must name the expected repository and digest.

Every reason for a refusal is collected and returned;
:meth:`AttestationVerification.raise_for_failure` is the thin wrapper that raises. Storage
types stay out: :mod:`chainproof.attest.grafeas` turns a grafeas.v1 Occurrence into these
plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from chainproof.attest.image_url import (
    IMAGE_URL_CONTENT_TYPE,
    ImageUrlPayload,
    parse_image_url_payload,
)
from chainproof.attest.intoto import INTOTO_PAYLOAD_TYPE, Statement, parse_statement
from chainproof.attest.simple_signing import (
    SIMPLE_SIGNING_MEDIA_TYPE,
    SimpleSigningPayload,
    parse_simple_signing,
)
from chainproof.crypto.dsse import DsseEnvelope, verify_envelope
from chainproof.crypto.keys import PublicKey
from chainproof.crypto.verify import (
    SignatureInput,
    SignaturesVerification,
    VerificationBudget,
    verify_signatures,
)
from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument, PermissionDenied

__all__ = [
    "PAYLOAD_FORMATS",
    "AttestationPayload",
    "AttestationVerification",
    "PayloadFormat",
    "SignedAttestation",
    "verify_attestation",
]

AttestationPayload = SimpleSigningPayload | ImageUrlPayload | Statement


class _ImageClaim(Protocol):
    format_name: str

    def mismatches(self, image: ImageReference) -> tuple[str, ...]: ...


def _json_with(key: str) -> Callable[[bytes], bool]:
    def sniff(data: bytes) -> bool:
        if not data.lstrip().startswith(b"{"):
            return False
        try:
            # Only a sniff: the strict parser of the format that claims it refuses what is
            # wrong (duplicate keys, say) and words the error.
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        return isinstance(doc, dict) and key in doc

    return sniff


def _looks_like_text(data: bytes) -> bool:
    return not data.lstrip().startswith((b"{", b"["))


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """A payload format: its name, the media types that announce it, how to spot and parse it."""

    name: str
    media_types: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    parse: Callable[[bytes], AttestationPayload]


#: The formats chainproof understands, in the order content is sniffed when nothing names it.
PAYLOAD_FORMATS: tuple[PayloadFormat, ...] = (
    PayloadFormat(
        "simple-signing", (SIMPLE_SIGNING_MEDIA_TYPE,), _json_with("critical"), parse_simple_signing
    ),
    PayloadFormat("in-toto", (INTOTO_PAYLOAD_TYPE,), _json_with("_type"), parse_statement),
    PayloadFormat(
        "image-url", (IMAGE_URL_CONTENT_TYPE,), _looks_like_text, parse_image_url_payload
    ),
)
_BY_MEDIA_TYPE = {m: f for f in PAYLOAD_FORMATS for m in f.media_types}
_KNOWN_MEDIA_TYPES = ", ".join(sorted(_BY_MEDIA_TYPE))


@dataclass(frozen=True, slots=True)
class SignedAttestation:
    """A Grafeas ATTESTATION occurrence's content: payload bytes and (signature, key id) pairs.

    ``serialized_payload`` may be empty when every signature carries its content (an OpenPGP
    clearsigned or inline-signed message). ``content_type`` names the payload format when known
    (``application/vnd.gcr.image.url.v1`` for seed 000); otherwise the format is recognised from
    the signed content.
    """

    serialized_payload: bytes
    signatures: tuple[SignatureInput, ...]
    content_type: str | None = None

    @classmethod
    def of(
        cls,
        serialized_payload: bytes,
        signatures: Iterable[tuple[bytes, str]],
        content_type: str | None = None,
    ) -> SignedAttestation:
        return cls(
            serialized_payload,
            tuple(SignatureInput(sig, key_id) for sig, key_id in signatures),
            content_type,
        )


@dataclass(frozen=True)
class AttestationVerification:
    """The outcome for one attestation about one image.

    ``key_ids`` name the trusted keys that verified. ``payload`` is the parsed content those
    keys signed (present as soon as the signature verified and the content parsed, even if it
    then named another image). ``reasons`` holds every reason for a refusal, empty on success.
    """

    image: str
    verified: bool
    key_ids: tuple[str, ...] = ()
    payload_format: str | None = None
    payload: AttestationPayload | None = None
    reasons: tuple[str, ...] = ()

    @property
    def statement(self) -> Statement | None:
        return self.payload if isinstance(self.payload, Statement) else None

    def raise_for_failure(self) -> None:
        """Raise PermissionDenied listing every reason, unless the attestation verified."""
        if not self.verified:
            raise PermissionDenied(
                f"the attestation does not vouch for {self.image}", details=self.reasons
            )


def _failed(
    image: ImageReference, reasons: Sequence[str], key_ids: tuple[str, ...] = ()
) -> AttestationVerification:
    return AttestationVerification(
        image=image.canonical, verified=False, key_ids=key_ids, reasons=tuple(reasons)
    )


def verify_attestation(
    image: ImageReference,
    attestation: SignedAttestation | DsseEnvelope,
    keys: Sequence[PublicKey],
    *,
    now: datetime,
    threshold: int = 1,
    expected_payload_type: str | None = None,
    budget: VerificationBudget | None = None,
) -> AttestationVerification:
    """Verify ``attestation`` for ``image`` with the attestor's ``keys``; see the module docstring.

    ``image`` must carry a digest (raise InvalidArgument otherwise): it is the trusted identity.
    ``threshold`` is how many distinct trusted keys must have signed (at least 1).
    ``expected_payload_type`` restricts the payload to one media type (for example
    ``application/vnd.in-toto+json`` when a policy asks for provenance). Each signature check
    is paid from ``budget`` when one is given (see :class:`~chainproof.crypto.verify.
    VerificationBudget`; it raises ``BudgetExhausted`` when spent).
    """
    if image.digest is None:
        raise InvalidArgument(
            f"image {image} has no digest: attestations are checked against "
            "registry/repository@sha256:<hex> taken from the request"
        )
    if isinstance(attestation, DsseEnvelope):
        return _verify_envelope(
            image, attestation, keys, now, threshold, expected_payload_type, budget
        )
    return _verify_signed(image, attestation, keys, now, threshold, expected_payload_type, budget)


def _verify_envelope(
    image: ImageReference,
    envelope: DsseEnvelope,
    keys: Sequence[PublicKey],
    now: datetime,
    threshold: int,
    expected_payload_type: str | None,
    budget: VerificationBudget | None,
) -> AttestationVerification:
    signatures = verify_envelope(envelope, keys, now=now, threshold=threshold, budget=budget)
    if not signatures.verified:
        return _failed(image, signatures.reasons)
    # The payloadType is covered by the signature (PAE), so it can be trusted from here on.
    if expected_payload_type is not None and envelope.payload_type != expected_payload_type:
        return _failed(
            image,
            [
                f"DSSE payloadType is {envelope.payload_type!r}, but {expected_payload_type!r} "
                "is required"
            ],
            key_ids=signatures.key_ids,
        )
    fmt = _BY_MEDIA_TYPE.get(envelope.payload_type)
    if fmt is None:
        return _failed(
            image,
            [
                f"DSSE payloadType {envelope.payload_type!r} is not one chainproof understands: "
                f"expected one of {_KNOWN_MEDIA_TYPES}"
            ],
            key_ids=signatures.key_ids,
        )
    return _judge(image, signatures, [(fmt, envelope.payload)])


def _verify_signed(
    image: ImageReference,
    attestation: SignedAttestation,
    keys: Sequence[PublicKey],
    now: datetime,
    threshold: int,
    expected_payload_type: str | None,
    budget: VerificationBudget | None,
) -> AttestationVerification:
    data = attestation.serialized_payload or None
    signatures = verify_signatures(
        data, attestation.signatures, keys, now=now, threshold=threshold, budget=budget
    )
    if not signatures.verified:
        return _failed(image, signatures.reasons)
    contents = list(
        dict.fromkeys(c.signed_content for c in signatures.checks if c.signed_content is not None)
    )
    if not contents:
        return _failed(
            image, ["the signatures verified but cover no content"], key_ids=signatures.key_ids
        )
    content_type = attestation.content_type or expected_payload_type
    if (
        attestation.content_type
        and expected_payload_type
        and (attestation.content_type != expected_payload_type)
    ):
        return _failed(
            image,
            [
                f"attestation content type is {attestation.content_type!r}, but "
                f"{expected_payload_type!r} is required"
            ],
            key_ids=signatures.key_ids,
        )
    chosen: list[tuple[PayloadFormat, bytes]] = []
    for content in contents:
        if content_type:
            fmt = _BY_MEDIA_TYPE.get(content_type)
            if fmt is None:
                return _failed(
                    image,
                    [
                        f"content type {content_type!r} is not one chainproof understands: "
                        f"expected one of {_KNOWN_MEDIA_TYPES}"
                    ],
                    key_ids=signatures.key_ids,
                )
        else:
            fmt = next((f for f in PAYLOAD_FORMATS if f.sniff(content)), None)
            if fmt is None:
                return _failed(
                    image,
                    [
                        "the signed content is neither simple signing JSON, an in-toto statement "
                        "nor an image URL"
                    ],
                    key_ids=signatures.key_ids,
                )
        chosen.append((fmt, content))
    return _judge(image, signatures, chosen)


def _judge(
    image: ImageReference,
    signatures: SignaturesVerification,
    contents: Sequence[tuple[PayloadFormat, bytes]],
) -> AttestationVerification:
    reasons: list[str] = []
    first: AttestationPayload | None = None
    first_format: str | None = None
    for fmt, content in contents:
        try:
            payload = fmt.parse(content)
        except InvalidArgument as exc:
            reasons.append(f"the signed payload is not valid {fmt.name}: {exc.message}")
            continue
        if first is None:
            first, first_format = payload, fmt.name
        claim: _ImageClaim = payload
        reasons.extend(claim.mismatches(image))
    return AttestationVerification(
        image=image.canonical,
        verified=not reasons,
        key_ids=signatures.key_ids,
        payload_format=first_format,
        payload=first,
        reasons=tuple(dict.fromkeys(reasons)),
    )
