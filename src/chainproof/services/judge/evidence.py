"""Gathering what is known about an image, verified, in the form the policy evaluator reads.

For each image digest of a request, this module reads from the store — *all* of it, up to
:class:`EvidenceLimits`, for every image of the request in one batched read
(``occurrences.read_slices``, ADR 0132) — :

* the occurrences filed under each attestor's note for that image, and verifies each one
  (newest first) through :mod:`chainproof.attest` against the attestor's keys and the digest
  *from the request* (never from the attestation);
* VULNERABILITY occurrences (findings, and the VEX assessment each may carry) and DISCOVERY
  occurrences of finished vulnerability scans in the evidence projects;
* VEX statements, scans and their findings from verified in-toto statements.

Every fact is tagged with the attestor that signed it (None: an unsigned occurrence), so that
the evaluator can count it only for the rules that trust that attestor. A bound that is hit,
a verification budget that is spent or a signed scan that cannot be read is recorded as
:class:`~chainproof.policy.evidence.IncompleteEvidence` — never a silent prefix.

Verification is CPU-bound and runs on worker threads (unless every result is cached), paid
from one :class:`~chainproof.crypto.verify.VerificationBudget` per request, which is stopped
when the review is cancelled (its deadline). This module owns the mapping from Grafeas
messages and verification results to :mod:`chainproof.policy.evidence`, and the verification
cache. It decides nothing.

Cache: verifying a signature is the expensive step, so results are kept per (occurrence,
its update time, the attestor's exact content, the image). A changed or deleted occurrence, a
changed attestor or another image never hits a stale entry; entries also expire after a
while because a key's validity depends on the time of verification.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog

from chainproof.attest.grafeas import attestation_from_occurrence
from chainproof.attest.predicates import OPENVEX, predicate_kind
from chainproof.attest.verify import AttestationVerification, verify_attestation
from chainproof.attest.vuln_scan import is_vuln_scan, read_vuln_scan
from chainproof.crypto.keys import PublicKey
from chainproof.crypto.verify import BudgetExhausted, VerificationBudget
from chainproof.domain.images import ImageReference
from chainproof.domain.kinds import finding_aliases
from chainproof.domain.names import parse_note_name
from chainproof.errors import ChainproofError
from chainproof.ingest.attested import SignedSbom, read_signed_sbom
from chainproof.ingest.model import VexScope
from chainproof.ingest.purls import purl_or_none
from chainproof.ingest.vex import product_identity, product_names_image
from chainproof.policy.attestors import Attestor
from chainproof.policy.evidence import (
    UNSIGNED,
    AttestationKind,
    Evidence,
    FailedAttestation,
    FailureReason,
    ImageEvidence,
    IncompleteEvidence,
    InstalledPackage,
    PlatformEvidence,
    SbomFact,
    Severity,
    VerifiedAttestation,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
    VulnerabilityScan,
)
from chainproof.services.judge.registry_evidence import RegistryEvidence, RegistryRead, content_fact
from chainproof.services.scribe.registry_recording import RegistryFact
from chainproof.sources.registry.client import REVIEW_DEADLINE
from chainproof.store.port import MetadataStore, NoteRecord, OccurrenceRecord, OccurrenceSlice

log = structlog.get_logger("chainproof.evidence")

_FORMAT_KIND = {
    "simple-signing": AttestationKind.SIMPLE_SIGNING,
    "image-url": AttestationKind.PGP_SIGNED,
    "in-toto": AttestationKind.IN_TOTO,
}
_VEX_STATES = {
    "NOT_AFFECTED": VexStatus.NOT_AFFECTED,
    "FIXED": VexStatus.FIXED,
    "AFFECTED": VexStatus.AFFECTED,
    "UNDER_INVESTIGATION": VexStatus.UNDER_INVESTIGATION,
}


def attestor_fingerprint(attestor: Attestor) -> str:
    raw = json.dumps(attestor.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()


def attestor_keys(attestor: Attestor) -> list[PublicKey]:
    """The attestor's verifying keys; a key that cannot be loaded is skipped (and logged).

    Keys are checked when an attestor is written, so a skip here means the key became
    unusable later (or the attestor came from a file)."""
    keys, unusable = attestor.load_keys()
    for bad in unusable:
        log.warning(
            "attestor key unusable", attestor=attestor.name, key=bad.key.id, error=bad.reason
        )
    return keys


@dataclass
class _CacheEntry:
    result: AttestationVerification
    expires: datetime


class VerificationCache:
    """A bounded LRU of verification results; see the module docstring for its keys.

    Verification runs on worker threads, so every access takes the lock."""

    def __init__(self, max_entries: int = 20_000, ttl: timedelta = timedelta(minutes=5)):
        self._entries: OrderedDict[tuple[str, ...], _CacheEntry] = OrderedDict()
        self._keys: dict[str, list[PublicKey]] = {}
        self._max = max_entries
        self._ttl = ttl
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def keys_for(self, attestor: Attestor, fingerprint: str) -> list[PublicKey]:
        with self._lock:
            keys = self._keys.get(fingerprint)
            if keys is None:
                if len(self._keys) > 1000:
                    self._keys.clear()
                keys = self._keys[fingerprint] = attestor_keys(attestor)
            return keys

    def get(self, key: tuple[str, ...], now: datetime) -> AttestationVerification | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.result

    def holds(self, key: tuple[str, ...], now: datetime) -> bool:
        """Whether ``get`` would answer (without counting a hit or a miss)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.expires > now

    def put(self, key: tuple[str, ...], result: AttestationVerification, now: datetime) -> None:
        with self._lock:
            self._entries[key] = _CacheEntry(result, now + self._ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._keys.clear()

    def forget_results(self) -> None:
        """Drop every verification result but keep the attestors' loaded keys: what a judge
        that has its config but has never seen the images holds (a first sight)."""
        with self._lock:
            self._entries.clear()


def _time(msg: Any, field: str) -> datetime | None:
    if not msg.HasField(field):
        return None
    value: datetime = getattr(msg, field).ToDatetime(tzinfo=UTC)
    return value


def _enum_name(msg: Any, field: str) -> str:
    """The name of an enum field's value; "" for a number the proto does not define (stored
    data is not trusted to be valid: reading it must never crash a review)."""
    descriptor = msg.DESCRIPTOR.fields_by_name[field].enum_type
    value = descriptor.values_by_number.get(getattr(msg, field))
    return "" if value is None else str(value.name)


def _failure(
    record: OccurrenceRecord,
    attestor: Attestor,
    keys: Sequence[PublicKey],
    result: AttestationVerification,
) -> FailedAttestation:
    hints = _key_hints(record)
    if result.payload is not None:
        reason = FailureReason.WRONG_DIGEST  # signed by a trusted key, about something else
    elif result.key_ids:
        reason = FailureReason.MALFORMED  # signed by a trusted key, but unreadable
    elif not any(key.matches_hint(h) for key in keys for h in hints):
        # No signature even claims a key this attestor trusts (hints are only hints, and
        # every signature was still tried against every key).
        reason = FailureReason.UNKNOWN_KEY
    else:
        reason = FailureReason.BAD_SIGNATURE
    return FailedAttestation(
        occurrence=record.occurrence.name,
        reason=reason,
        attestor=attestor.name,
        key_id=hints[0] if hints else None,
        detail="; ".join(result.reasons),
    )


def _key_hints(record: OccurrenceRecord) -> list[str]:
    occ = record.occurrence
    if occ.HasField("attestation"):
        return [s.public_key_id for s in occ.attestation.signatures if s.public_key_id]
    env = occ.dsse_attestation.envelope if occ.HasField("dsse_attestation") else occ.envelope
    return [s.keyid for s in env.signatures if s.keyid]


T = TypeVar("T")


class _Lru(Generic[T]):
    """A small thread-safe LRU (verification runs on worker threads)."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple[str, ...], T] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> T | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, ...], value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class EvidenceLimits:
    """Bounds on the work one request's evidence may cost. Each bound that is hit makes the
    evidence it concerns *incomplete*: rules that count it fail closed, saying which bound."""

    #: Occurrences read per image and source (one attestor's note; the scan results of one
    #: evidence project). Everything up to it is read, in the review's one batched read.
    max_occurrences: int = 10_000
    #: Signature checks (one signature against one key) per request.
    max_signature_checks: int = 2_000


@dataclass(frozen=True, slots=True)
class EvidenceNeeds:
    """What the rule judging one image reads beyond the scribe, asked before gathering.

    ``registry``: the registry-sourced attestors to consult (those the rule names; an
    attestor only another rule names is never consulted for this image). ``every_platform``:
    the attestors whose evidence each platform manifest of an image index must carry."""

    registry: frozenset[str] = frozenset()
    every_platform: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """A cache key part: evidence gathered for other needs is other evidence."""
        return f"registry={','.join(sorted(self.registry))};platforms=" + ",".join(
            sorted(self.every_platform)
        )


def default_needs(attestors: Mapping[str, Attestor]) -> EvidenceNeeds:
    """Needs when no rule is asked (Kritis, direct callers): every registry-sourced attestor,
    and every platform for the attestors whose document sets ``requireSignedChildren``."""
    return EvidenceNeeds(
        frozenset(n for n, a in attestors.items() if a.evidence_source.reads_registry),
        frozenset(
            n
            for n, a in attestors.items()
            if a.require_signed_children and a.evidence_source.reads_registry
        ),
    )


#: Verification is CPU-bound: it runs on these threads so that the event loop (other reviews,
#: /healthz, the review's own deadline) keeps running meanwhile.
_VERIFIERS: ThreadPoolExecutor | None = None


def _verifiers() -> ThreadPoolExecutor:
    global _VERIFIERS
    if _VERIFIERS is None:
        _VERIFIERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chainproof-verify")
    return _VERIFIERS


#: Where the answer to one slice of a batched read goes (its rows; the notes the read joined).
_Landing = Callable[[list[OccurrenceRecord], Mapping[tuple[str, str], NoteRecord]], None]


class _Batch:
    """The slices of one batched read (``occurrences.read_slices``) and where each answer
    lands: a review plans everything it needs, then reads it in one round trip."""

    def __init__(self) -> None:
        self.slices: list[OccurrenceSlice] = []
        self._landings: list[_Landing] = []

    def add(self, part: OccurrenceSlice, land: _Landing) -> None:
        self.slices.append(part)
        self._landings.append(land)

    async def run(self, store: MetadataStore) -> None:
        """Read every slice in one read-only unit of work (nothing: no unit of work), then
        land each answer in the order the slices were added."""
        if not self.slices:
            return
        async with store.session(readonly=True) as s:
            found = await s.occurrences.read_slices(self.slices)
        for land, rows in zip(self._landings, found.rows, strict=True):
            land(rows, found.notes)


@dataclass
class _ImageRead:
    """What was read from the store about one image, before anything was verified."""

    attestations: dict[str, list[OccurrenceRecord]] = field(default_factory=dict)
    scan_rows: list[OccurrenceRecord] = field(default_factory=list)
    #: (note project, note id) → the analysis kind of each DISCOVERY note referenced.
    analysis_kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    incomplete: list[IncompleteEvidence] = field(default_factory=list)
    #: What the registry holds, for attestors whose evidence lives there.
    registry: RegistryRead | None = None
    needs: EvidenceNeeds = field(default_factory=EvidenceNeeds)
    #: Scribe attestations about each platform manifest of an index (child canonical →
    #: attestor → rows), for the attestors whose evidence each platform must carry.
    child_attestations: dict[str, dict[str, list[OccurrenceRecord]]] = field(default_factory=dict)
    #: Registry-only facts that verified (filled by the verification thread), for the scribe.
    recordable: list[RegistryFact] = field(default_factory=list)
    sboms: list[SbomFact] = field(default_factory=list)
    packages: list[InstalledPackage] = field(default_factory=list)
    packages_truncated: bool = False


class EvidenceGatherer:
    """Reads and verifies the evidence for the images of one request."""

    def __init__(
        self,
        store: MetadataStore,
        cache: VerificationCache | None = None,
        *,
        limits: EvidenceLimits | None = None,
        registry: RegistryEvidence | None = None,
        on_registry_facts: Callable[[Sequence[RegistryFact]], None] | None = None,
    ) -> None:
        self._store = store
        self.cache = cache or VerificationCache()
        self.limits = limits or EvidenceLimits()
        self.registry = registry
        #: Told, on the event loop, of the registry evidence that verified and that the scribe
        #: does not hold (the recorder files it: registry.record_evidence). Must not block.
        self.on_registry_facts = on_registry_facts
        #: Signed SBOMs already read (a 10,000-package predicate costs a tenth of a second).
        self.signed_sboms: _Lru[SignedSbom] = _Lru(256)

    async def gather(
        self,
        images: Sequence[ImageReference],
        attestors: Mapping[str, Attestor],
        evidence_projects: Sequence[str],
        now: datetime,
        *,
        needs: Mapping[str, EvidenceNeeds] | None = None,
    ) -> Evidence:
        """``needs``: per image (canonical), what its rule reads beyond the scribe; an image
        missing from it needs nothing more. Without it, :func:`default_needs` applies."""
        fallback = default_needs(attestors) if needs is None else EvidenceNeeds()
        reads: dict[str, _ImageRead] = {}
        batch = _Batch()
        for image in dict.fromkeys(i for i in images if i.digest):
            read = _ImageRead(needs=(needs or {}).get(image.canonical, fallback))
            self._plan(batch, read, image, attestors, evidence_projects)
            reads[image.canonical] = read
        # One round trip for every image, attestor and evidence project of the request.
        await batch.run(self._store)
        for read in reads.values():
            if len(read.packages) > MAX_PACKAGES:
                read.packages, read.packages_truncated = read.packages[:MAX_PACKAGES], True
        unique = [i for i in dict.fromkeys(images) if i.canonical in reads]
        if self.registry is not None:
            await self._read_registry(unique, reads, attestors)
        budget = VerificationBudget(self.limits.max_signature_checks)
        if self._all_cached(unique, reads, attestors, now):
            # Nothing to verify: handing over to a thread would cost more than the work.
            per_image = self._verify_all(unique, reads, attestors, now, budget)
            return Evidence(images=per_image, attestors=dict(attestors))
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            _verifiers(), self._verify_all, unique, reads, attestors, now, budget
        )
        try:
            per_image = await work
        except BaseException:
            # Cancelled (the deadline came) or failed: the worker stops at its next check.
            budget.stop("the review ended before verification finished")
            raise
        self._offer(reads.values())
        return Evidence(images=per_image, attestors=dict(attestors))

    def _offer(self, reads: Iterable[_ImageRead]) -> None:
        if self.on_registry_facts is None:
            return
        facts = [f for read in reads for f in read.recordable]
        if facts:
            try:
                self.on_registry_facts(facts)
            except Exception:  # recording is a side effect: it never decides a review
                log.exception("offering registry evidence to the scribe failed")

    async def _read_registry(
        self,
        images: Sequence[ImageReference],
        reads: Mapping[str, _ImageRead],
        attestors: Mapping[str, Attestor],
    ) -> None:
        """Registry I/O, before the worker thread: concurrently for the images of the
        request, under the review's deadline, only for what each image's rule needs. A
        RegistryError denies. Then the scribe's evidence on the platform manifests of the
        indexes whose rule wants evidence on every platform."""
        assert self.registry is not None
        deadline = REVIEW_DEADLINE.get()

        def chosen(names: frozenset[str]) -> dict[str, Attestor]:
            return {n: attestors[n] for n in sorted(names) if n in attestors}

        found = await asyncio.gather(
            *(
                self.registry.read(
                    i,
                    chosen(reads[i.canonical].needs.registry),
                    deadline,
                    every_platform=chosen(reads[i.canonical].needs.every_platform),
                )
                for i in images
            )
        )
        wanted: list[tuple[_ImageRead, ImageReference, dict[str, Attestor]]] = []
        for image, registry_read in zip(images, found, strict=True):
            read = reads[image.canonical]
            read.registry = registry_read
            scribe_side = {
                n: a
                for n, a in chosen(read.needs.every_platform).items()
                if a.evidence_source.reads_scribe
            }
            if registry_read is None or not registry_read.platforms or not scribe_side:
                continue
            for platform in registry_read.platforms:
                wanted.append((read, replace(image, digest=platform.digest, tag=None), scribe_side))
        batch = _Batch()
        for read, child, scribe_side in wanted:
            rows = read.child_attestations.setdefault(child.canonical, {})
            self._plan_attestations(batch, child, scribe_side, rows, read.incomplete)
        await batch.run(self._store)

    # ----------------------------------------------------------------- reading

    def _plan(
        self,
        batch: _Batch,
        read: _ImageRead,
        image: ImageReference,
        attestors: Mapping[str, Attestor],
        evidence_projects: Sequence[str],
    ) -> None:
        """Add to ``batch`` what ``image`` needs read: each scribe-sourced attestor's
        occurrences about it, and in each evidence project its scan results, SBOM references
        and packages."""
        self._plan_attestations(batch, image, attestors, read.attestations, read.incomplete)
        bound = self.limits.max_occurrences
        for project in dict.fromkeys(evidence_projects):

            def scans(
                rows: list[OccurrenceRecord],
                notes: Mapping[tuple[str, str], NoteRecord],
                project: str = project,
            ) -> None:
                if len(rows) > bound:
                    read.incomplete.append(
                        IncompleteEvidence(
                            UNSIGNED,
                            f"more than {bound} vulnerability and discovery occurrences about "
                            f"the image are stored in projects/{project} (the bound of {bound} "
                            "per source was hit), so some findings would go unseen",
                        )
                    )
                    return
                read.scan_rows.extend(rows)
                for r in rows:
                    note = notes.get((r.note_project, r.note_id))
                    if r.kind == "DISCOVERY" and note is not None and note.kind == "DISCOVERY":
                        kind = _enum_name(note.note.discovery, "analysis_kind")
                        read.analysis_kinds[(r.note_project, r.note_id)] = kind

            def sbom_references(
                rows: list[OccurrenceRecord],
                notes: Mapping[tuple[str, str], NoteRecord],
                project: str = project,
            ) -> None:
                if len(rows) > MAX_SBOM_REFERENCES:
                    # A prefix of the references could miss the one a check looks for.
                    read.incomplete.append(
                        IncompleteEvidence(
                            UNSIGNED,
                            f"more than {MAX_SBOM_REFERENCES} SBOM references about the image "
                            f"are stored in projects/{project} (the bound of "
                            f"{MAX_SBOM_REFERENCES} per source was hit), so an SBOM check "
                            "would decide on some of them only",
                        )
                    )
                    return
                for r in rows:
                    note = notes.get((r.note_project, r.note_id))
                    if note is not None:
                        ref = note.note.sbom_reference
                        read.sboms.append(
                            SbomFact(str(ref.format_), str(ref.version), r.occurrence.name)
                        )

            def packages(rows: list[OccurrenceRecord], _: object) -> None:
                read.packages.extend(_package(r) for r in rows)

            resource = image.canonical
            batch.add(
                OccurrenceSlice(
                    resource, bound + 1, project=project, kinds=_SCAN_KINDS, with_notes=_DISCOVERY
                ),
                scans,
            )
            batch.add(
                OccurrenceSlice(
                    resource,
                    MAX_SBOM_REFERENCES + 1,
                    project=project,
                    kinds=_SBOM_REFERENCE,
                    with_notes=_SBOM_REFERENCE,
                ),
                sbom_references,
            )
            # One more than the judge reads: a full slice is how truncation shows.
            batch.add(
                OccurrenceSlice(resource, MAX_PACKAGES + 1, project=project, kinds=_PACKAGE),
                packages,
            )

    def _plan_attestations(
        self,
        batch: _Batch,
        image: ImageReference,
        attestors: Mapping[str, Attestor],
        out: dict[str, list[OccurrenceRecord]],
        incomplete: list[IncompleteEvidence],
    ) -> None:
        """Add to ``batch`` each scribe-sourced attestor's occurrences about ``image`` (filed
        under its note, in any project), to land in ``out[attestor]`` newest first."""
        bound = self.limits.max_occurrences
        for name, attestor in sorted(attestors.items()):
            if not attestor.evidence_source.reads_scribe:
                continue  # its evidence lives in the registry only
            try:
                note = parse_note_name(attestor.note_reference)
            except ChainproofError as exc:
                incomplete.append(IncompleteEvidence(name, f"attestor {name}: {exc.message}"))
                continue

            def land(
                rows: list[OccurrenceRecord],
                _: object,
                name: str = name,
                attestor: Attestor = attestor,
            ) -> None:
                if len(rows) > bound:
                    incomplete.append(
                        IncompleteEvidence(
                            name,
                            f"more than {bound} occurrences of {attestor.note_reference} are "
                            f"filed about {image.canonical} (the bound of {bound} per source "
                            "was hit): delete the ones that are not attestations",
                        )
                    )
                    return
                # Newest first: what a verification budget reaches first is the latest evidence.
                out[name] = rows[::-1]

            batch.add(
                OccurrenceSlice(image.canonical, bound + 1, note=(note.project, note.note_id)), land
            )

    # ----------------------------------------------------------------- verifying (worker thread)

    def _all_cached(
        self,
        images: Sequence[ImageReference],
        reads: Mapping[str, _ImageRead],
        attestors: Mapping[str, Attestor],
        now: datetime,
    ) -> bool:
        for image in images:
            registry_read = reads[image.canonical].registry
            if registry_read is not None and not registry_read.empty:
                return False
            if reads[image.canonical].child_attestations:
                return False
            for name, rows in reads[image.canonical].attestations.items():
                fingerprint = attestor_fingerprint(attestors[name])
                for record in rows:
                    key = _cache_key(record, fingerprint, image)
                    if not self.cache.holds(key, now):
                        return False
        return True

    def _verify_all(
        self,
        images: Sequence[ImageReference],
        reads: Mapping[str, _ImageRead],
        attestors: Mapping[str, Attestor],
        now: datetime,
        budget: VerificationBudget,
    ) -> dict[str, ImageEvidence]:
        return {
            image.canonical: self._image(image, reads[image.canonical], attestors, now, budget)
            for image in images
        }

    def _image(
        self,
        image: ImageReference,
        read: _ImageRead,
        attestors: Mapping[str, Attestor],
        now: datetime,
        budget: VerificationBudget,
    ) -> ImageEvidence:
        verified: list[VerifiedAttestation] = []
        failed: list[FailedAttestation] = []
        facts: set[str] = set()
        incomplete = list(read.incomplete)
        updated: dict[str, str] = {}
        for name, rows in read.attestations.items():
            attestor = attestors[name]
            fingerprint = attestor_fingerprint(attestor)
            try:
                for record in rows:
                    updated[record.occurrence.name] = record.occurrence.update_time.ToJsonString()
                    outcome = self._verify(record, attestor, name, fingerprint, image, now, budget)
                    if isinstance(outcome, VerifiedAttestation):
                        verified.append(outcome)
                        facts.update(_occurrence_facts(name, record))
                    else:
                        failed.append(outcome)
            except BudgetExhausted as exc:
                incomplete.append(IncompleteEvidence(name, exc.reason))
        try:
            self._registry_evidence(image, read, attestors, now, verified, failed, facts, budget)
        except BudgetExhausted as exc:
            for name in sorted(read.needs.registry):
                incomplete.append(IncompleteEvidence(name, exc.reason))
        platforms: tuple[PlatformEvidence, ...] | None = None
        if read.registry is not None and read.registry.platforms is not None:
            try:
                platforms = self._platforms(image, read, attestors, now, budget)
            except BudgetExhausted as exc:
                for name in sorted(read.needs.every_platform):
                    incomplete.append(IncompleteEvidence(name, exc.reason))

        findings: list[VulnerabilityFinding] = []
        vex: list[VexStatement] = []
        scans: list[VulnerabilityScan] = []
        for record in read.scan_rows:
            if record.kind == "DISCOVERY":
                kind = read.analysis_kinds.get((record.note_project, record.note_id))
                scan = _scan(record, kind)
                if scan is not None:
                    scans.append(scan)
                continue
            finding, statement = _finding(record)
            findings.append(finding)
            if statement is not None:
                vex.append(statement)
        sboms = list(read.sboms)
        packages = list(read.packages)
        for att in verified:
            self._signed_sbom(att, image, updated, sboms, packages, incomplete)
        for att in verified:
            vex.extend(_openvex(att, image))
            if not is_vuln_scan(att.predicate_type) or att.predicate is None:
                continue
            report = read_vuln_scan(att.predicate)
            if report.problem is not None:
                incomplete.append(
                    IncompleteEvidence(
                        att.attestor,
                        f"vulnerability scan attestation {att.occurrence}: {report.problem}",
                    )
                )
                continue
            if report.finished is None:
                continue  # not a finished scan: it proves nothing (and found nothing)
            scans.append(
                VulnerabilityScan(report.finished, report.scanner, att.occurrence, att.attestor)
            )
            findings.extend(
                VulnerabilityFinding(
                    cve=f.cve,
                    severity=Severity.from_name(f.severity),
                    fix_available=f.fix_available,
                    package=f.package,
                    occurrence=att.occurrence,
                    attestor=att.attestor,
                )
                for f in report.findings
            )
        return ImageEvidence(
            attestations=tuple(verified),
            failed_attestations=tuple(failed),
            vulnerabilities=tuple(findings),
            vex=tuple(vex),
            scans=tuple(scans),
            incomplete=tuple(incomplete),
            sboms=tuple(sboms),
            packages=tuple(packages),
            packages_truncated=read.packages_truncated,
            platforms=platforms,
        )

    def _platforms(
        self,
        image: ImageReference,
        read: _ImageRead,
        attestors: Mapping[str, Attestor],
        now: datetime,
        budget: VerificationBudget,
    ) -> tuple[PlatformEvidence, ...]:
        """Who vouched for each platform manifest of the index: scribe occurrences about its
        digest and registry evidence beside it, each verified against that digest."""
        assert read.registry is not None
        assert read.registry.platforms is not None
        names = {n: attestors[n] for n in sorted(read.needs.every_platform) if n in attestors}
        registry_side = {n: a for n, a in names.items() if a.evidence_source.reads_registry}
        keys = {n: self.cache.keys_for(a, attestor_fingerprint(a)) for n, a in names.items()}
        children = {ref.digest: (ref, arts) for ref, arts in read.registry.children}
        out: list[PlatformEvidence] = []
        for platform in read.registry.platforms:
            child = replace(image, digest=platform.digest, tag=None)
            attested: dict[str, list[str]] = {}
            rows_by_attestor = read.child_attestations.get(child.canonical, {})
            for name, rows in rows_by_attestor.items():
                attestor = names[name]
                fingerprint = attestor_fingerprint(attestor)
                for record in rows:
                    outcome = self._verify(record, attestor, name, fingerprint, child, now, budget)
                    if isinstance(outcome, VerifiedAttestation):
                        attested.setdefault(name, []).append(outcome.occurrence)
            found = children.get(platform.digest)
            if found is not None and registry_side and self.registry is not None:
                findings = self.registry.verify(child, found[1], registry_side, keys, now, budget)
                for fact, attestation in findings.verified:
                    attested.setdefault(attestation.attestor, []).append(attestation.occurrence)
                    if fact in findings.records:
                        read.recordable.append(findings.records[fact])
            out.append(
                PlatformEvidence(
                    platform.digest,
                    str(platform.platform) if platform.platform else "",
                    {n: tuple(dict.fromkeys(v)) for n, v in attested.items()},
                )
            )
        return tuple(out)

    def _signed_sbom(
        self,
        att: VerifiedAttestation,
        image: ImageReference,
        updated: Mapping[str, str],
        sboms: list[SbomFact],
        packages: list[InstalledPackage],
        incomplete: list[IncompleteEvidence],
    ) -> None:
        """The SBOM and packages a verified CycloneDX/SPDX statement states, tagged with its
        signer (read from the signed predicate, never from stored PACKAGE occurrences)."""
        if att.predicate is None or predicate_kind(att.predicate_type or "") not in (
            "cyclonedx",
            "spdx",
        ):
            return
        # An occurrence's content changes only with its update time; registry items are
        # named by their (content-addressed) manifest.
        key = (att.occurrence, updated.get(att.occurrence, ""), image.canonical)
        found = self.signed_sboms.get(key)
        if found is None:
            try:
                found = read_signed_sbom(att.predicate_type or "", att.predicate, image)
            except ChainproofError as exc:
                incomplete.append(
                    IncompleteEvidence(
                        att.attestor,
                        f"the signed SBOM {att.occurrence} cannot be read: {exc.message}",
                    )
                )
                return
            if found is None:
                return
            self.signed_sboms.put(key, found)
        sboms.append(SbomFact(found.format, found.version, att.occurrence, att.attestor))
        if len(found.packages) > MAX_PACKAGES:
            incomplete.append(
                IncompleteEvidence(
                    att.attestor,
                    f"the signed SBOM {att.occurrence} lists {len(found.packages)} packages, "
                    f"more than the {MAX_PACKAGES} the judge reads",
                )
            )
            return
        packages.extend(
            InstalledPackage(p.name, p.version, p.purl, p.license, att.occurrence, att.attestor)
            for p in found.packages
        )

    def _registry_evidence(
        self,
        image: ImageReference,
        read: _ImageRead,
        attestors: Mapping[str, Attestor],
        now: datetime,
        verified: list[VerifiedAttestation],
        failed: list[FailedAttestation],
        facts: set[str],
        budget: VerificationBudget,
    ) -> None:
        """Registry evidence, merged: a fact the scribe already holds counts once (as the
        occurrence). Scribe-only attestors never reach here (nothing was read for them)."""
        if self.registry is None or read.registry is None or read.registry.artifacts is None:
            return
        readers = {
            n: attestors[n]
            for n in sorted(read.needs.registry)
            if n in attestors and attestors[n].evidence_source.reads_registry
        }
        keys = {n: self.cache.keys_for(a, attestor_fingerprint(a)) for n, a in readers.items()}
        findings = self.registry.verify(image, read.registry.artifacts, readers, keys, now, budget)
        for fact, attestation in findings.verified:
            if fact in facts:
                continue
            facts.add(fact)
            verified.append(attestation)
            if fact in findings.records:
                read.recordable.append(findings.records[fact])
        failed.extend(findings.failed)

    def _verify(
        self,
        record: OccurrenceRecord,
        attestor: Attestor,
        attestor_name: str,
        fingerprint: str,
        image: ImageReference,
        now: datetime,
        budget: VerificationBudget,
    ) -> VerifiedAttestation | FailedAttestation:
        occ = record.occurrence
        cache_key = _cache_key(record, fingerprint, image)
        result = self.cache.get(cache_key, now)
        if result is None:
            try:
                signed = attestation_from_occurrence(occ)
            except ChainproofError as exc:
                return FailedAttestation(
                    occurrence=occ.name,
                    reason=FailureReason.UNSUPPORTED,
                    attestor=attestor_name,
                    detail=exc.message,
                )
            keys = self.cache.keys_for(attestor, fingerprint)
            try:
                result = verify_attestation(image, signed, keys, now=now, budget=budget)
            except ChainproofError as exc:
                return FailedAttestation(
                    occurrence=occ.name,
                    reason=FailureReason.MALFORMED,
                    attestor=attestor_name,
                    detail=exc.message,
                )
            self.cache.put(cache_key, result, now)
        keys = self.cache.keys_for(attestor, fingerprint)
        if not result.verified:
            return _failure(record, attestor, keys, result)
        statement = result.statement
        return VerifiedAttestation(
            attestor=attestor_name,
            key_id=_listed_id(attestor, keys, result.key_ids[0]),
            occurrence=occ.name,
            kind=_FORMAT_KIND.get(result.payload_format or "", AttestationKind.SIMPLE_SIGNING),
            predicate_type=statement.predicate_type if statement else None,
            statement=_statement_dict(statement) if statement else None,
            predicate=statement.predicate if statement else None,
            created=_time(occ, "create_time"),
        )


def _cache_key(
    record: OccurrenceRecord, fingerprint: str, image: ImageReference
) -> tuple[str, ...]:
    occ = record.occurrence
    return (occ.name, occ.update_time.ToJsonString(), fingerprint, image.canonical)


def _listed_id(attestor: Attestor, keys: Sequence[PublicKey], verified_id: str) -> str:
    """The ID the attestor lists for the key that verified: the policy compares against what
    the attestor says, and an attestor stored (or read from a file) with a PGP key ID in
    another spelling — a long key ID, lower case — must still match its own key."""
    for listed in attestor.public_keys:
        if not listed.id or listed.ascii_armored_pgp_public_key is None:
            continue
        for key in keys:
            if key.key_id == verified_id and key.matches_hint(listed.id):
                return listed.id
    return verified_id


def _occurrence_facts(attestor: str, record: OccurrenceRecord) -> list[str]:
    """The facts an occurrence carries: the attestor and the digest of each signed content."""
    occ = record.occurrence
    if occ.HasField("attestation"):
        contents = (
            [bytes(occ.attestation.serialized_payload)]
            if occ.attestation.serialized_payload
            else []
        )
        contents += [bytes(s.signature) for s in occ.attestation.signatures]
    else:
        env = occ.dsse_attestation.envelope if occ.HasField("dsse_attestation") else occ.envelope
        contents = [bytes(env.payload)]
    return [content_fact(attestor, c) for c in contents if c]


#: At most this many PACKAGE occurrences are read per image; beyond, package rules fail closed.
MAX_PACKAGES = 20_000
#: SBOM references read per image and evidence project.
MAX_SBOM_REFERENCES = 100
_SCAN_KINDS = ("VULNERABILITY", "DISCOVERY")
_DISCOVERY = ("DISCOVERY",)
_SBOM_REFERENCE = ("SBOM_REFERENCE",)
_PACKAGE = ("PACKAGE",)


def _package(record: OccurrenceRecord) -> InstalledPackage:
    p = record.occurrence.package
    purl = next((str(loc.cpe_uri) for loc in p.location if str(loc.cpe_uri).startswith("pkg:")), "")
    return InstalledPackage(
        str(p.name),
        str(p.version.full_name or p.version.name),
        purl,
        str(p.license_.expression),
        record.occurrence.name,
    )


def _statement_dict(statement: Any) -> dict[str, Any]:
    return {
        "_type": statement.statement_type,
        "subject": [{"name": s.name, "digest": dict(s.digest)} for s in statement.subjects],
        "predicateType": statement.predicate_type,
        "predicate": dict(statement.predicate) if statement.predicate is not None else None,
    }


def _cve_of(record: OccurrenceRecord) -> str:
    v = record.occurrence.vulnerability
    if v.HasField("vex_assessment") and v.vex_assessment.vulnerability_id:
        return str(v.vex_assessment.vulnerability_id)
    return record.note_id


def _finding(record: OccurrenceRecord) -> tuple[VulnerabilityFinding, VexStatement | None]:
    v = record.occurrence.vulnerability
    severity_name = _enum_name(v, "effective_severity")
    if severity_name == "SEVERITY_UNSPECIFIED":
        severity_name = _enum_name(v, "severity")
    fix = bool(v.fix_available) or any(p.fix_available for p in v.package_issue)
    cve = _cve_of(record)
    finding = VulnerabilityFinding(
        cve=cve,
        severity=Severity.from_name(severity_name),
        fix_available=fix,
        package=v.package_issue[0].affected_package if v.package_issue else None,
        occurrence=record.occurrence.name,
        aliases=finding_aliases(str(v.extra_details)),
        purl=_finding_purl(v),
    )
    statement = None
    if v.HasField("vex_assessment"):
        state = _VEX_STATES.get(_enum_name(v.vex_assessment, "state"))
        if state is not None:
            # An assessment attached to this occurrence speaks for this finding only.
            statement = VexStatement(
                cve=cve,
                status=state,
                source=str(v.vex_assessment.note_name) or record.occurrence.name,
                justification=str(v.vex_assessment.justification.details),
                finding=record.occurrence.name,
                package=finding.package,
            )
    return finding, statement


def _finding_purl(v: Any) -> str | None:
    """The affected package's purl: ingest writes it in extraDetails (``purl=…``) and, when the
    scanner gave no CPE, as the package issue's affectedCpeUri."""
    for part in str(v.extra_details).split(";"):
        if part.startswith("purl=pkg:"):
            return purl_or_none(part.removeprefix("purl="))
    for issue in v.package_issue:
        if str(issue.affected_cpe_uri).startswith("pkg:"):
            return purl_or_none(str(issue.affected_cpe_uri))
    return None


