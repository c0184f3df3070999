"""cosign's registry layout: signature and attestation layers turned into verifiable values.

cosign stores, beside an image ``repo@sha256:<hex>``:

* a manifest tagged ``sha256-<hex>.sig`` whose layers are simple signing payloads
  (``application/vnd.dev.cosign.simplesigning.v1+json``), each carrying its base64 signature in
  the ``dev.cosignproject.cosign/signature`` annotation (and, for keyless signatures, the
  certificate in ``dev.sigstore.cosign/certificate``);
* a manifest tagged ``sha256-<hex>.att`` whose layers are DSSE envelopes
  (``application/vnd.dsse.envelope.v1+json``) around in-toto statements.

This module owns turning one such layer (its descriptor and its blob, already fetched and
digest-checked by :mod:`chainproof.sources.registry`) into a
:class:`~chainproof.attest.verify.SignedAttestation` or a
:class:`~chainproof.crypto.dsse.DsseEnvelope`. What the tag pointed at is never trusted: the
payload is checked against the digest of the admission request by
:func:`~chainproof.attest.verify.verify_attestation`, so a ``.sig`` tag moved onto another
image's signatures verifies as "for another digest".
"""

from __future__ import annotations

from chainproof.attest.oci import Descriptor
from chainproof.attest.simple_signing import SIMPLE_SIGNING_MEDIA_TYPE
from chainproof.attest.verify import SignedAttestation
from chainproof.crypto.dsse import DSSE_ENVELOPE_MEDIA_TYPE, DsseEnvelope, b64decode_lenient
from chainproof.errors import InvalidArgument

__all__ = [
    "COSIGN_BUNDLE_ANNOTATION",
    "COSIGN_CERTIFICATE_ANNOTATION",
    "COSIGN_SIGNATURE_ANNOTATION",
    "attestation_layer",
    "signature_layer",
]

COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


def signature_layer(layer: Descriptor, blob: bytes) -> SignedAttestation:
    """A ``.sig`` layer as a simple-signing attestation (payload + one signature)."""
    if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise InvalidArgument(
            f"cosign signature layer {layer.digest} has media type {layer.media_type!r}, "
            f"expected {SIMPLE_SIGNING_MEDIA_TYPE!r}"
        )
    encoded = layer.annotations.get(COSIGN_SIGNATURE_ANNOTATION)
    if not encoded:
        raise InvalidArgument(
            f"cosign signature layer {layer.digest} lacks the {COSIGN_SIGNATURE_ANNOTATION} "
            "annotation"
        )
    signature = b64decode_lenient(encoded, f"signature annotation of layer {layer.digest}")
    return SignedAttestation.of(blob, [(signature, "")], content_type=SIMPLE_SIGNING_MEDIA_TYPE)


def attestation_layer(layer: Descriptor, blob: bytes) -> DsseEnvelope:
    """An ``.att`` layer as a DSSE envelope (its payload type is checked when verified)."""
    if layer.media_type != DSSE_ENVELOPE_MEDIA_TYPE:
        raise InvalidArgument(
            f"cosign attestation layer {layer.digest} has media type {layer.media_type!r}, "
            f"expected {DSSE_ENVELOPE_MEDIA_TYPE!r}"
        )
    return DsseEnvelope.from_json(blob)
