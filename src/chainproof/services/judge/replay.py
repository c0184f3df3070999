"""Policy replay, diff and coverage: what a proposed policy would change, enforcing nothing.

Owns the reading and the judging; the comparisons are pure (:mod:`chainproof.policy.replay`).

* The *cases* are the admissions recorded in the decision log in a time window (each judged
  again as the webhook judged it: the images as the spec wrote them, cluster, namespace,
  service account) and the pods running now in the project's clusters (one case per pod).
* Each distinct image's evidence is gathered **once**, from the scribe, with the attestors of
  both policies, and every case is judged under both policies on that same evidence with the
  pure evaluator: a change of outcome is then the policy's doing, not the evidence's. The
  recorded outcome is shown beside it. Registry-sourced evidence is not read here (a replay
  of 100,000 admissions must not call registries); rules that count it are judged on the
  scribe's evidence alone, and the report says so.
* Bounds: at most :data:`MAX_ADMISSIONS` recorded admissions and :data:`MAX_RUNNING` running
  containers are read; more is refused, naming the bound (narrow ``since``). At most
  :data:`MAX_CHANGES` changes are listed, with the exact totals beside them and
  ``changesTruncated`` set when more changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.inventory import RunningContainer
from chainproof.domain.names import validate_project_id
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import InvalidArgument, PayloadTooLarge
from chainproof.policy import AdmissionRequest, Attestor, Decision, Evidence, Policy, evaluate
from chainproof.policy.replay import (
    CoverageReport,
    CoverageShift,
    OutcomeChange,
    ReplayCase,
    RuleChange,
    Subject,
    compare,
    coverage,
    coverage_shifts,
    rule_changes,
    summarise,
)
from chainproof.services.common import Clock, utc_now
from chainproof.services.judge.evidence import EvidenceGatherer
from chainproof.services.judge.judging import no_policy_decision
from chainproof.services.judge.resources import JudgeResources
from chainproof.store.port import DecisionQuery, MetadataStore
from chainproof.store.runtime_port import InventoryQuery

MAX_ADMISSIONS = 200_000
MAX_RUNNING = 100_000
MAX_CHANGES = 1_000
_PAGE = 1_000
#: Images per evidence read, and reads at once (each its own session).
_GATHER_CHUNK = 50
_GATHER_PARALLEL = 4


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Both sides' verdicts for every case, reduced to what changed."""

    since: datetime | None
    admissions: int
    running: int
    changes: tuple[OutcomeChange, ...]
    changed: int
    judged: int
    images: int
    policy_before: str
    policy_after: str
    rules: tuple[RuleChange, ...] = ()
    shifts: tuple[CoverageShift, ...] = ()
    notes: tuple[str, ...] = ()
    by_transition: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": rfc3339(self.since) if self.since else "",
            "admissions": self.admissions,
            "running": self.running,
            "judged": self.judged,
            "images": self.images,
            "changed": self.changed,
            "byTransition": self.by_transition,
            "changes": [c.to_dict() for c in self.changes],
            "changesTruncated": self.changed > len(self.changes),
            "policyBefore": self.policy_before,
            "policyAfter": self.policy_after,
            "ruleChanges": [r.to_dict() for r in self.rules],
            "coverageShifts": [s.to_dict() for s in self.shifts],
            "notes": list(self.notes),
        }


