"""OCI and Docker v2 manifests and indexes, parsed from bytes the caller already bounded.

This module owns the media types chainproof reads (:data:`MANIFEST_MEDIA_TYPES`,
:data:`INDEX_MEDIA_TYPES`), :class:`Descriptor`, :class:`Manifest`, :class:`ImageIndex`,
:func:`parse_manifest` (either kind, chosen by the ``mediaType`` the registry announced or the
document carries) and :func:`sha256_digest`. It also names cosign's fallback tags
(:func:`cosign_tag`): ``sha256-<hex>.sig``, ``.att`` and the OCI 1.1 referrers fallback tag
``sha256-<hex>``.

Nothing here talks to a registry: :mod:`chainproof.sources.registry` fetches, bounds sizes and
checks that the bytes hash to the digest asked for before handing them here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chainproof.errors import InvalidArgument

__all__ = [
    "DOCKER_MANIFEST_LIST",
    "DOCKER_MANIFEST_V2",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "OCI_EMPTY_JSON",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "ImageIndex",
    "Manifest",
    "Platform",
    "cosign_tag",
    "parse_digest",
    "parse_manifest",
    "platform_manifests",
    "sha256_digest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST_V2})
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
#: The Accept header for manifest requests: without it, registries answer 404 for OCI types.
MANIFEST_ACCEPT = ", ".join(sorted(MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES))

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_digest(value: Any, what: str) -> str:
    """A ``sha256:<64 lowercase hex>`` digest, or InvalidArgument naming ``what``."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidArgument(f"{what} {value!r} is not sha256:<64 lowercase hex digits>")
    return value


def cosign_tag(digest: str, suffix: str = "") -> str:
    """``sha256-<hex>`` plus ``.sig``/``.att`` (cosign) or nothing (OCI referrers fallback)."""
    parse_digest(digest, "digest")
    return digest.replace(":", "-", 1) + suffix


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        tail = f"/{self.variant}" if self.variant else ""
        return f"{self.os}/{self.architecture}{tail}"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a manifest or index points at."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    platform: Platform | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", MappingProxyType(dict(self.annotations)))


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker v2 schema 2)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """An image index or Docker manifest list: per-platform manifests (or referrers)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{what} must be a JSON object")
    media_type = raw.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidArgument(f"{what} needs a string mediaType")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"{what} needs a non-negative integer size")
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise InvalidArgument(f"{what} annotations must map strings to strings")
    artifact_type = raw.get("artifactType") or ""
    if not isinstance(artifact_type, str):
        raise InvalidArgument(f"{what} artifactType must be a string")
    platform = None
    raw_platform = raw.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, Mapping):
            raise InvalidArgument(f"{what} platform must be a JSON object")
        platform = Platform(
            os=str(raw_platform.get("os", "")),
            architecture=str(raw_platform.get("architecture", "")),
            variant=str(raw_platform.get("variant", "")),
        )
    return Descriptor(
        media_type=media_type,
        digest=parse_digest(raw.get("digest"), f"{what} digest"),
        size=size,
        annotations=annotations,
        artifact_type=artifact_type,
        platform=platform,
    )


def parse_manifest(data: bytes, announced: str | None = None) -> Manifest | ImageIndex:
    """Parse a manifest or an index; ``announced`` is the registry's Content-Type, if any.

    A document whose own ``mediaType`` contradicts the announced one is refused: the two must
    agree, or a client and a verifier could read the same bytes as different things.
    """
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"manifest is not JSON: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise InvalidArgument("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(
            f"manifest schemaVersion is {doc.get('schemaVersion')!r}: only 2 is supported"
        )
    own = doc.get("mediaType")
    announced = (announced or "").split(";")[0].strip() or None
    if own is not None and announced is not None and own != announced:
        raise InvalidArgument(
            f"manifest says it is {own!r} but the registry announced {announced!r}"
        )
    media_type = own or announced
    if media_type is None:
        # OCI allows omitting mediaType; the shape then decides.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise InvalidArgument("manifest annotations must be a JSON object")
    if media_type in INDEX_MEDIA_TYPES:
        raw = doc.get("manifests")
        if not isinstance(raw, list):
            raise InvalidArgument("image index needs a manifests list")
        return ImageIndex(
            media_type=media_type,
            manifests=tuple(_descriptor(m, f"index entry {i}") for i, m in enumerate(raw)),
            annotations=annotations,
        )
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise InvalidArgument(
            f"manifest media type {media_type!r} is not one chainproof reads: expected one of "
            + ", ".join(sorted(MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES))
        )
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("manifest needs a layers list")
    subject = doc.get("subject")
    artifact_type = doc.get("artifactType") or ""
    if not isinstance(artifact_type, str):
        raise InvalidArgument("manifest artifactType must be a string")
    return Manifest(
        media_type=media_type,
        config=_descriptor(doc.get("config"), "manifest config"),
        layers=tuple(_descriptor(layer, f"layer {i}") for i, layer in enumerate(layers)),
        subject=_descriptor(subject, "manifest subject") if subject is not None else None,
        artifact_type=artifact_type,
        annotations=annotations,
    )


#: How buildx marks the entries of an index that hold attestations, not a runnable image.
_REFERENCE_TYPE = "vnd.docker.reference.type"


def platform_manifests(index: ImageIndex | tuple[Descriptor, ...]) -> tuple[Descriptor, ...]:
    """The runnable per-platform manifests an index lists: every entry but buildx's
    attestation manifests, which are recognised only when they also carry no runnable
    platform (``unknown/unknown`` or none), so an annotation alone cannot hide an image."""
    entries = index.manifests if isinstance(index, ImageIndex) else index
    out: list[Descriptor] = []
    for entry in entries:
        annotated = entry.annotations.get(_REFERENCE_TYPE) == "attestation-manifest"
        unknown = entry.platform is None or (
            entry.platform.os in ("", "unknown") and entry.platform.architecture in ("", "unknown")
        )
        if annotated and unknown:
            continue
        out.append(entry)
    return tuple(out)
