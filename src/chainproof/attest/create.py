"""Making an attestation: the payload for one image digest, signed as its format asks, as the
Grafeas occurrence JSON that carries it.

The three payload formats (:class:`PayloadFormat`) and how each is signed:

* ``simple-signing``: Binary Authorization's JSON; a PKIX signature over the bytes, or with
  OpenPGP an *inline-signed* message (``gpg --sign``), which is what Binary Authorization
  verifies for this format;
* ``image-url``: seed 000's one line ``registry/repo@sha256:…``; a PKIX signature, or with
  OpenPGP a *clearsigned* message, as the walkthrough makes it (the text stays readable);
* ``in-toto``: a v1 Statement about the image in a DSSE envelope (a DSSE_ATTESTATION
  occurrence); with OpenPGP the DSSE signature is a binary detached signature over the PAE.

Keys stay with the caller: this module only calls a signer port, either
:class:`chainproof.crypto.signing.Signer` (``key_id`` and ``sign(bytes)``: PKIX key files, KMS
plug-ins) or :class:`OpenPgpSigner` (GnuPG's three signature shapes). Pure otherwise: no I/O of
its own, no clock. Used by ``chainproof attestation create``, the "not-vulnerable" voucher and
the tests.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from chainproof.attest.image_url import build_image_url_payload
from chainproof.attest.intoto import INTOTO_PAYLOAD_TYPE, build_statement
from chainproof.attest.simple_signing import build_simple_signing
from chainproof.crypto.signing import Signer, sign_envelope
from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument

__all__ = [
    "FORMATS",
    "OpenPgpSigner",
    "PayloadFormat",
    "attestation_occurrence",
    "binauthz_resource_uri",
]


class PayloadFormat(StrEnum):
    SIMPLE_SIGNING = "simple-signing"
    IMAGE_URL = "image-url"
    IN_TOTO = "in-toto"


FORMATS: tuple[str, ...] = tuple(f.value for f in PayloadFormat)


@runtime_checkable
class OpenPgpSigner(Protocol):
    """An OpenPGP key that signs in the shapes the formats need (implemented by
    :class:`chainproof.crypto.gpg_signer.GpgSigner`)."""

    def fingerprint(self) -> str: ...

    def sign_inline(self, data: bytes) -> bytes: ...

    def clearsign(self, data: bytes) -> bytes: ...

    def sign_detached(self, data: bytes, *, armor: bool) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _OpenPgpDsse:
    """An OpenPGP key as a DSSE signer: a binary detached signature over the PAE bytes."""

    pgp: OpenPgpSigner
    key_id: str

    def sign(self, data: bytes) -> bytes:
        return self.pgp.sign_detached(data, armor=False)


def binauthz_resource_uri(image: ImageReference) -> str:
    """The resource URI Binary Authorization writes for an image (the server matches either
    this or the bare reference)."""
    return f"https://{image.name}@{image.digest}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def attestation_occurrence(
    image: ImageReference,
    fmt: PayloadFormat,
    signer: Signer | OpenPgpSigner,
    *,
    predicate_type: str | None = None,
    predicate: Mapping[str, Any] | None = None,
    note_name: str | None = None,
    resource_uri: str | None = None,
) -> dict[str, Any]:
    """The occurrence JSON of a new, signed attestation of ``image`` (which must carry a
    digest). ``in-toto`` needs ``predicate_type`` and ``predicate``; the other formats sign the
    digest alone and take neither. ``resource_uri`` defaults to :func:`binauthz_resource_uri`."""
    if image.digest is None:
        raise InvalidArgument(f"image {image} has no digest: an attestation names a digest")
    occurrence: dict[str, Any] = {"resourceUri": resource_uri or binauthz_resource_uri(image)}
    if note_name:
        occurrence["noteName"] = note_name
    pgp = signer if isinstance(signer, OpenPgpSigner) else None
    if fmt is PayloadFormat.IN_TOTO:
        if predicate_type is None or predicate is None:
            raise InvalidArgument("an in-toto attestation needs a predicate type and a predicate")
        statement = build_statement(image, predicate_type, predicate)
        dsse: Signer = _OpenPgpDsse(pgp, pgp.fingerprint()) if pgp else _pkix(signer)
        envelope = sign_envelope(statement, INTOTO_PAYLOAD_TYPE, [dsse])
        occurrence["dsseAttestation"] = {"envelope": envelope.to_json()}
        return occurrence
    if predicate_type is not None or predicate is not None:
        raise InvalidArgument(f"a {fmt.value} attestation signs the digest alone: no predicate")
    if fmt is PayloadFormat.SIMPLE_SIGNING:
        payload = build_simple_signing(image)
    else:
        payload = build_image_url_payload(image)
    if pgp is not None:
        key_id = pgp.fingerprint()
        wrapped = fmt is PayloadFormat.SIMPLE_SIGNING
        signature = pgp.sign_inline(payload) if wrapped else pgp.clearsign(payload)
    else:
        pkix = _pkix(signer)
        signature, key_id = pkix.sign(payload), pkix.key_id
    occurrence["attestation"] = {
        "serializedPayload": _b64(payload),
        "signatures": [{"signature": _b64(signature), "publicKeyId": key_id}],
    }
    return occurrence


def _pkix(signer: Signer | OpenPgpSigner) -> Signer:
    assert not isinstance(signer, OpenPgpSigner)
    return signer
