"""Recording verified registry evidence in the scribe on first sight (``registry.record_evidence``).

This module owns :class:`RegistryFact` — one piece of registry evidence that verified for an
image, ready to be filed as an occurrence, with where it was read — and
:class:`RegistryRecorder`, which the judge's evidence gatherer tells about the registry-only
facts it verified. Once recorded, later reviews find the fact in the scribe (and count it
once, naming the occurrence), and the Grafeas API lists it like any other attestation.

Off the review's path and bounded: :meth:`RegistryRecorder.offer` only schedules work and
returns at once; at most ``max_pending`` recordings run or wait, at most ``max_per_image``
facts are recorded per image and sight, and each recording gives up after
``timeout_seconds``. What is dropped is logged and counted, and is offered again at the next
sight (nothing was recorded, so the gatherer still sees it as registry-only).

Idempotent across sights and replicas, in one transaction per image: the recorder takes a
per-image lock (it upserts a small document; PostgreSQL row-locks it until commit, so two
replicas recording the same image take turns), reads the occurrences already filed about the
image under each attestor's note and drops every fact whose signed content one of them
carries — whoever wrote it: an earlier sight, another replica, ``chainproof registry sync`` —,
creates the rest through the Grafeas service (validated, announced), and writes one
``registry-evidence`` document per created occurrence naming its source (the registry
manifest and layer it came from, and the attestor that verified it).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog

from chainproof.domain.filters import Compare, FilterColumn
from chainproof.domain.messages import Occurrence, occurrence_from_json
from chainproof.domain.names import parse_note_name
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import ChainproofError, FailedPrecondition
from chainproof.services.common import Clock, utc_now
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.port import DocumentRecord, OccurrenceRecord, UnitOfWork

__all__ = ["RECORDS", "RegistryFact", "RegistryRecorder"]

log = structlog.get_logger("chainproof.registry.recording")

#: One document per recorded occurrence: where its content was read (keyed by occurrence id).
RECORDS = "registry-evidence"
#: One small document per image, upserted first: the lock that makes replicas take turns.
_LOCKS = "registry-evidence-locks"
#: Occurrences read per note and image to find what is held already; beyond, nothing is
#: recorded (it cannot be shown not to be a duplicate).
_MAX_HELD = 10_000
_PAGE = 500


@dataclass(frozen=True, slots=True)
class RegistryFact:
    """One verified piece of registry evidence about ``resource`` (canonical, by digest)."""

    resource: str
    attestor: str
    note: str  # the attestor's note: the occurrence is filed under it
    source: str  # registry/repo@sha256:… of the .sig, .att or referrer manifest
    layer: str  # the digest of the layer that carried it
    signed: bytes  # the signed content (a simple-signing payload, a DSSE payload)
    occurrence: Mapping[str, Any] = field(default_factory=dict)  # REST JSON to create

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurrence", MappingProxyType(dict(self.occurrence)))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.attestor, self.resource, hashlib.sha256(self.signed).hexdigest())


def _held_content(record: OccurrenceRecord) -> bytes:
    occ = record.occurrence
    if occ.HasField("attestation"):
        return bytes(occ.attestation.serialized_payload)
    if occ.HasField("dsse_attestation"):
        return bytes(occ.dsse_attestation.envelope.payload)
    if occ.HasField("envelope"):
        return bytes(occ.envelope.payload)
    return b""


class _Guard:
    """The InsertGuard of one recording: lock, drop what is held, keep the sources."""

    def __init__(
        self, project: str, resource: str, facts: Sequence[RegistryFact], now: datetime
    ) -> None:
        self.project = project
        self.resource = resource
        self.facts = facts
        self.now = now
        self.kept: list[RegistryFact] = []
        self.held = 0

    def _document(self, collection: str, doc_id: str, data: dict[str, Any]) -> DocumentRecord:
        return DocumentRecord(self.project, collection, doc_id, data, "", self.now, self.now)

    async def keep(self, s: UnitOfWork, drafts: Sequence[Occurrence]) -> Sequence[bool]:
        lock_id = hashlib.sha256(self.resource.encode()).hexdigest()[:40]
        await s.documents.put(self._document(_LOCKS, lock_id, {"resource": self.resource}))
        held: dict[str, set[bytes]] = {}
        for note in dict.fromkeys(f.note for f in self.facts):
            held[note] = await self._held(s, note)
        out: list[bool] = []
        for fact in self.facts:
            seen = held[fact.note]
            if fact.signed in seen:
                self.held += 1
                out.append(False)
                continue
            seen.add(fact.signed)  # the same content twice in one sight is one fact
            self.kept.append(fact)
            out.append(True)
        return out

    async def _held(self, s: UnitOfWork, note: str) -> set[bytes]:
        name = parse_note_name(note)
        on_image = Compare(FilterColumn.RESOURCE, self.resource)
        found: set[bytes] = set()
        after: str | None = None
        read = 0
        while True:
            rows = await s.occurrences.page_of_note(
                name.project, name.note_id, on_image, after, _PAGE
            )
            found.update(_held_content(r) for r in rows)
            read += len(rows)
            if len(rows) < _PAGE:
                return found
            if read >= _MAX_HELD:
                raise _TooMany(note, self.resource)
            after = rows[-1].occurrence_id

    async def created(self, s: UnitOfWork, records: Sequence[OccurrenceRecord]) -> None:
        for fact, record in zip(self.kept, records, strict=True):
            await s.documents.put(
                self._document(
                    RECORDS,
                    record.occurrence_id,
                    {
                        "occurrence": record.occurrence.name,
                        "resource": fact.resource,
                        "attestor": fact.attestor,
                        "source": fact.source,
                        "layer": fact.layer,
                        "recordedAt": rfc3339(self.now),
                    },
                )
            )


class _TooMany(FailedPrecondition):
    def __init__(self, note: str, resource: str) -> None:
        super().__init__(
            f"more than {_MAX_HELD} occurrences of {note} are filed about {resource}: not "
            "recorded (a duplicate could not be ruled out)"
        )


class RegistryRecorder:
    """See the module docstring. One per process; :meth:`close` waits for what is running."""

    def __init__(
        self,
        grafeas: GrafeasService,
        project: str,
        *,
        max_pending: int = 64,
        max_per_image: int = 32,
        timeout_seconds: float = 10.0,
        clock: Clock = utc_now,
    ) -> None:
        self._grafeas = grafeas
        self.project = project
        self.max_pending = max_pending
        self.max_per_image = max_per_image
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[tuple[str, str, str]] = set()
        self._recorded: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.recorded = 0  # occurrences created
        self.held = 0  # facts found in the scribe already
        self.dropped = 0  # facts not recorded this time (a bound, a timeout, an error)

    def offer(self, facts: Sequence[RegistryFact]) -> None:
        """Schedule the recording of ``facts`` (never blocks, never raises)."""
        fresh = [f for f in facts if f.key not in self._recorded and f.key not in self._inflight]
        by_image: dict[str, list[RegistryFact]] = {}
        for fact in fresh:
            by_image.setdefault(fact.resource, []).append(fact)
        for resource, group in by_image.items():
            if len(self._tasks) >= self.max_pending:
                self.dropped += len(group)
                log.warning(
                    "registry evidence not recorded: too many recordings pending",
                    image=resource,
                    facts=len(group),
                    pending=len(self._tasks),
                )
                continue
            if len(group) > self.max_per_image:
                self.dropped += len(group) - self.max_per_image
                log.warning(
                    "registry evidence recorded in part: the rest at a later sight",
                    image=resource,
                    facts=len(group),
                    recorded=self.max_per_image,
                )
                group = group[: self.max_per_image]
            self._inflight.update(f.key for f in group)
            task = asyncio.get_running_loop().create_task(self._run(resource, group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, resource: str, facts: Sequence[RegistryFact]) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.record(resource, facts)
        except Exception as exc:  # never fatal: the facts are offered again at the next sight
            self.dropped += len(facts)
            log.warning(
                "registry evidence not recorded",
                image=resource,
                facts=len(facts),
                error=exc.message if isinstance(exc, ChainproofError) else repr(exc),
            )
        else:
            for fact in facts:
                self._recorded[fact.key] = None
                self._recorded.move_to_end(fact.key)
            while len(self._recorded) > 10_000:
                self._recorded.popitem(last=False)
        finally:
            self._inflight.difference_update(f.key for f in facts)

    async def record(self, resource: str, facts: Sequence[RegistryFact]) -> list[OccurrenceRecord]:
        """Record ``facts`` about ``resource`` now; the occurrences created (none when the
        scribe holds them all)."""
        guard = _Guard(self.project, resource, facts, self._clock())
        records = await self._grafeas.create_occurrence_records(
            f"projects/{self.project}",
            [occurrence_from_json(dict(f.occurrence)) for f in facts],
            guard=guard,
        )
        self.recorded += len(records)
        self.held += guard.held
        for fact, record in zip(guard.kept, records, strict=True):
            log.info(
                "registry evidence recorded",
                image=resource,
                occurrence=record.occurrence.name,
                source=fact.source,
                attestor=fact.attestor,
            )
        return records

    async def drain(self) -> None:
        """Wait for the recordings scheduled so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