class PolicyReplay:
    def __init__(
        self,
        store: MetadataStore,
        resources: JudgeResources,
        gatherer: EvidenceGatherer,
        clusters: Callable[[str], Sequence[str]],
        clock: Clock = utc_now,
    ) -> None:
        """``gatherer`` reads the scribe only; ``clusters(project)`` names the project's
        inventory clusters."""
        self._store = store
        self._resources = resources
        self._gatherer = gatherer
        self._clusters = clusters
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def current_policy(self, project: str) -> Policy | None:
        return (await self._resources.load_config(project)).policy

    async def replay(
        self, project: str, proposed: Policy, since: datetime, *, running: bool = True
    ) -> ReplayReport:
        """Recorded admissions since ``since`` and (``running``) the running pods, judged
        under the stored policy and under ``proposed``."""
        validate_project_id(project, field="project")
        current = await self.current_policy(project)
        return await self._compare(project, current, proposed, since, running=running)

    async def diff(
        self, project: str, a: Policy, b: Policy, since: datetime, *, running: bool = True
    ) -> ReplayReport:
        """The same cases judged under ``a`` and under ``b``, with the rules they define
        differently and the namespaces, service accounts and images that change rule."""
        validate_project_id(project, field="project")
        return await self._compare(project, a, b, since, running=running, structural=True)

    async def coverage(
        self, project: str, policy: Policy | None, since: datetime
    ) -> CoverageReport:
        """Which rule the namespaces, service accounts and images seen (running now, or
        admitted since ``since``) fall to under ``policy`` (default: the stored one)."""
        validate_project_id(project, field="project")
        if policy is None:
            policy = await self.current_policy(project)
            if policy is None:
                raise InvalidArgument(
                    f"projects/{project} has no policy: give one to see what it would cover"
                )
        cases = await self._cases(project, since, running=True)
        return coverage(policy, _subjects(cases))

    # ------------------------------------------------------------------ the work

    async def _compare(
        self,
        project: str,
        a: Policy | None,
        b: Policy,
        since: datetime,
        *,
        running: bool,
        structural: bool = False,
    ) -> ReplayReport:
        now = self._clock()
        cases = await self._cases(project, since, running=running)
        names = b.referenced_attestors() | (a.referenced_attestors() if a else frozenset())
        attestors, unusable = await self._resources.attestors(names)
        requests = list(dict.fromkeys(c.request for c in cases))
        images = list(dict.fromkeys(ref for r in requests for ref in _refs(r.images) if ref.digest))
        gathered = await self._gather(images, attestors, project, now)
        evidence = Evidence(images=gathered, attestors=attestors, unusable_attestors=unusable)
        verdicts: dict[AdmissionRequest, tuple[Decision, Decision]] = {}
        for request in requests:
            before = (
                evaluate(a, request, evidence, now)
                if a is not None
                else no_policy_decision(project, request, now)
            )
            verdicts[request] = (before, evaluate(b, request, evidence, now))
        changes = [
            change
            for case in cases
            if (change := compare(case, *verdicts[case.request])) is not None
        ]
        summary = summarise(len(cases), changes)
        notes: list[str] = []
        if any(attestors[n].evidence_source.reads_registry for n in attestors):
            notes.append(
                "some attestors read registry evidence; a replay judges on the scribe's evidence "
                "only, so their registry attestations are not counted on either side"
            )
        rules: list[RuleChange] = []
        shifts: list[CoverageShift] = []
        if structural and a is not None:
            rules = rule_changes(a, b)
            subjects = _subjects(cases)
            shifts = coverage_shifts(coverage(a, subjects), coverage(b, subjects))
        return ReplayReport(
            since=since,
            admissions=sum(1 for c in cases if c.source == "admission"),
            running=sum(1 for c in cases if c.source == "running"),
            changes=tuple(changes[:MAX_CHANGES]),
            changed=len(changes),
            judged=summary.judged,
            images=len(images),
            policy_before=a.etag if a is not None else "",
            policy_after=b.etag,
            rules=tuple(rules),
            shifts=tuple(shifts),
            notes=tuple(notes),
            by_transition=summary.by_transition,
        )

    async def _cases(self, project: str, since: datetime, *, running: bool) -> list[ReplayCase]:
        cases: list[ReplayCase] = []
        after: str | None = None
        query = DecisionQuery(project=project, since=since)
        while True:
            async with self._store.session(readonly=True) as s:
                batch = await s.decisions.admissions(query, after, _PAGE)
            for a in batch:
                if not a.images:
                    continue  # nothing was judged (an unreadable workload): nothing to replay
                request = AdmissionRequest(
                    a.images, a.cluster or None, a.namespace or None, a.service_account or None
                )
                cases.append(
                    ReplayCase(
                        "admission", a.decision_id, request, a.outcome, a.workload, rfc3339(a.time)
                    )
                )
            if len(cases) > MAX_ADMISSIONS:
                raise PayloadTooLarge(
                    f"more than {MAX_ADMISSIONS} admissions were recorded in projects/{project} "
                    "since then; replay a shorter window (a later since)"
                )
            if len(batch) < _PAGE:
                break
            after = batch[-1].decision_id
        if running:
            cases += await self._running_cases(project)
        return cases

    async def _running_cases(self, project: str) -> list[ReplayCase]:
        clusters = tuple(self._clusters(project))
        if not clusters:
            return []
        async with self._store.session(readonly=True) as s:
            rows = await s.inventory.list_rows(InventoryQuery(clusters=clusters), MAX_RUNNING + 1)
        if len(rows) > MAX_RUNNING:
            raise PayloadTooLarge(
                f"more than {MAX_RUNNING} containers run in the clusters of projects/{project}; "
                "replay the recorded admissions only (running: false)"
            )
        pods: dict[tuple[str, str, str], list[RunningContainer]] = {}
        for r in rows:
            pods.setdefault((r.cluster, r.namespace, r.pod), []).append(r)
        cases = []
        for (cluster, namespace, pod), members in sorted(pods.items()):
            members.sort(key=lambda m: m.container)
            first = members[0]
            request = AdmissionRequest(
                tuple(m.image for m in members),
                cluster,
                namespace,
                first.service_account or None,
            )
            cases.append(
                ReplayCase(
                    "running",
                    f"{cluster}/{namespace}/{pod}",
                    request,
                    "",
                    f"{first.workload_kind}/{first.workload_name}",
                    rfc3339(min(m.since for m in members)),
                )
            )
        return cases

    async def _gather(
        self,
        images: Sequence[ImageReference],
        attestors: dict[str, Attestor],
        project: str,
        now: datetime,
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        gate = asyncio.Semaphore(_GATHER_PARALLEL)

        async def one(chunk: Sequence[ImageReference]) -> None:
            async with gate:
                # needs={}: the scribe only, never a registry (see the module docstring).
                evidence = await self._gatherer.gather(chunk, attestors, (project,), now, needs={})
            for ref in chunk:
                found[ref.canonical] = evidence.for_image(ref)

        chunks = [images[i : i + _GATHER_CHUNK] for i in range(0, len(images), _GATHER_CHUNK)]
        await asyncio.gather(*(one(c) for c in chunks))
        return found


def _refs(texts: Sequence[str]) -> list[ImageReference]:
    out: list[ImageReference] = []
    for text in texts:
        try:
            out.append(parse_image_reference(text))
        except InvalidArgument:
            continue  # judged (and denied) by the evaluator, with its reason, on both sides
    return out


def _subjects(cases: Sequence[ReplayCase]) -> list[Subject]:
    return [
        Subject(
            c.request.cluster or "",
            c.request.namespace or "",
            c.request.service_account or "",
            image,
        )
        for c in cases
        for image in c.request.images
    ]
