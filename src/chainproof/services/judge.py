"""Judging a deployment: load the project's policy and attestors, gather verified evidence for
each image, and evaluate. Also the decision log.

The evaluation itself is pure (:func:`chainproof.policy.evaluate`); this module only fetches
what it needs and passes the time in. A project without a policy denies every image: an
unconfigured judge must not silently admit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.names import parse_project_name
from chainproof.domain.pagination import ListScope, PageTokenCodec, page_size
from chainproof.errors import InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
    evaluate,
)
from chainproof.services.evidence import EvidenceGatherer
from chainproof.services.grafeas import Clock, Page, utc_now
from chainproof.services.judge_resources import JudgeResources
from chainproof.store.port import DecisionQuery, DecisionRecord, MetadataStore

log = structlog.get_logger("chainproof.judge")


def no_policy_decision(project: str, request: AdmissionRequest, now: datetime) -> Decision:
    reason = (
        f"projects/{project} has no policy, so nothing may run: set one with "
        f"PUT /v1/projects/{project}/policy (or `chainproof policy set`)"
    )
    images = tuple(
        ImageDecision(
            image=text,
            reference=None,
            rule=RuleSelection("no-policy", None, None, None, "no policy is configured"),
            requirements=(RequirementResult("policy", "a policy", False, reason),),
            outcome=Outcome.DENIED,
        )
        for text in request.images
    )
    return Decision(images, Outcome.DENIED, now, f"projects/{project}/policy", "")


def _parse_all(texts: Sequence[str]) -> list[ImageReference]:
    parsed: list[ImageReference] = []
    for text in texts:
        # Unparseable references are judged (and refused) by the evaluator with a reason.
        with contextlib.suppress(InvalidArgument):
            parsed.append(parse_image_reference(text))
    return parsed


class Judge:
    """Evaluates a request against the stored policy of a project."""

    def __init__(
        self,
        resources: JudgeResources,
        gatherer: EvidenceGatherer,
        clock: Clock = utc_now,
    ) -> None:
        self._resources = resources
        self.gatherer = gatherer
        self._clock = clock

    async def evaluate(
        self,
        project: str,
        request: AdmissionRequest,
        *,
        evidence_projects: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Decision:
        parse_project_name(f"projects/{project}")
        now = now or self._clock()
        policy = await self._resources.load_policy(project)
        if policy is None:
            return no_policy_decision(project, request, now)
        attestors = await self._resources.load_attestors(policy.referenced_attestors())
        evidence = await self.gatherer.gather(
            _parse_all(request.images), attestors, evidence_projects or (project,), now
        )
        return evaluate(policy, request, evidence, now)


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """What the decision log keeps beside the decision itself."""

    project: str
    decision: Decision
    request_uid: str = ""
    cluster: str = ""
    namespace: str = ""
    workload: str = ""  # Kind/name
    operation: str = ""
    outcome: str = ""  # allowed, denied, dry-run-would-deny, breakglass, error
    message: str = ""
    breakglass: bool = False
    #: The API server asked for a dry run: nothing was going to be created.
    dry_run: bool = False


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
        "operation": entry.operation,
        "outcome": entry.outcome or decision.outcome.value,
        "breakglass": entry.breakglass,
        "dryRun": entry.dry_run,
        "message": entry.message,
        "decision": decision.to_dict(),
    }
    return DecisionRecord(
        decision_id=new_decision_id(now),
        project=entry.project,
        time=now,
        outcome=entry.outcome or decision.outcome.value,
        namespace=entry.namespace,
        images=images,
        data=data,
    )


class DecisionLog:
    """Records decisions; writes happen in the background, in batches, off the review path.

    A review must answer within its deadline even when the database is slow, so the log is a
    bounded queue flushed by one task. Anything still queued is written on close. When the
    queue is full, the record is written inline (slower, never lost).
    """

    def __init__(
        self,
        store: MetadataStore,
        tokens: PageTokenCodec,
        clock: Clock = utc_now,
        max_queue: int = 10_000,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._queue: asyncio.Queue[DecisionRecord] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def record(self, entry: DecisionEntry) -> DecisionRecord:
        record = decision_record(entry, self._clock())
        if self._task is None:
            await self._write([record])
            return record
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            await self._write([record])
        return record

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored."""
        await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:  # keep logging the failure; a dead writer would lose everything
                log.exception("decision log write failed", decisions=len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, records: Sequence[DecisionRecord]) -> None:
        async with self._store.session() as s:
            for r in records:
                await s.insert_decision(r)
        self.written += len(records)

    async def list(
        self, query: DecisionQuery, size: int | None, token: str
    ) -> Page[dict[str, Any]]:
        parse_project_name(f"projects/{query.project}")
        limit = page_size(size)
        scope = ListScope(
            "decisions",
            query.project,
            repr((query.image, query.namespace, query.outcome, query.since, query.until)),
        )
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session() as s:
            rows = await s.list_decisions(query, after, limit + 1)
        items = [
            {
                "name": f"projects/{r.project}/decisions/{r.decision_id}",
                "time": _iso(r.time),
                "images": list(r.images),
                **r.data,
            }
            for r in rows[:limit]
        ]
        token_out = (
            self._tokens.encode(scope, rows[limit - 1].decision_id) if len(rows) > limit else ""
        )
        return Page(items, token_out)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
