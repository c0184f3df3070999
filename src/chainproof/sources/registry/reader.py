"""Reading cosign signatures, attestations and Sigstore bundles beside an image.

This module owns :class:`RegistryReader`, the HTTP implementation of
:class:`~chainproof.sources.registry.port.RegistryEvidenceSource`. For an image digest it
reads, concurrently and through :class:`~chainproof.sources.registry.cache.RegistryCache`:

* the image's own manifest, unless the caller says its platforms do not matter
  (``index=False``: the judge asks for it only for rules wanting evidence on every platform);
  read, it catches a registry serving other bytes for the digest and lists an index's
  children;
* the ``sha256-<hex>.sig`` and ``sha256-<hex>.att`` manifests and their layers (at most
  ``max_layers`` each; more is an error, never a silent prefix);
* the referrers whose artifact type is a Sigstore bundle, and their bundle layers.

Manifests and blobs are cached by digest forever; tags and referrer lists briefly; absences
in the negative cache. Verification is not done here.
"""

from __future__ import annotations

import asyncio

from chainproof.attest.cosign import attestation_layer, signature_layer
from chainproof.attest.oci import (
    Descriptor,
    ImageIndex,
    Manifest,
    cosign_tag,
    parse_manifest,
    platform_manifests,
)
from chainproof.attest.sigstore_bundle import BUNDLE_MEDIA_TYPES
from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument
from chainproof.sources.registry.cache import RegistryCache
from chainproof.sources.registry.client import Deadline, FetchedManifest, RegistryClient
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.port import (
    RegistryArtifacts,
    RegistryAttestation,
    RegistryBundle,
    RegistrySignature,
)

__all__ = ["RegistryReader"]

_BUNDLE_ARTIFACT_PREFIX = "application/vnd.dev.sigstore.bundle"


