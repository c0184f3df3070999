"""Evidence from OCI registries, verified exactly like evidence from the scribe.

This module owns :class:`RegistryEvidence`: for an image digest *from the request* and the
attestors whose ``evidenceSource`` includes the registry, it reads the cosign signatures,
cosign attestations and Sigstore bundles stored beside the image (through the
:class:`~chainproof.sources.registry.port.RegistryEvidenceSource` port), and verifies each one:

* a ``.sig`` simple-signing layer or an ``.att`` DSSE layer with the attestor's keys through
  :func:`~chainproof.attest.verify.verify_attestation` (signature first, then the payload
  against the requested repository and digest);
* a Sigstore bundle with a keyless identity through
  :func:`~chainproof.attest.sigstore_bundle.verify_keyless_bundle` (sigstore-python, offline,
  against the configured trusted root), or its DSSE envelope with the attestor's keys.

Each result names its source — the registry manifest (``registry/repo@sha256:…`` of the
``.sig``/``.att``/referrer manifest) — and carries a *fact* fingerprint (the attestor and the
digest of the signed content) so that the gatherer counts the same attestation once when the
scribe holds it too. For an image index whose rule wants evidence on every platform, the
per-platform manifests are read too (the evaluator judges that requirement; see
:mod:`chainproof.policy.checks.image_index`). Registry failures propagate as
:class:`~chainproof.sources.registry.errors.RegistryError`: the review is denied naming the
registry.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sigstore.models import TrustedRoot

from chainproof.attest.grafeas import occurrence_json
from chainproof.attest.intoto import Statement
from chainproof.attest.oci import Descriptor, platform_manifests
from chainproof.attest.sigstore_bundle import bundle_envelope, verify_keyless_bundle
from chainproof.attest.verify import AttestationVerification, SignedAttestation, verify_attestation
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.crypto.keys import PublicKey
from chainproof.crypto.verify import VerificationBudget
from chainproof.domain.images import ImageReference
from chainproof.errors import ChainproofError
from chainproof.policy.attestors import KEYLESS_KEY_PREFIX, Attestor
from chainproof.policy.evidence import (
    AttestationKind,
    FailedAttestation,
    FailureReason,
    VerifiedAttestation,
)
from chainproof.services.scribe.registry_recording import RegistryFact
from chainproof.sources.registry.client import Deadline
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.port import RegistryArtifacts, RegistryEvidenceSource

__all__ = ["RegistryEvidence", "RegistryFindings", "RegistryRead", "content_fact"]


def content_fact(attestor: str, signed: bytes) -> str:
    """The identity of one attested fact: who vouched, for exactly which signed bytes."""
    return attestor + "|sha256:" + hashlib.sha256(signed).hexdigest()


#: Per-platform manifests of one index read for evidence, at most; more is an error.
MAX_PLATFORMS = 64


@dataclass(frozen=True, slots=True)
class RegistryRead:
    """What was read for one image: its artifacts (None when only its platform list was
    needed), the per-platform manifests when it is an index and a rule asked (None: not
    asked), and those manifests' own artifacts when their evidence lives in the registry."""

    artifacts: RegistryArtifacts | None
    platforms: tuple[Descriptor, ...] | None = None
    children: tuple[tuple[ImageReference, RegistryArtifacts], ...] = ()

    @property
    def empty(self) -> bool:
        items = [*([self.artifacts] if self.artifacts else []), *(a for _, a in self.children)]
        return not any(a.signatures or a.attestations or a.bundles or a.problems for a in items)


@dataclass(frozen=True, slots=True)
class RegistryFindings:
    verified: tuple[tuple[str, VerifiedAttestation], ...]  # (fact, attestation)
    failed: tuple[FailedAttestation, ...]
    #: fact → what the scribe would file for it (key-verified items; keyless bundles have no
    #: Grafeas form and are absent).
    records: Mapping[str, RegistryFact] = field(default_factory=dict)


_Outcome = tuple[str, VerifiedAttestation, RegistryFact | None] | FailedAttestation | None


def _kind(result: AttestationVerification) -> AttestationKind:
    return AttestationKind.IN_TOTO if result.statement else AttestationKind.SIMPLE_SIGNING


def _statement_dict(result: AttestationVerification) -> dict[str, object] | None:
    return _statement_json(result.statement)


