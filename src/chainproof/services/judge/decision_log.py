"""The decision log: every admission decision, written off the review path, never lost.

Owns the write path of the audit trail and its guarantees (docs/admission.md, "Decision log"):

* reviews enqueue entries and return; one writer task builds the records and stores them in
  batches;
* a record the database refuses (or that cannot be encoded) is isolated by splitting its
  batch, so the others are stored; it is then stored in a degraded form that says what had to
  change, and only if even that fails is it counted as lost;
* while the database is unavailable the writer retries without end, with backoff; the
  in-memory queue is bounded, and records past the bound are appended to spill files
  (:mod:`chainproof.services.judge.decision_spill`), replayed once the database answers again;
* a retried write that the database had committed already is recognised by its decision ID,
  so every record is stored exactly once;
* Prometheus: records queued, spilled, degraded and lost.

It also answers decision queries (the list is read straight from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from chainproof.domain.bounds import check_indexed_text, check_time
from chainproof.domain.jsonsafe import safe_text, storable
from chainproof.domain.names import parse_project_name
from chainproof.domain.pagination import (
    JsonSizer,
    ListScope,
    PageTokenCodec,
    bounded_count,
    json_size,
    page_size,
)
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import Unavailable
from chainproof.policy import Decision
from chainproof.services import outbox
from chainproof.services.common import Clock, Page, utc_now
from chainproof.services.judge.decision_spill import DecisionSpill, encode_record
from chainproof.store.port import DecisionQuery, DecisionRecord, MetadataStore

log = structlog.get_logger("chainproof.decisions")

#: Records per write (one transaction).
_BATCH = 500
#: Seconds between two attempts to reach the database, at most.
DEFAULT_RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """What the decision log keeps beside the decision itself."""

    project: str
    decision: Decision
    request_uid: str = ""
    cluster: str = ""
    namespace: str = ""
    workload: str = ""  # Kind/name
    #: The pod's service account (as its spec names it), for replay under another policy.
    service_account: str = ""
    operation: str = ""
    outcome: str = ""  # allowed, denied, dry-run-would-deny, breakglass, error
    message: str = ""
    breakglass: bool = False
    #: A breakglass's justification and expiry (RFC 3339), when breakglass admitted it.
    breakglass_justification: str = ""
    breakglass_expires: str = ""
    #: The API server asked for a dry run: nothing was going to be created.
    dry_run: bool = False
    #: Tags the mutating webhook pinned to digests (container location → "tag -> pinned").
    tag_resolutions: Mapping[str, str] = field(default_factory=dict)


def new_decision_id(now: datetime) -> str:
    # Time first so IDs sort chronologically; randomness after it so IDs never collide.
    return f"{int(now.timestamp() * 1_000_000):016x}-{uuid.uuid4().hex[:16]}"


def decision_record(entry: DecisionEntry, now: datetime) -> DecisionRecord:
    decision = entry.decision
    images = tuple(dict.fromkeys(i.reference for i in decision.images if i.reference is not None))
    data: dict[str, Any] = {
        "requestUid": entry.request_uid,
        "cluster": entry.cluster,
        "namespace": entry.namespace,
        "workload": entry.workload,
        "serviceAccount": entry.service_account,
        "operation": entry.operation,
        "outcome": entry.outcome or decision.outcome.value,
        # The images as the spec wrote them, in order: what a replay judges again
        # (store.judge.RecordedAdmission) without reading the explained decision.
        "requestImages": [i.image for i in decision.images],
        "breakglass": entry.breakglass,
        "dryRun": entry.dry_run,
        "message": entry.message,
        "decision": decision.to_dict(),
    }
    if entry.tag_resolutions:
        data["tagResolutions"] = dict(entry.tag_resolutions)
    if entry.breakglass:
        data["breakglassJustification"] = entry.breakglass_justification
        data["breakglassExpires"] = entry.breakglass_expires
    return DecisionRecord(
        decision_id=new_decision_id(now),
        project=entry.project,
        time=now,
        outcome=entry.outcome or decision.outcome.value,
        namespace=entry.namespace,
        images=images,
        data=data,
    )


def _text(value: Any) -> str:
    return safe_text(value if isinstance(value, str) else repr(value))[0]


def degraded_record(record: DecisionRecord, reason: str) -> DecisionRecord:
    """``record`` made storable, saying why and what changed (``logDegraded``)."""
    data, changed = storable(dict(record.data))
    data["logDegraded"] = {"reason": _text(reason)[:500], "changed": changed}
    return replace(
        record,
        project=_text(record.project),
        outcome=_text(record.outcome),
        namespace=_text(record.namespace),
        images=tuple(_text(i) for i in record.images),
        data=data,
    )


def minimal_record(record: DecisionRecord, reason: str) -> DecisionRecord:
    """The least a record can say (its ID, time, project and outcome), for when even the
    degraded form was refused."""
    return DecisionRecord(
        decision_id=record.decision_id,
        project=_text(record.project)[:200],
        time=record.time,
        outcome=_text(record.outcome)[:100],
        namespace="",
        images=(),
        data={"logDegraded": {"reason": _text(reason)[:500], "minimal": True}},
    )


def _entry_fallback(entry: DecisionEntry, now: datetime, reason: str) -> DecisionRecord:
    """A record for an entry whose decision could not even be turned into a record."""
    outcome = entry.outcome or "error"
    data = {
        "requestUid": entry.request_uid,
        "cluster": entry.cluster,
        "namespace": entry.namespace,
        "workload": entry.workload,
        "operation": entry.operation,
        "outcome": outcome,
        "message": entry.message,
    }
    record = DecisionRecord(new_decision_id(now), entry.project, now, outcome, entry.namespace, ())
    return degraded_record(replace(record, data=data), reason)


class DecisionLogMetrics:
    """Collectors made unregistered; :meth:`register` exposes them on /metrics."""

    def __init__(self) -> None:
        self.queued = Gauge(
            "chainproof_decision_log_queued",
            "Decision records in memory waiting to be written (queued and being written).",
            registry=None,
        )
        self.spilled = Gauge(
            "chainproof_decision_log_spilled",
            "Decision records in this process's spill files, waiting to be replayed.",
            registry=None,
        )
        self.written = Counter(
            "chainproof_decision_log_written",
            "Decision records stored in the database.",
            registry=None,
        )
        self.degraded = Counter(
            "chainproof_decision_log_degraded",
            "Decision records stored in a degraded form (a value could not be stored as is).",
            registry=None,
        )
        self.lost = Counter(
            "chainproof_decision_log_lost",
            "Decision records lost: neither stored nor spilled. Should stay 0; alert on it.",
            registry=None,
        )
        self.write_failures = Counter(
            "chainproof_decision_log_write_failures",
            "Failed attempts to write a batch of decision records (retried).",
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        for collector in (
            self.queued,
            self.spilled,
            self.written,
            self.degraded,
            self.lost,
            self.write_failures,
        ):
            registry.register(collector)


class _Rejected(Exception):
    """The database refused a batch for what is in it (not because it is down)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def _transient(exc: BaseException) -> bool:
    # The store turns every lost or refused connection into Unavailable; the rest are also
    # about reaching the database, not about the records.
    return isinstance(exc, Unavailable | OSError | TimeoutError)


