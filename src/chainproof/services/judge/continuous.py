"""Continuous validation: judging running pods again whenever their evidence changes.

Owns the re-judging worker the leader runs (ADR 0112):

* it reads the outbox directly, as a second reader beside the notifier (``unjudged`` /
  ``mark_judged``), and marks a batch of events judged in the same transaction that writes
  the violations they caused, so a crash in between judges the batch again (at least once,
  and the violation writes are idempotent: a pod's open violation is updated, not doubled;
  two leaders overlapping for a moment cannot double it either, the store keeps the first
  one and this worker drops what it did not write, ADR 0190);
* each event is resolved to the running pods it can change, never more: an occurrence (or
  every occurrence of a changed note) → the pods running its image, in the clusters of the
  projects whose judgement reads that occurrence's project (the project itself, or one holding
  the note of an attestor its policy names); a policy change → every running pod of that
  project's clusters; an attestor change → those of every project whose policy names it;
* a scan ages past its freshness limit, a breakglass window closes: each judged pod is
  scheduled again at the first moment its verdict could change with the same evidence
  (``RequirementResult.valid_until``, ``RunningContainer.breakglass_until``), not polled;
* every running pod is judged once when this replica starts to lead (which rebuilds that
  schedule), and again every ``sweep_hours``;
* pods the inventory opens, changes (a digest learnt) or closes are judged as they do.

Judging is the admission judge's (services.judge.judging.Judge) on a cache made for each
batch: the evidence is read after the events that caused the batch committed, so nothing
stale is served (the server judge's cache may not have heard another replica's write yet).
A violation follows Binary Authorization's continuous-validation ``pod_event``
(policy.violations); opening, closing and acting on one are outbox events written with it.
Kubernetes Events, the pod annotation and eviction (opt-in per namespace) happen after the
commit, each attempt recorded in the violation; transient failures are tried again with
backoff, within a deadline per batch (services.judge.pod_actions, ADR 0191).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.domain.names import parse_note_name
from chainproof.errors import ChainproofError
from chainproof.policy import AdmissionRequest
from chainproof.policy.decision import Decision, Outcome
from chainproof.policy.violations import (
    GONE_REASON,
    PodVerdict,
    Violation,
    ViolationAction,
    close_for_gone_pod,
    pod_verdict,
    transition,
)
from chainproof.services import outbox
from chainproof.services.common import Clock
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.pod_actions import ActionRetryPolicy, ActionRunner
from chainproof.services.judge.resources import JudgeResources
from chainproof.sources.kubernetes.port import PodActions
from chainproof.sources.registry.client import REVIEW_DEADLINE, Deadline
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import InventoryQuery, PodKey, ViolationQuery

log = structlog.get_logger("chainproof.continuous")

VIOLATION_ANNOTATION = "chainproof.dev/violation"
#: Occurrences of one changed note listed to find the images it concerns; past it, every
#: running pod of the projects concerned is judged instead (a bound that widens, never skips).
MAX_NOTE_OCCURRENCES = 5_000
#: Registry reads of one batch stop after this long (a pod whose evidence could not be read
#: is judged as the admission judge would: denied, saying why).
BATCH_DEADLINE_SECONDS = 120.0
_ALL_ROWS = 10_000_000
#: Violations acted on at once (each one's actions in turn).
_ACTING_AT_ONCE = 8


@dataclass(frozen=True, slots=True)
class ContinuousOptions:
    breakglass_enabled: bool = True
    batch_events: int = 2000
    poll_seconds: float = 0.5
    sweep_every: timedelta | None = timedelta(hours=24)
    kubernetes_events: bool = False
    annotate_pods: bool = False
    #: ``cluster/namespace`` or a bare namespace (every cluster).
    evict_namespaces: frozenset[str] = frozenset()
    #: Kubernetes actions failing transiently are tried again (services.judge.pod_actions).
    action_retries: ActionRetryPolicy = field(default_factory=ActionRetryPolicy)
    #: Acting on the pods of one batch stops after this long, retries included.
    actions_budget_seconds: float = 60.0


@dataclass
class _Targets:
    """Pods to judge, with what made each due (the violation's ``cause``)."""

    pods: dict[PodKey, str] = field(default_factory=dict)
    images: dict[tuple[str, str], str] = field(default_factory=dict)  # (project, image)
    projects: dict[str, str] = field(default_factory=dict)
    expired_breakglass: set[PodKey] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.pods or self.images or self.projects)