def _statement_json(st: Statement | None) -> dict[str, object] | None:
    if st is None:
        return None
    return {
        "_type": st.statement_type,
        "subject": [{"name": s.name, "digest": dict(s.digest)} for s in st.subjects],
        "predicateType": st.predicate_type,
        "predicate": dict(st.predicate) if st.predicate is not None else None,
    }


class RegistryEvidence:
    def __init__(
        self,
        source: RegistryEvidenceSource,
        *,
        trusted_root: TrustedRoot | None = None,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.source = source
        self.trusted_root = trusted_root
        self.timeout_seconds = timeout_seconds

    async def read(
        self,
        image: ImageReference,
        attestors: Mapping[str, Attestor],
        deadline: Deadline | None = None,
        *,
        every_platform: Mapping[str, Attestor] | None = None,
    ) -> RegistryRead | None:
        """The registry's artifacts for ``image`` for the registry-sourced ``attestors``, and,
        when ``every_platform`` names attestors, the index's platform manifests (with their
        artifacts for those whose evidence lives in the registry). None when nothing is
        wanted from the registry. I/O only; RegistryError propagates."""
        wanted = {n: a for n, a in attestors.items() if a.evidence_source.reads_registry}
        every_platform = every_platform or {}
        if (not wanted and not every_platform) or image.digest is None:
            return None
        deadline = deadline or Deadline(self.timeout_seconds)
        # The image's own manifest is read only when its platforms matter (a rule wanting
        # evidence on every platform): the evidence names the digest from the request anyway.
        artifacts = (
            await self.source.artifacts(image, deadline, index=bool(every_platform))
            if wanted
            else None
        )
        if not every_platform:
            return RegistryRead(artifacts)
        if artifacts is not None:
            platforms = platform_manifests(artifacts.children)
        else:
            platforms = await self.source.platforms(image, deadline)
        if len(platforms) > MAX_PLATFORMS:
            raise RegistryError(
                image.registry,
                f"the index {image.name}@{image.digest} lists {len(platforms)} platform "
                f"manifests, more than the {MAX_PLATFORMS} chainproof reads evidence for",
            )
        children: tuple[tuple[ImageReference, RegistryArtifacts], ...] = ()
        if platforms and any(a.evidence_source.reads_registry for a in every_platform.values()):
            refs = [replace(image, digest=p.digest, tag=None) for p in platforms]
            found = await asyncio.gather(*(self.source.artifacts(c, deadline) for c in refs))
            children = tuple(zip(refs, found, strict=True))
        return RegistryRead(artifacts, platforms, children)

    def verify(
        self,
        image: ImageReference,
        artifacts: RegistryArtifacts,
        attestors: Mapping[str, Attestor],
        keys: Mapping[str, Sequence[PublicKey]],
        now: datetime,
        budget: VerificationBudget | None = None,
    ) -> RegistryFindings:
        """Verified and failed registry evidence of ``image`` (pure CPU: no I/O, any thread),
        for the registry-sourced ``attestors``; ``image`` may be a platform manifest of an
        index, verified against its own digest.

        Every signature check, and every keyless bundle, is paid from ``budget``;
        :class:`~chainproof.crypto.verify.BudgetExhausted` propagates to the caller."""
        wanted = {n: a for n, a in attestors.items() if a.evidence_source.reads_registry}
        verified: list[tuple[str, VerifiedAttestation]] = []
        failed: list[FailedAttestation] = []
        records: dict[str, RegistryFact] = {}
        for outcome in self._verify_all(image, artifacts, wanted, keys, now, budget):
            if outcome is None:
                continue
            if isinstance(outcome, FailedAttestation):
                failed.append(outcome)
                continue
            fact, attestation, record = outcome
            verified.append((fact, attestation))
            if record is not None:
                records.setdefault(fact, record)
        return RegistryFindings(tuple(verified), tuple(failed), records)

    def _verify_all(
        self,
        image: ImageReference,
        artifacts: RegistryArtifacts,
        attestors: Mapping[str, Attestor],
        keys: Mapping[str, Sequence[PublicKey]],
        now: datetime,
        budget: VerificationBudget | None,
    ) -> list[_Outcome]:
        out: list[_Outcome] = []
        for name, attestor in sorted(attestors.items()):
            attestor_keys = keys.get(name, ())
            for source, problem in artifacts.problems:
                out.append(FailedAttestation(source, FailureReason.MALFORMED, name, detail=problem))
            pieces: list[tuple[str, str, SignedAttestation | DsseEnvelope, bytes]] = []
            for sig in artifacts.signatures:
                pieces.append(
                    (sig.source, sig.layer, sig.attestation, sig.attestation.serialized_payload)
                )
            for att in artifacts.attestations:
                pieces.append((att.source, att.layer, att.envelope, att.envelope.payload))
            if attestor_keys:
                for source, layer, item, signed in pieces:
                    where = (source, layer)
                    out.append(
                        self._keyed(
                            image, name, attestor, where, item, signed, attestor_keys, now, budget
                        )
                    )
            for bundle in artifacts.bundles:
                out.append(
                    self._bundle(
                        image,
                        name,
                        attestor,
                        (bundle.source, bundle.layer),
                        bundle.data,
                        attestor_keys,
                        now,
                        budget,
                    )
                )
        return out

    def _keyed(
        self,
        image: ImageReference,
        attestor: str,
        trusted: Attestor,
        where: tuple[str, str],  # (source manifest, layer)
        item: SignedAttestation | DsseEnvelope,
        signed: bytes,
        keys: Sequence[PublicKey],
        now: datetime,
        budget: VerificationBudget | None = None,
    ) -> tuple[str, VerifiedAttestation, RegistryFact | None] | FailedAttestation:
        source, layer = where
        try:
            result = verify_attestation(image, item, keys, now=now, budget=budget)
        except ChainproofError as exc:
            return FailedAttestation(source, FailureReason.MALFORMED, attestor, detail=exc.message)
        if not result.verified:
            reason = (
                FailureReason.WRONG_DIGEST
                if result.payload is not None
                else FailureReason.MALFORMED
                if result.key_ids
                else FailureReason.UNKNOWN_KEY
            )
            return FailedAttestation(source, reason, attestor, detail="; ".join(result.reasons))
        statement = result.statement
        record = RegistryFact(
            resource=image.canonical,
            attestor=attestor,
            note=trusted.note_reference,
            source=source,
            layer=layer,
            signed=signed,
            occurrence=occurrence_json(
                image.canonical, trusted.note_reference, item, result.key_ids[0]
            ),
        )
        attestation = VerifiedAttestation(
            attestor=attestor,
            key_id=result.key_ids[0],
            occurrence=source,
            kind=_kind(result),
            predicate_type=statement.predicate_type if statement else None,
            statement=_statement_dict(result),
            predicate=statement.predicate if statement else None,
        )
        return content_fact(attestor, signed), attestation, record

    def _bundle(
        self,
        image: ImageReference,
        name: str,
        attestor: Attestor,
        where: tuple[str, str],
        data: bytes,
        keys: Sequence[PublicKey],
        now: datetime,
        budget: VerificationBudget | None = None,
    ) -> _Outcome:
        source = where[0]
        if attestor.keyless_identities:
            if self.trusted_root is None:
                return FailedAttestation(
                    source,
                    FailureReason.UNSUPPORTED,
                    name,
                    detail="no Sigstore trusted root is configured (registry.trusted_root_file)",
                )
            if budget is not None:
                budget.spend()
            result = verify_keyless_bundle(
                data,
                image,
                trusted_root=self.trusted_root,
                identities=attestor.keyless_identities,
            )
            if result.verified:
                st = result.statement
                assert result.identity is not None
                matched = result.identity
                keyless = VerifiedAttestation(
                    attestor=name,
                    key_id=KEYLESS_KEY_PREFIX + matched.describe(),
                    occurrence=source,
                    kind=AttestationKind.IN_TOTO if st else AttestationKind.SIMPLE_SIGNING,
                    predicate_type=st.predicate_type if st else None,
                    statement=_statement_json(st),
                    predicate=st.predicate if st else None,
                )
                # No record: a Grafeas occurrence cannot carry the certificate and log proof.
                return content_fact(name, data), keyless, None
            if not keys:
                reason = (
                    FailureReason.UNKNOWN_KEY
                    if result.identity_mismatch
                    else FailureReason.WRONG_DIGEST
                    if result.signer
                    else FailureReason.BAD_SIGNATURE
                )
                return FailedAttestation(source, reason, name, detail="; ".join(result.reasons))
        if not keys:
            return None
        try:
            envelope = bundle_envelope(data)
        except ChainproofError as exc:
            return FailedAttestation(source, FailureReason.UNSUPPORTED, name, detail=exc.message)
        return self._keyed(
            image, name, attestor, where, envelope, envelope.payload, keys, now, budget
        )