class RegistryReader:
    def __init__(self, client: RegistryClient, cache: RegistryCache | None = None) -> None:
        self.client = client
        self.cache = cache or RegistryCache()

    async def resolve(self, image: ImageReference, deadline: Deadline) -> str:
        if image.digest is not None:
            return image.digest
        tag = image.tag or "latest"
        await self.client.credentials.review_credentials(image.registry, deadline)

        async def fetch() -> str | None:
            return await self.client.resolve_tag(image.registry, image.repository, tag, deadline)

        try:
            digest = await self.cache.get_or_fetch(
                "tag", image.registry, (image.repository, tag), fetch, immutable=False
            )
        except RegistryError as exc:
            self._count_error(exc.registry)
            raise
        if digest is None:
            raise RegistryError(image.registry, f"{image.repository}:{tag} does not exist")
        return digest

    async def _manifest(
        self, image: ImageReference, reference: str, deadline: Deadline
    ) -> FetchedManifest | None:
        immutable = reference.startswith("sha256:")

        async def fetch() -> FetchedManifest | None:
            return await self.client.manifest(image.registry, image.repository, reference, deadline)

        return await self.cache.get_or_fetch(
            "manifest", image.registry, (image.repository, reference), fetch, immutable=immutable
        )

    async def _blob(self, image: ImageReference, digest: str, deadline: Deadline) -> bytes | None:
        async def fetch() -> bytes | None:
            return await self.client.blob(
                image.registry,
                image.repository,
                digest,
                self.client.config.max_blob_bytes,
                deadline,
            )

        return await self.cache.get_or_fetch(
            "blob", image.registry, (image.repository, digest), fetch, immutable=True
        )

    def _parse(self, image: ImageReference, fetched: FetchedManifest) -> Manifest | ImageIndex:
        try:
            return parse_manifest(fetched.data, fetched.media_type or None)
        except InvalidArgument as exc:
            raise RegistryError(
                image.registry, f"manifest {fetched.digest} of {image.repository}: {exc.message}"
            ) from exc

    async def _layers(
        self, image: ImageReference, suffix: str, deadline: Deadline
    ) -> tuple[str, Manifest] | None:
        assert image.digest is not None
        fetched = await self._manifest(image, cosign_tag(image.digest, suffix), deadline)
        if fetched is None:
            return None
        manifest = self._parse(image, fetched)
        if not isinstance(manifest, Manifest):
            raise RegistryError(
                image.registry, f"{cosign_tag(image.digest, suffix)} is an index, not a manifest"
            )
        if len(manifest.layers) > self.client.config.max_layers:
            raise RegistryError(
                image.registry,
                f"{cosign_tag(image.digest, suffix)} has {len(manifest.layers)} layers, more "
                f"than the {self.client.config.max_layers} chainproof reads",
            )
        return f"{image.name}@{fetched.digest}", manifest

    async def _signatures(
        self, image: ImageReference, deadline: Deadline, problems: list[tuple[str, str]]
    ) -> tuple[RegistrySignature, ...]:
        found = await self._layers(image, ".sig", deadline)
        if found is None:
            return ()
        source, manifest = found
        blobs = await asyncio.gather(
            *(self._blob(image, d.digest, deadline) for d in manifest.layers)
        )
        out: list[RegistrySignature] = []
        for layer, blob in zip(manifest.layers, blobs, strict=True):
            if blob is None:
                problems.append((source, f"layer {layer.digest} is missing from the registry"))
                continue
            try:
                out.append(RegistrySignature(source, layer.digest, signature_layer(layer, blob)))
            except InvalidArgument as exc:
                problems.append((source, exc.message))
        return tuple(out)

    async def _attestations(
        self, image: ImageReference, deadline: Deadline, problems: list[tuple[str, str]]
    ) -> tuple[RegistryAttestation, ...]:
        found = await self._layers(image, ".att", deadline)
        if found is None:
            return ()
        source, manifest = found
        blobs = await asyncio.gather(
            *(self._blob(image, d.digest, deadline) for d in manifest.layers)
        )
        out: list[RegistryAttestation] = []
        for layer, blob in zip(manifest.layers, blobs, strict=True):
            if blob is None:
                problems.append((source, f"layer {layer.digest} is missing from the registry"))
                continue
            try:
                out.append(
                    RegistryAttestation(source, layer.digest, attestation_layer(layer, blob))
                )
            except InvalidArgument as exc:
                problems.append((source, exc.message))
        return tuple(out)

    async def _bundles(
        self, image: ImageReference, deadline: Deadline, problems: list[tuple[str, str]]
    ) -> tuple[RegistryBundle, ...]:
        assert image.digest is not None
        digest = image.digest

        async def fetch() -> tuple[Descriptor, ...] | None:
            found = await self.client.referrers(image.registry, image.repository, digest, deadline)
            return found.descriptors or None

        descriptors = await self.cache.get_or_fetch(
            "referrers", image.registry, (image.repository, digest), fetch, immutable=False
        )
        out: list[RegistryBundle] = []
        for descriptor in descriptors or ():
            if not descriptor.artifact_type.startswith(_BUNDLE_ARTIFACT_PREFIX):
                continue
            fetched = await self._manifest(image, descriptor.digest, deadline)
            source = f"{image.name}@{descriptor.digest}"
            if fetched is None:
                problems.append((source, "a referrer listed for the image is missing"))
                continue
            manifest = self._parse(image, fetched)
            if not isinstance(manifest, Manifest):
                problems.append((source, "a bundle referrer is an index, not a manifest"))
                continue
            if manifest.subject is None or manifest.subject.digest != digest:
                # The referrers list is the registry's claim; the manifest's subject is what
                # was pushed. They must agree, or the bundle is about something else.
                problems.append((source, f"the referrer's subject is not {digest}"))
                continue
            for layer in manifest.layers[: self.client.config.max_layers]:
                if layer.media_type not in BUNDLE_MEDIA_TYPES:
                    continue
                blob = await self._blob(image, layer.digest, deadline)
                if blob is None:
                    problems.append((source, f"layer {layer.digest} is missing"))
                    continue
                out.append(RegistryBundle(source, layer.digest, blob))
        return tuple(out)

    def _count_error(self, registry: str) -> None:
        if self.client.metrics is not None:
            self.client.metrics.errors.labels(registry).inc()

    async def artifacts(
        self, image: ImageReference, deadline: Deadline, *, index: bool = True
    ) -> RegistryArtifacts:
        try:
            await self.client.credentials.review_credentials(image.registry, deadline)
            return await self._artifacts(image, deadline, index)
        except RegistryError as exc:
            self._count_error(exc.registry)
            raise

    async def platforms(self, image: ImageReference, deadline: Deadline) -> tuple[Descriptor, ...]:
        try:
            await self.client.credentials.review_credentials(image.registry, deadline)
            parsed = await self._own(image, deadline)
        except RegistryError as exc:
            self._count_error(exc.registry)
            raise
        return platform_manifests(parsed) if isinstance(parsed, ImageIndex) else ()

    async def _own(self, image: ImageReference, deadline: Deadline) -> Manifest | ImageIndex:
        if image.digest is None:
            raise InvalidArgument(f"image {image} has no digest: resolve its tag first")
        own = await self._manifest(image, image.digest, deadline)
        if own is None:
            raise RegistryError(image.registry, f"{image.name}@{image.digest} does not exist")
        return self._parse(image, own)

    async def _artifacts(
        self, image: ImageReference, deadline: Deadline, index: bool
    ) -> RegistryArtifacts:
        if image.digest is None:
            raise InvalidArgument(f"image {image} has no digest: resolve its tag first")
        problems: list[tuple[str, str]] = []
        # One round trip, not two: the image's own manifest (when it is wanted) is asked for
        # with its .sig, .att and referrers (all named by the digest from the request); a
        # missing or garbled manifest still fails the whole read.
        parsed, signatures, attestations, bundles = await asyncio.gather(
            self._own(image, deadline) if index else _nothing(),
            self._signatures(image, deadline, problems),
            self._attestations(image, deadline, problems),
            self._bundles(image, deadline, problems),
        )
        return RegistryArtifacts(
            image=image.canonical,
            media_type=parsed.media_type if parsed is not None else "",
            children=parsed.manifests if isinstance(parsed, ImageIndex) else (),
            signatures=signatures,
            attestations=attestations,
            bundles=bundles,
            problems=tuple(problems),
        )


async def _nothing() -> None:
    return None
