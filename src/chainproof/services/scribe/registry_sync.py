"""Copying verified registry evidence into the scribe, so that the central store is central.

This module owns :func:`registry_occurrences`: for one image digest and one attestor, the
Grafeas occurrences (JSON, ready to POST) of every cosign signature, cosign attestation and
key-signed Sigstore bundle beside the image that verifies under the attestor's keys for that
digest. Nothing unverified is copied; keyless bundles are reported and left in the registry
(a Grafeas envelope has no place for their certificate and log proof). Occurrences whose
signed content the scribe already holds are left out (:func:`new_occurrences`), so syncing
twice writes nothing new — and the judge counts a fact found in both places once anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.attest.grafeas import occurrence_json
from chainproof.attest.sigstore_bundle import bundle_envelope
from chainproof.attest.verify import verify_attestation
from chainproof.crypto.keys import PublicKey
from chainproof.domain.images import ImageReference
from chainproof.errors import ChainproofError
from chainproof.policy.attestors import Attestor
from chainproof.sources.registry.port import RegistryArtifacts

__all__ = ["SyncPlan", "new_occurrences", "registry_occurrences", "signed_content"]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    occurrences: tuple[dict[str, Any], ...]
    skipped: tuple[tuple[str, str], ...]  # (source, why it is not copied)


def registry_occurrences(
    image: ImageReference,
    artifacts: RegistryArtifacts,
    attestor: Attestor,
    keys: Sequence[PublicKey],
    now: datetime,
) -> SyncPlan:
    out: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = list(artifacts.problems)
    resource = image.canonical
    note = attestor.note_reference
    for sig in artifacts.signatures:
        result = verify_attestation(image, sig.attestation, keys, now=now)
        if not result.verified:
            skipped.append((sig.source, "; ".join(result.reasons)))
            continue
        out.append(occurrence_json(resource, note, sig.attestation, result.key_ids[0]))
    envelopes = [(a.source, a.envelope) for a in artifacts.attestations]
    for bundle in artifacts.bundles:
        try:
            envelopes.append((bundle.source, bundle_envelope(bundle.data)))
        except ChainproofError as exc:
            skipped.append((bundle.source, exc.message))
    for source, envelope in envelopes:
        result = verify_attestation(image, envelope, keys, now=now)
        if not result.verified:
            skipped.append((source, "; ".join(result.reasons)))
            continue
        out.append(occurrence_json(resource, note, envelope, result.key_ids[0]))
    return SyncPlan(tuple(out), tuple(skipped))


def signed_content(occurrence: Mapping[str, Any]) -> str:
    """The signed content an occurrence (REST JSON) carries, base64: what makes two copies of
    one attestation the same fact."""
    if "attestation" in occurrence:
        return str(occurrence["attestation"].get("serializedPayload", ""))
    envelope = (occurrence.get("dsseAttestation") or {}).get("envelope") or {}
    return str(envelope.get("payload", ""))


def new_occurrences(
    planned: Sequence[dict[str, Any]], existing: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The planned occurrences whose signed content no existing occurrence carries."""
    held = {signed_content(o) for o in existing}
    out: list[dict[str, Any]] = []
    for occurrence in planned:
        content = signed_content(occurrence)
        if content and content not in held:
            held.add(content)
            out.append(occurrence)
    return out
