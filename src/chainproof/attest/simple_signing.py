"""Simple signing payloads: the JSON that Binary Authorization, atomic and cosign sign.

This module owns :class:`SimpleSigningPayload`, building one for a trusted image
(:func:`build_simple_signing`), parsing one (:func:`parse_simple_signing`) and saying where it
disagrees with the image the caller trusts (:meth:`SimpleSigningPayload.mismatches`)::

    {"critical": {"identity": {"docker-reference": "gcr.io/proj/app"},
                  "image": {"docker-manifest-digest": "sha256:…"},
                  "type": "Google cloud binauthz container signature"},
     "optional": {…}}

The digest checked against comes from the caller, never from the payload. Signature checks
belong to :mod:`chainproof.crypto`; this module only reads JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.jsontext import parse_signed_json
from chainproof.errors import InvalidArgument

__all__ = [
    "ATOMIC_SIGNATURE_TYPE",
    "BINAUTHZ_SIGNATURE_TYPE",
    "COSIGN_SIGNATURE_TYPE",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "SIMPLE_SIGNING_TYPES",
    "SimpleSigningPayload",
    "build_simple_signing",
    "parse_simple_signing",
]

ATOMIC_SIGNATURE_TYPE = "atomic container signature"
BINAUTHZ_SIGNATURE_TYPE = "Google cloud binauthz container signature"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
SIMPLE_SIGNING_TYPES = frozenset(
    {ATOMIC_SIGNATURE_TYPE, BINAUTHZ_SIGNATURE_TYPE, COSIGN_SIGNATURE_TYPE}
)
#: The DSSE payloadType / OCI media type cosign uses for this payload.
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class SimpleSigningPayload:
    """A parsed simple signing payload; ``optional`` is kept as the signer wrote it."""

    docker_reference: str
    manifest_digest: str
    signature_type: str
    optional: Mapping[str, Any] | None = field(default=None, compare=False)

    format_name = "simple-signing"

    def mismatches(self, image: ImageReference) -> tuple[str, ...]:
        """Every way this payload fails to name ``image`` (repository and digest)."""
        reasons: list[str] = []
        if self.manifest_digest != image.digest:
            reasons.append(f"payload names {self.manifest_digest} but the image is {image.digest}")
        try:
            named = parse_image_reference(self.docker_reference)
        except InvalidArgument as exc:
            reasons.append(f"payload docker-reference is not an image reference: {exc.message}")
            return tuple(reasons)
        if named.name != image.name:
            reasons.append(
                f"payload names repository {named.name} but the image is in {image.name}"
            )
        if named.digest is not None and named.digest != image.digest:
            reasons.append(
                f"payload docker-reference names {named.digest} but the image is {image.digest}"
            )
        return tuple(reasons)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "critical": {
                "identity": {"docker-reference": self.docker_reference},
                "image": {"docker-manifest-digest": self.manifest_digest},
                "type": self.signature_type,
            }
        }
        if self.optional is not None:
            doc["optional"] = dict(self.optional)
        return doc


def build_simple_signing(
    image: ImageReference,
    *,
    signature_type: str = BINAUTHZ_SIGNATURE_TYPE,
    optional: Mapping[str, Any] | None = None,
) -> bytes:
    """The payload (compact JSON, UTF-8) attesting ``image``, which must carry a digest."""
    if image.digest is None:
        raise InvalidArgument(
            f"image {image} has no digest: sign registry/repository@sha256:<hex>, never a tag"
        )
    if signature_type not in SIMPLE_SIGNING_TYPES:
        raise InvalidArgument(
            f"unknown simple signing type {signature_type!r}: expected one of "
            + ", ".join(sorted(SIMPLE_SIGNING_TYPES))
        )
    payload = SimpleSigningPayload(image.name, image.digest, signature_type, optional)
    return json.dumps(payload.to_json(), separators=(",", ":"), sort_keys=True).encode()


def _member(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise InvalidArgument(f"simple signing payload lacks {path}")
    return obj[key]


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"simple signing payload: {path} must be a JSON object")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"simple signing payload: {path} must be a non-empty string")
    return value


def parse_simple_signing(data: bytes) -> SimpleSigningPayload:
    """Parse and check the structure; raise InvalidArgument naming the first problem."""
    doc = parse_signed_json(data, "simple signing payload")
    root = _object(doc, "the payload")
    critical = _object(_member(root, "critical", "critical"), "critical")
    identity = _object(_member(critical, "identity", "critical.identity"), "critical.identity")
    image = _object(_member(critical, "image", "critical.image"), "critical.image")
    reference = _string(
        _member(identity, "docker-reference", "critical.identity.docker-reference"),
        "critical.identity.docker-reference",
    )
    digest = _string(
        _member(image, "docker-manifest-digest", "critical.image.docker-manifest-digest"),
        "critical.image.docker-manifest-digest",
    )
    if not _DIGEST.fullmatch(digest):
        raise InvalidArgument(
            f"simple signing payload: critical.image.docker-manifest-digest {digest!r} is not "
            "sha256:<64 lowercase hex digits>"
        )
    kind = _string(_member(critical, "type", "critical.type"), "critical.type")
    if kind not in SIMPLE_SIGNING_TYPES:
        raise InvalidArgument(
            f"simple signing payload: critical.type {kind!r} is not one of "
            + ", ".join(repr(t) for t in sorted(SIMPLE_SIGNING_TYPES))
        )
    optional = root.get("optional")
    if optional is not None:
        optional = _object(optional, "optional")
    return SimpleSigningPayload(reference, digest, kind, optional)