class DecisionLog:
    """Records decisions in the background; see the module docstring for the guarantees.

    Without :meth:`start` (tools, some tests) each record is written inline.
    """

    def __init__(
        self,
        store: MetadataStore,
        tokens: PageTokenCodec,
        clock: Clock = utc_now,
        max_queue: int = 10_000,
        *,
        spill: DecisionSpill | None = None,
        retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._max_queue = max_queue
        self._spill = spill
        self._retry_max = retry_max_seconds
        # Entries wait with their time; records (and their JSON) are built by the writer, off
        # the review path.
        self._queue: asyncio.Queue[tuple[DecisionEntry, datetime]] = asyncio.Queue()
        #: Records taken from the queue or a spill file and not yet confirmed stored.
        self._in_flight: list[DecisionRecord] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.metrics = DecisionLogMetrics()
        self.metrics.queued.set_function(lambda: self._queue.qsize() + len(self._in_flight))
        self.metrics.spilled.set_function(lambda: spill.pending if spill is not None else 0)
        self.written = 0
        self.lost = 0
        self.degraded = 0
        self.linger_seconds = 0.05

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the writer as a task of its own (see :meth:`run` for a caller's task group)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            self._replay_pending()

    async def run(self) -> None:
        """Be the writer until :meth:`close`: a worker for the caller's task group (the
        server runs it beside REST and gRPC). Until it runs, records are written inline."""
        if self._task is not None:
            raise RuntimeError("the decision log writer is already running")
        self._task = asyncio.current_task()
        self._replay_pending()
        await self._run()

    def _replay_pending(self) -> None:
        if self._spill is not None and self._spill.waiting():
            self._idle.clear()  # replay what an earlier run left

    async def record(self, entry: DecisionEntry) -> None:
        now = self._clock()
        if self._task is None:
            # No writer: store it now, and say so at once if the database is down.
            try:
                await self._store_all([self._build(entry, now)], retry=False)
            except Exception as exc:
                self._count_lost(1, f"written inline and failed: {exc}")
                raise
            return
        self._idle.clear()
        # The bound covers what the writer holds too: memory stays within max_queue records.
        if self._queue.qsize() + len(self._in_flight) < self._max_queue:
            self._queue.put_nowait((entry, now))
        else:
            # The writer is behind (the database is slow or down): to disk, not to memory.
            self._spill_records([self._build(entry, now)])

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored (spilled records included)."""
        if self._task is None:
            return
        await self._idle.wait()

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Store what is pending, waiting at most ``grace_seconds`` for the database; what is
        still not stored then goes to the spill files, for the next start to replay."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        leftover = list(self._in_flight)
        self._in_flight.clear()
        while not self._queue.empty():
            entry, now = self._queue.get_nowait()
            leftover.append(self._build(entry, now))
        if leftover:
            self._spill_records(leftover)
        if self._spill is not None:
            with contextlib.suppress(OSError):
                self._spill.seal()

    # ------------------------------------------------------------------ the writer

    async def _run(self) -> None:
        while True:
            if self._queue.empty():
                if self._spill is not None and self._spill.waiting():
                    await self._replay()
                    continue
                self._idle.set()
            # Whatever leaves the queue is in _in_flight at once: close() spills it if the
            # writer is stopped before it is stored.
            self._in_flight = [self._build(*await self._queue.get())]
            if self.linger_seconds:
                # One transaction per record costs a commit each; under load, wait a moment
                # so that one commit carries many records.
                await asyncio.sleep(self.linger_seconds)
            while not self._queue.empty() and len(self._in_flight) < _BATCH:
                self._in_flight.append(self._build(*self._queue.get_nowait()))
            await self._store_all(self._in_flight)
            self._in_flight = []

    async def _replay(self) -> None:
        assert self._spill is not None
        try:
            claimed = self._spill.claim()
        except OSError:
            log.exception("cannot read the decision spill directory; will try again")
            await asyncio.sleep(self._retry_max)
            return
        if claimed is None:
            return
        try:
            replayed = 0
            for batch in claimed.batches(_BATCH):
                self._in_flight = batch
                await self._store_all(batch)
                self._in_flight = []
                replayed += len(batch)
        except BaseException:
            # Stopping mid-replay: the file stays, whole, for the next run (records already
            # stored are recognised by their IDs then).
            self._in_flight = []
            self._spill.release(claimed)
            raise
        if claimed.damaged:
            self._count_lost(claimed.damaged, f"damaged lines in {claimed.path.name}")
        self._spill.done(claimed)
        log.info("decision spill file replayed", file=claimed.path.name, decisions=replayed)

    def _build(self, entry: DecisionEntry, now: datetime) -> DecisionRecord:
        try:
            return decision_record(entry, now)
        except Exception as exc:  # a decision that cannot be described is still recorded
            log.exception("decision could not be turned into a record", uid=entry.request_uid)
            self._degraded(1)
            return _entry_fallback(entry, now, f"record not built: {type(exc).__name__}: {exc}")

    def _spill_records(self, records: Sequence[DecisionRecord]) -> None:
        if self._spill is None:
            self._count_lost(len(records), "the queue is full and no spill directory is set")
            return
        lines: list[bytes] = []
        for record in records:
            try:
                lines.append(encode_record(record))
            except (orjson.JSONEncodeError, TypeError) as exc:
                self._degraded(1)
                lines.append(encode_record(degraded_record(record, f"not encodable: {exc}")))
        try:
            self._spill.append(lines)
        except OSError as exc:
            self._count_lost(len(records), f"spill failed: {exc}")

    def _count_lost(self, n: int, why: str) -> None:
        self.lost += n
        self.metrics.lost.inc(n)
        log.error("decision records lost", decisions=n, reason=why)

    def _degraded(self, n: int) -> None:
        self.degraded += n
        self.metrics.degraded.inc(n)

    async def _store_all(self, records: Sequence[DecisionRecord], *, retry: bool = True) -> None:
        """Store every record: retry while the database is down (unless ``retry`` is false:
        then Unavailable is raised), and isolate what it refuses."""
        chunks: list[Sequence[DecisionRecord]] = [records]
        while chunks:
            chunk = chunks.pop()
            if not chunk:
                continue
            try:
                await self._write_retrying(chunk, retry=retry)
            except _Rejected as exc:
                if len(chunk) > 1:
                    # Halve until the refused records stand alone; the rest go through.
                    middle = len(chunk) // 2
                    chunks += [chunk[middle:], chunk[:middle]]
                else:
                    await self._store_refused(chunk[0], exc, retry=retry)

    async def _store_refused(self, record: DecisionRecord, exc: _Rejected, *, retry: bool) -> None:
        if await self._already_stored(record, retry=retry):
            return  # an earlier attempt's commit went through after all
        log.warning("decision record refused; storing it degraded", error=str(exc))
        for fallback in (degraded_record, minimal_record):
            try:
                await self._write_retrying([fallback(record, str(exc))], retry=retry)
            except _Rejected as again:
                exc = again
                continue
            self._degraded(1)
            return
        self._count_lost(1, f"refused even in its minimal form: {exc}")
        log.error("lost decision record", decision_id=record.decision_id, record=repr(record))

    async def _already_stored(self, record: DecisionRecord, *, retry: bool) -> bool:
        # The log has no get-by-ID; the ID's own time narrows the search to one instant.
        query = DecisionQuery(
            _text(record.project),
            since=record.time,
            until=record.time + timedelta(microseconds=1),
        )
        delay = 0.1
        while True:
            try:
                async with self._store.session(readonly=True) as s:
                    rows = await s.decisions.page(query, None, 10_000)
                return any(r.decision_id == record.decision_id for r in rows)
            except Exception as exc:
                if not _transient(exc):
                    return False
                if not retry:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def _write_retrying(
        self, records: Sequence[DecisionRecord], *, retry: bool = True
    ) -> None:
        delay = 0.1
        failures = 0
        while True:
            try:
                async with self._store.session() as s:
                    await s.decisions.insert(records)
                    # decision.made for each, in the same transaction (the outbox).
                    await outbox.append(s, outbox.decision_events(records))
            except Exception as exc:  # a dead writer would lose everything after it
                if not _transient(exc):
                    raise _Rejected(exc) from exc
                self.metrics.write_failures.inc()
                if not retry:
                    raise
                failures += 1
                # Loud at the first failure, then once a minute or so: no log flood.
                if failures == 1 or failures % 12 == 0:
                    log.warning(
                        "decision log cannot reach the database; retrying",
                        decisions=len(records),
                        attempts=failures,
                        error=str(exc),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            self.written += len(records)
            self.metrics.written.inc(len(records))
            if failures:
                log.info("decision log reached the database again", attempts=failures + 1)
            return

    # ------------------------------------------------------------------ queries

    async def list(
        self,
        query: DecisionQuery,
        size: int | None,
        token: str,
        *,
        size_of: JsonSizer = json_size,
    ) -> Page[dict[str, Any]]:
        parse_project_name(f"projects/{query.project}")
        for param, value in (
            ("image", query.image),
            ("namespace", query.namespace),
            ("outcome", query.outcome),
        ):
            if value is not None:
                check_indexed_text(value, param)
        for param, when in (("since", query.since), ("until", query.until)):
            if when is not None:
                check_time(when, param)
        limit = page_size(size)
        scope = ListScope(
            "decisions",
            query.project,
            repr((query.image, query.namespace, query.outcome, query.since, query.until)),
        )
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session(readonly=True) as s:
            rows = await s.decisions.page(query, after, limit + 1)
        items = [
            {
                "name": f"projects/{r.project}/decisions/{r.decision_id}",
                "time": rfc3339(r.time),
                "images": list(r.images),
                **r.data,
            }
            for r in rows
        ]
        # Bounded by count and by bytes; the token resumes after the last item returned.
        count = bounded_count(items, limit, size_of, lambda d: f"decision {d['name']}")
        token_out = (
            self._tokens.encode(scope, rows[count - 1].decision_id) if len(rows) > count else ""
        )
        return Page(items[:count], token_out)