#: DISCOVERY statuses of a scan that ran to the end (COMPLETE is FINISHED_SUCCESS's alias).
_FINISHED = frozenset({"FINISHED_SUCCESS", "COMPLETE"})


def _scan(record: OccurrenceRecord, analysis_kind: str | None) -> VulnerabilityScan | None:
    """A DISCOVERY occurrence as a vulnerability scan, only if it is one and it finished: a
    pending or failed scan, or one of secrets or SBOMs, found nothing about vulnerabilities."""
    if analysis_kind != "VULNERABILITY":
        return None
    d = record.occurrence.discovery
    if _enum_name(d, "analysis_status") not in _FINISHED:
        return None
    when = (
        _time(d, "last_scan_time")
        or _time(d, "analysis_completed")
        or _time(record.occurrence, "update_time")
    )
    if when is None:
        return None
    return VulnerabilityScan(
        scanned_at=when,
        scanner=f"projects/{record.note_project}/notes/{record.note_id}",
        occurrence=record.occurrence.name,
    )


def _openvex(att: VerifiedAttestation, image: ImageReference) -> list[VexStatement]:
    """VEX statements of a verified OpenVEX attestation that concern this image, each with
    the products and subcomponents it names (the judge applies them only there)."""
    if not (att.predicate_type or "").startswith(OPENVEX) or att.predicate is None:
        return []
    out: list[VexStatement] = []
    statements = att.predicate.get("statements")
    for st in statements if isinstance(statements, list) else []:
        if not isinstance(st, dict):
            continue
        status = _VEX_STATES.get(str(st.get("status", "")).upper())
        vuln = st.get("vulnerability")
        cve = vuln.get("name") if isinstance(vuln, dict) else vuln
        if status is None or not isinstance(cve, str):
            continue
        scopes = _statement_scopes(st)
        if scopes is not None and not any(_scope_about(s, image) for s in scopes):
            continue  # a statement about other products never applies here
        out.append(
            VexStatement(
                cve=cve,
                status=status,
                source=att.occurrence,
                justification=str(st.get("justification", "")),
                attestor=att.attestor,
                scopes=scopes,
            )
        )
    return out


def _statement_scopes(statement: Mapping[str, Any]) -> tuple[VexScope, ...] | None:
    """The scopes an OpenVEX statement names; None when it names no products (then the
    attestation's subject, already checked to be this image, is the product)."""
    products = statement.get("products")
    if not products:
        return None
    scopes: list[VexScope] = []
    for product in products if isinstance(products, list) else []:
        ident = product_identity(product)
        if ident is None:
            continue  # unidentifiable: it cannot be shown to be this image
        subs = product.get("subcomponents") if isinstance(product, dict) else None
        sub_ids = [product_identity(s) for s in subs] if isinstance(subs, list) else []
        purls = tuple(s for s in sub_ids if s is not None and s.startswith("pkg:"))
        if isinstance(subs, list) and subs and not purls:
            continue  # every subcomponent unusable: do not widen to the whole product
        scopes.append(VexScope(ident, purls))
    return tuple(scopes)


def _scope_about(scope: VexScope, image: ImageReference) -> bool:
    return scope.product.startswith("pkg:") or product_names_image(scope.product, image)
