"""The port through which the judge reads registry evidence, and what it gets back.

:class:`RegistryEvidenceSource` is what services depend on; :class:`RegistryReader` in
:mod:`chainproof.sources.registry.reader` implements it over HTTP, and unit tests may
implement it in memory. Everything returned is *unverified* evidence with its source: the
judge verifies it exactly as it verifies evidence from the scribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chainproof.attest.oci import Descriptor
from chainproof.attest.verify import SignedAttestation
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.domain.images import ImageReference
from chainproof.sources.registry.client import Deadline

__all__ = [
    "RegistryArtifacts",
    "RegistryAttestation",
    "RegistryBundle",
    "RegistryEvidenceSource",
    "RegistrySignature",
]


@dataclass(frozen=True, slots=True)
class RegistrySignature:
    """A cosign ``.sig`` layer; ``source`` is ``registry/repo@<signature manifest digest>``."""

    source: str
    layer: str
    attestation: SignedAttestation


@dataclass(frozen=True, slots=True)
class RegistryAttestation:
    """A cosign ``.att`` layer (a DSSE envelope)."""

    source: str
    layer: str
    envelope: DsseEnvelope


@dataclass(frozen=True, slots=True)
class RegistryBundle:
    """A Sigstore bundle found as a referrer (or in the fallback tag index)."""

    source: str
    layer: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RegistryArtifacts:
    """What the registry holds about one image digest (the digest from the request).

    ``children`` are the per-platform manifests when the image is an index (``media_type`` and
    ``children`` are empty when the image's own manifest was not asked for); ``problems`` are
    pieces of evidence that could not be read (an unreadable layer), reported, not dropped.
    """

    image: str
    media_type: str
    children: tuple[Descriptor, ...] = ()
    signatures: tuple[RegistrySignature, ...] = ()
    attestations: tuple[RegistryAttestation, ...] = ()
    bundles: tuple[RegistryBundle, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()  # (source, what was wrong)


class RegistryEvidenceSource(Protocol):
    async def resolve(self, image: ImageReference, deadline: Deadline) -> str:
        """The digest ``image``'s tag points at now; RegistryError when it cannot say."""
        ...

    async def artifacts(
        self, image: ImageReference, deadline: Deadline, *, index: bool = True
    ) -> RegistryArtifacts:
        """Signatures, attestations and bundles stored beside ``image`` (which has a digest).
        ``index``: also read the image's own manifest (``media_type``, ``children``); without
        it those are empty and the image's existence is not checked (the evidence names the
        digest from the request either way)."""
        ...

    async def platforms(self, image: ImageReference, deadline: Deadline) -> tuple[Descriptor, ...]:
        """The per-platform manifests when ``image`` (by digest) is an index, else ``()``."""
        ...