@dataclass(frozen=True, slots=True)
class BatchResult:
    judged: int
    opened: tuple[Violation, ...]
    closed: tuple[Violation, ...]
    updated: tuple[Violation, ...]


ActionsFor = Callable[[str], Awaitable[PodActions | None]]


class ContinuousValidation:
    def __init__(
        self,
        store: MetadataStore,
        resources: JudgeResources,
        new_judge: Callable[[datetime], Judge],
        clock: Clock,
        *,
        cluster_projects: Mapping[str, str],
        default_project: str,
        options: ContinuousOptions | None = None,
        actions_for: ActionsFor | None = None,
        new_id: Callable[[], str] | None = None,
        on_counts: Callable[[dict[tuple[str, str, str], int]], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._store = store
        self._resources = resources
        #: A judge for one batch, judging at the given time (made by the composition root).
        self.new_judge = new_judge
        self._clock = clock
        self._cluster_projects = dict(cluster_projects)
        self._default_project = default_project
        self.options = options or ContinuousOptions()
        self._actions_for = actions_for
        self._new_id = new_id or outbox.new_event_id
        self._on_counts = on_counts
        self._monotonic = monotonic
        self._sleep = sleep
        self._jitter = jitter
        #: (when, pod, what falls due) — each pod's next moment its verdict could change.
        self._schedule: list[tuple[datetime, PodKey, str]] = []
        self._scheduled: dict[PodKey, datetime] = {}
        self._pending: dict[PodKey, str] = {}
        self._wake = asyncio.Event()
        self.running = False

    # ------------------------------------------------------------------ who judges what

    def project_of(self, cluster: str) -> str:
        return self._cluster_projects.get(cluster, self._default_project)

    @property
    def projects(self) -> list[str]:
        return sorted({self._default_project, *self._cluster_projects.values()})

    def clusters_of(self, project: str) -> tuple[str, ...]:
        """The clusters to read rows of for ``project`` (empty: every cluster, filtered by
        :meth:`project_of` afterwards; rows of clusters no setting names belong to the
        default project)."""
        if project == self._default_project:
            return ()
        return tuple(c for c, p in self._cluster_projects.items() if p == project)

    def _in_project(self, project: str, rows: Iterable[RunningContainer]) -> list[RunningContainer]:
        return [r for r in rows if self.project_of(r.cluster) == project]

    # ------------------------------------------------------------------ the worker

    async def run(self) -> None:
        """The leader's task: a sweep, then events, schedule and sweeps until cancelled."""
        self.running = True
        try:
            await self.sweep("the re-judging worker started")
            next_sweep = self._next_sweep()
            while True:
                worked = await self.process_outbox()
                worked = await self.process_due() or worked
                worked = await self.process_pending() or worked
                if next_sweep is not None and time.monotonic() >= next_sweep:
                    await self.sweep("periodic sweep")
                    next_sweep = self._next_sweep()
                if not worked:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_seconds())
        finally:
            self.running = False

    def _next_sweep(self) -> float | None:
        every = self.options.sweep_every
        return time.monotonic() + every.total_seconds() if every else None

    def _idle_seconds(self) -> float:
        wait = self.options.poll_seconds
        if self._schedule:
            until_due = (self._schedule[0][0] - self._clock()).total_seconds()
            wait = min(wait, max(until_due, 0.0))
        return wait

    async def inventory_changed(self, cluster: str, changes: InventoryChanges) -> None:
        """The inventory's listener: pods that started, changed or ended are judged soon."""
        if not self.running:
            return  # not the leader's worker: the leader sweeps when it starts
        for row in (*changes.opened, *changes.changed, *changes.closed):
            self._pending.setdefault((row.cluster, row.namespace, row.pod), "the pod changed")
        self._wake.set()

    async def process_outbox(self) -> int:
        """One batch of unjudged outbox events; returns how many were read."""
        async with self._store.session(readonly=True) as s:
            events = await s.outbox.unjudged(self.options.batch_events)
        if not events:
            return 0
        targets = await self.resolve(events)
        await self.judge(targets, judged=[e.sequence for e in events])
        return len(events)

    async def process_due(self) -> int:
        now = self._clock()
        targets = _Targets()
        while self._schedule and self._schedule[0][0] <= now:
            when, pod, why = heapq.heappop(self._schedule)
            if self._scheduled.get(pod) != when:
                continue  # rescheduled since
            del self._scheduled[pod]
            targets.pods.setdefault(pod, why)
            if why == "breakglass expired":
                targets.expired_breakglass.add(pod)
        if not targets:
            return 0
        await self.judge(targets)
        return len(targets.pods)

    async def process_pending(self) -> int:
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        await self.judge(_Targets(pods=pending))
        return len(pending)

    async def sweep(self, cause: str) -> BatchResult:
        """Judge every running pod of every project."""
        return await self.judge(_Targets(projects={p: cause for p in self.projects}))

    # ------------------------------------------------------------------ events → targets

    async def resolve(self, events: Sequence[ChangeEvent]) -> _Targets:
        """The pods (by image or by project) each event can change, and why."""
        targets = _Targets()
        reads = _ProjectReads(self._resources)
        notes: dict[tuple[str, str], str] = {}
        for e in events:
            what = f"{e.type.value.removeprefix('dev.chainproof.')} {e.subject}"
            if e.type in (
                EventType.OCCURRENCE_CREATED,
                EventType.OCCURRENCE_UPDATED,
                EventType.OCCURRENCE_DELETED,
            ):
                image = str(e.data.get("resourceUri") or "")
                if not image:
                    continue  # an event written before events named their image
                note_project = _note_project(str(e.data.get("noteName") or ""))
                for project in await self._reading(reads, e.project, note_project):
                    targets.images.setdefault((project, image), what)
            elif e.type is EventType.NOTE_CHANGED:
                try:
                    note = parse_note_name(e.subject)
                except ChainproofError:
                    continue
                notes.setdefault((note.project, note.note_id), what)
            elif e.type is EventType.POLICY_CHANGED:
                if e.project in self.projects:
                    targets.projects.setdefault(e.project, what)
            elif e.type is EventType.ATTESTOR_CHANGED:
                for project in self.projects:
                    if e.subject in await reads.attestors(project) or project == e.project:
                        targets.projects.setdefault(project, what)
        for (note_project, note_id), what in notes.items():
            await self._note_targets(reads, note_project, note_id, what, targets)
        return targets

    async def _reading(
        self, reads: _ProjectReads, occurrence_project: str, note_project: str
    ) -> list[str]:
        """The judged projects whose judgement reads an occurrence of ``occurrence_project``
        filed under a note of ``note_project``: the project itself (its findings, scans, SBOMs,
        VEX), and any whose policy names an attestor whose note is in ``note_project`` (its
        attestations, wherever filed). Another project's occurrence about the same image
        concerns nobody else."""
        return [
            p
            for p in self.projects
            if p == occurrence_project or note_project in await reads.note_projects(p)
        ]

    async def _note_targets(
        self, reads: _ProjectReads, note_project: str, note_id: str, what: str, targets: _Targets
    ) -> None:
        found: list[tuple[str, str]] = []  # (occurrence project, image)
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                page = await s.occurrences.page_of_note(note_project, note_id, None, after, 500)
                found += [(r.project, r.resource) for r in page]
                if len(page) < 500 or len(found) > MAX_NOTE_OCCURRENCES:
                    break
                after = page[-1].occurrence_id
        if len(found) > MAX_NOTE_OCCURRENCES:
            for o in {o for o, _ in found}:
                for project in await self._reading(reads, o, note_project):
                    targets.projects.setdefault(project, what)
            return
        for occurrence_project, image in dict.fromkeys(found):
            for project in await self._reading(reads, occurrence_project, note_project):
                targets.images.setdefault((project, image), what)

    # ------------------------------------------------------------------ judging

    async def judge(self, targets: _Targets, *, judged: Sequence[int] = ()) -> BatchResult:
        """Judge the pods ``targets`` names, write what changed (and mark ``judged`` outbox
        events) in one transaction, then act on the pods."""
        now = self._clock()
        pods = dict(targets.pods)
        async with self._store.session(readonly=True) as s:
            rows: list[RunningContainer] = []
            for project, cause in targets.projects.items():
                query = InventoryQuery(clusters=self.clusters_of(project))
                found = await s.inventory.list_rows(query, _ALL_ROWS)
                for r in self._in_project(project, found):
                    pods.setdefault((r.cluster, r.namespace, r.pod), cause)
                # And pods with an open violation that no longer run (closed as gone).
                for v in await s.violations.list_rows(ViolationQuery(project), _ALL_ROWS):
                    pods.setdefault(_pod_of(v), cause)
            by_project: dict[str, dict[str, str]] = {}
            for (project, image), cause in targets.images.items():
                by_project.setdefault(project, {}).setdefault(image, cause)
            for project, images in by_project.items():
                query = InventoryQuery(clusters=self.clusters_of(project), images=tuple(images))
                for r in self._in_project(project, await s.inventory.list_rows(query, _ALL_ROWS)):
                    pods.setdefault((r.cluster, r.namespace, r.pod), images[r.image])
            if pods:
                rows = await s.inventory.open_rows_of_pods(list(pods))
        if not pods and not judged:
            return BatchResult(0, (), (), ())
        running: dict[PodKey, list[RunningContainer]] = {}
        for r in rows:
            running.setdefault((r.cluster, r.namespace, r.pod), []).append(r)
        verdicts = await self._verdicts(running, now)
        opened: list[Violation] = []
        closed: list[Violation] = []
        updated: list[Violation] = []
        events: list[ChangeEvent] = []
        async with self._store.session() as s:
            current = await s.violations.open_for_pods(list(pods))
            for pod, cause in pods.items():
                project = self.project_of(pod[0])
                now_open = current.get(pod)
                if pod in targets.expired_breakglass:
                    expired = min(
                        (r.breakglass_until for r in running.get(pod, ()) if r.breakglass_until),
                        default=now,
                    )
                    events.append(outbox.breakglass_expired_event(project, *pod, expired, now))
                if pod not in running:
                    if now_open is not None:
                        closed.append(close_for_gone_pod(now_open, now))
                    continue
                verdict = verdicts.get(pod)
                if verdict is None:
                    continue  # excused (breakglass) or nothing with a digest to judge
                change = transition(
                    now_open, verdict, project=project, cause=cause, now=now, new_id=self._new_id()
                )
                if change.opened:
                    opened.append(change.opened)
                if change.closed:
                    closed.append(change.closed)
                if change.updated:
                    updated.append(change.updated)
            refused = await s.violations.put_many([*opened, *closed, *updated])
            if refused:
                # Another leader, overlapping this one for a moment, opened or closed these
                # pods' violations first (ADR 0190): its rows stand, and it announces and acts
                # on them; this batch drops its own.
                log.info(
                    "another leader wrote these violations first; kept its rows",
                    violations=sorted(refused),
                )
                opened = [v for v in opened if v.violation_id not in refused]
                closed = [v for v in closed if v.violation_id not in refused]
                updated = [v for v in updated if v.violation_id not in refused]
            events += [outbox.violation_event(EventType.VIOLATION_OPENED, v, now) for v in opened]
            events += [outbox.violation_event(EventType.VIOLATION_CLOSED, v, now) for v in closed]
            await outbox.append(s, events)
            if judged:
                await s.outbox.mark_judged(judged)
            counts = await s.violations.count_open() if self._on_counts else None
        if counts is not None and self._on_counts is not None:
            self._on_counts(counts)
        if opened or closed:
            log.info(
                "continuous validation",
                judged=len(verdicts),
                opened=len(opened),
                closed=len(closed),
            )
        await self._act(opened, closed)
        return BatchResult(len(verdicts), tuple(opened), tuple(closed), tuple(updated))

    async def _verdicts(
        self, running: Mapping[PodKey, Sequence[RunningContainer]], now: datetime
    ) -> dict[PodKey, PodVerdict]:
        # A judge for this batch alone: its cache holds what was read after the batch's
        # events committed, and dies with the batch.
        judge = self.new_judge(now)
        requests: dict[PodKey, AdmissionRequest] = {}
        excused: dict[PodKey, datetime] = {}
        for pod, rows in running.items():
            images = tuple(dict.fromkeys(r.image for r in rows if "@" in r.image))
            if not images:
                continue  # nothing known by digest yet: the kubelet has not said
            until = min((r.breakglass_until for r in rows if r.breakglass_until), default=None)
            if self.options.breakglass_enabled and until is not None and until > now:
                excused[pod] = until
                continue
            requests[pod] = AdmissionRequest(
                images=images,
                cluster=pod[0],
                namespace=pod[1],
                service_account=rows[0].service_account,
            )
        for pod, until in excused.items():
            self._plan(pod, until, "breakglass expired")
        by_project: dict[str, list[PodKey]] = {}
        for pod in requests:
            by_project.setdefault(self.project_of(pod[0]), []).append(pod)
        verdicts: dict[PodKey, PodVerdict] = {}
        token = REVIEW_DEADLINE.set(Deadline(BATCH_DEADLINE_SECONDS))
        try:
            for project, keys in by_project.items():
                await judge.prefetch(project, [requests[k] for k in keys], now=now)
                for pod in keys:
                    decision = await judge.evaluate(project, requests[pod], now=now)
                    rows = running[pod]
                    containers: dict[str, list[str]] = {}
                    for r in rows:
                        containers.setdefault(r.image, []).append(r.container)
                    verdicts[pod] = pod_verdict(
                        pod[0],
                        pod[1],
                        pod[2],
                        (rows[0].workload_kind, rows[0].workload_name),
                        {i: ", ".join(c) for i, c in containers.items()},
                        decision,
                    )
                    valid_until = _valid_until(decision)
                    if valid_until is not None:
                        self._plan(pod, valid_until, "evidence aged past its limit")
        finally:
            REVIEW_DEADLINE.reset(token)
            await judge.close()
        return verdicts

    def _plan(self, pod: PodKey, when: datetime, why: str) -> None:
        known = self._scheduled.get(pod)
        if known is not None and known <= when:
            return
        self._scheduled[pod] = when
        heapq.heappush(self._schedule, (when, pod, why))

    def next_due(self, pod: PodKey) -> datetime | None:
        return self._scheduled.get(pod)

    # ------------------------------------------------------------------ acting on pods

    def _evicts(self, cluster: str, namespace: str) -> bool:
        wanted = self.options.evict_namespaces
        return namespace in wanted or f"{cluster}/{namespace}" in wanted

    async def _act(self, opened: Sequence[Violation], closed: Sequence[Violation]) -> None:
        o = self.options
        if self._actions_for is None or not (
            o.kubernetes_events or o.annotate_pods or o.evict_namespaces
        ):
            return
        runner = ActionRunner(
            o.action_retries,
            deadline=self._monotonic() + o.actions_budget_seconds,
            now=self._clock,
            monotonic=self._monotonic,
            sleep=self._sleep,
            **({"jitter": self._jitter} if self._jitter else {}),
        )
        # A few pods at a time: a slow cluster delays its own pods, not every pod's, and the
        # runner's deadline bounds the whole batch.
        turns = asyncio.Semaphore(_ACTING_AT_ONCE)

        async def act(v: Violation, opening: bool) -> list[ViolationAction]:
            async with turns:
                return await self._act_on(v, runner, opening=opening)

        done = await asyncio.gather(
            *(act(v, True) for v in opened),
            *(act(v, False) for v in closed if v.close_reason != GONE_REASON),
        )
        recorded: list[Violation] = []
        acted: list[Violation] = []
        for v, actions in zip(opened, done, strict=False):
            if actions:
                updated = replace(v, actions=v.actions + tuple(actions))
                recorded.append(updated)
                if any(a.action == "evict" for a in actions):
                    acted.append(updated)
        if recorded:
            now = self._clock()
            async with self._store.session() as s:
                # Only what is still as we wrote it: a later batch may have closed it.
                still = await s.violations.open_for_pods([_pod_of(v) for v in recorded])
                keep = [
                    v
                    for v in recorded
                    if _pod_of(v) in still and still[_pod_of(v)].violation_id == v.violation_id
                ]
                refused = await s.violations.put_many(keep)  # closed meanwhile: stays closed
                keep = [v for v in keep if v.violation_id not in refused]
                await outbox.append(
                    s,
                    [
                        outbox.violation_event(EventType.VIOLATION_ACTED, v, now)
                        for v in acted
                        if v in keep
                    ],
                )

    async def _act_on(
        self, v: Violation, runner: ActionRunner, *, opening: bool
    ) -> list[ViolationAction]:
        """Every attempt of every action on ``v``'s pod (only an opening's are recorded: a
        closed violation is final)."""
        assert self._actions_for is not None
        o = self.options
        try:
            actions = await self._actions_for(v.cluster)
        except Exception as exc:
            log.warning(
                "cannot reach the cluster to act on a violation", cluster=v.cluster, error=str(exc)
            )
            return [ViolationAction("connect", self._clock(), f"failed: {exc}"[:500])]
        if actions is None:
            return []
        done: list[ViolationAction] = []

        async def attempt(name: str, work: Callable[[], Awaitable[None]]) -> None:
            tried = await runner.run(name, work)
            for a in tried:
                if a.result != "done":
                    log.warning(
                        "action on a violating pod failed",
                        action=name,
                        pod=v.pod,
                        attempt=a.attempt,
                        error=a.result,
                    )
            done.extend(tried)

        if o.kubernetes_events:
            if opening:
                opened_message = f"chainproof: {v.name} opened: {v.explanation}"
                await attempt(
                    "event",
                    lambda: actions.record_event(
                        v.namespace, v.pod, "ViolatesPolicy", opened_message, warning=True
                    ),
                )
            else:
                closed_message = f"chainproof: {v.name} closed: {v.close_reason}"
                await attempt(
                    "event",
                    lambda: actions.record_event(
                        v.namespace, v.pod, "ConformsToPolicy", closed_message, warning=False
                    ),
                )
        if o.annotate_pods:
            value = v.name if opening else None
            await attempt(
                "annotate",
                lambda: actions.annotate(v.namespace, v.pod, {VIOLATION_ANNOTATION: value}),
            )
        if opening and self._evicts(v.cluster, v.namespace):
            await attempt("evict", lambda: actions.evict(v.namespace, v.pod))
        return done if opening else []


def _note_project(note_name: str) -> str:
    try:
        return parse_note_name(note_name).project
    except ChainproofError:
        return ""


def _pod_of(v: Violation) -> PodKey:
    return (v.cluster, v.namespace, v.pod)


def _valid_until(decision: Decision) -> datetime | None:
    """The first moment a passing requirement stops holding with the same evidence."""
    times = [
        r.valid_until
        for image in decision.images
        if image.outcome is not Outcome.DENIED
        for r in image.requirements
        if r.passed and r.valid_until is not None
    ]
    return min(times, default=None)


class _ProjectReads:
    """Per batch: each judged project's attestors and the projects of their notes."""

    def __init__(self, resources: JudgeResources) -> None:
        self._resources = resources
        self._attestors: dict[str, frozenset[str]] = {}
        self._notes: dict[str, frozenset[str]] = {}

    async def _load(self, project: str) -> None:
        if project in self._attestors:
            return
        config = await self._resources.load_config(project)
        names = frozenset(config.policy.referenced_attestors()) if config.policy else frozenset()
        notes: set[str] = set()
        for attestor in config.attestors.values():
            try:
                notes.add(parse_note_name(attestor.note_reference).project)
            except ChainproofError:
                continue
        self._attestors[project] = names
        self._notes[project] = frozenset(notes)

    async def attestors(self, project: str) -> frozenset[str]:
        await self._load(project)
        return self._attestors[project]

    async def note_projects(self, project: str) -> frozenset[str]:
        await self._load(project)
        return self._notes[project]
