"""The re-judging worker on a memory store wired by the composition root: outbox events
resolved to exactly the running pods they concern, violations opened and closed with their
events in one transaction, the judged mark, freshness and breakglass expiry scheduled, pods
gone closing their violations; and the attacks (another project's evidence or policy)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from chainproof.domain.events import EventType
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.services.judge.continuous import ContinuousValidation
from chainproof.store.runtime_port import ViolationQuery
from unit.services.judge_fixtures import NOW, Signer, System

A = "gcr.io/acme/app@sha256:" + "a" * 64
B = "gcr.io/acme/other@sha256:" + "b" * 64


def running(pod: str, image: str, **kw: Any) -> RunningContainer:
    base = RunningContainer(
        cluster="default",
        namespace="shop",
        workload_kind="Deployment",
        workload_name="web",
        pod=pod,
        pod_uid=f"uid-{pod}",
        container="app",
        service_account="default",
        image_spec=image,
        image_id=image,
        digest=image.rsplit("@", 1)[1],
        image=image,
        since=NOW - timedelta(hours=1),
    )
    return replace(base, **kw)


def worker(system: System) -> ContinuousValidation:
    cv = system.services.runtime.continuous
    assert cv is not None
    return cv


async def setup(system: System, *, freshness: bool = False) -> Signer:
    qa = await system.attestor("sec", "qa")
    checks: dict[str, Any] = {"vulnerabilities": {"maximumFixableSeverity": "HIGH"}}
    if freshness:
        checks["freshness"] = {"maximumScanAgeHours": 24}
    await system.policy(
        "default",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [qa.attestor],
            "chainproofChecks": checks,
        },
    )
    await system.grafeas.create_note(
        "projects/default",
        "scanner",
        note_from_json({"discovery": {"analysisKind": "VULNERABILITY"}}),
    )
    await system.grafeas.create_note(
        "projects/default",
        "CVE-2026-1",
        note_from_json({"vulnerability": {"severity": "CRITICAL"}}),
    )
    for image in (A, B):
        await system.sign(qa, image)
        await scan(system, "default", image, NOW - timedelta(hours=2))
    async with system.store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(running("web-1", A), running("web-2", B))))
    return qa


async def scan(system: System, project: str, image: str, when: Any) -> None:
    await system.grafeas.create_occurrence(
        f"projects/{project}",
        occurrence_from_json(
            {
                "resourceUri": image,
                "noteName": "projects/default/notes/scanner",
                "discovery": {
                    "analysisStatus": "FINISHED_SUCCESS",
                    "lastScanTime": when.isoformat().replace("+00:00", "Z"),
                },
            }
        ),
    )


async def finding(system: System, project: str, image: str, vex: str | None = None) -> Any:
    body: dict[str, Any] = {
        "resourceUri": image,
        "noteName": "projects/default/notes/CVE-2026-1",
        "vulnerability": {
            "effectiveSeverity": "CRITICAL",
            "fixAvailable": True,
            "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "openssl"}],
        },
    }
    if vex:
        body["vulnerability"]["vexAssessment"] = {"state": vex}
    return await system.grafeas.create_occurrence(f"projects/{project}", occurrence_from_json(body))


async def violation_events(system: System) -> list[Any]:
    async with system.store.session() as s:
        events = await s.outbox.unrouted(10_000)
    return [e for e in events if e.kind in ("violation", "breakglass")]


async def open_violations(system: System, project: str = "default") -> list[Any]:
    async with system.store.session() as s:
        return await s.violations.list_rows(ViolationQuery(project), 100)


async def test_a_finding_opens_a_violation_and_vex_closes_it() -> None:
    system = System()
    cv = worker(system)
    await setup(system)
    await cv.process_outbox()
    assert await open_violations(system) == []  # both conform
    assert await cv.process_outbox() == 0  # every event judged once

    bad = await finding(system, "default", A)
    assert await cv.process_outbox() >= 1
    [opened] = await open_violations(system)
    assert (opened.pod, opened.cluster, opened.namespace) == ("web-1", "default", "shop")
    assert opened.cause == f"occurrence.created {bad.name}"
    assert "CVE-2026-1" in opened.explanation
    assert opened.images[0].result == "DENY"
    events = await violation_events(system)
    assert [e.type for e in events] == [EventType.VIOLATION_OPENED]
    assert events[0].data["podEvent"]["pod"] == "web-1"
    assert events[0].subject == opened.name

    await system.grafeas.delete_occurrence(bad.name)
    await finding(system, "default", A, vex="NOT_AFFECTED")
    await cv.process_outbox()
    assert await open_violations(system) == []
    async with system.store.session() as s:
        [closed] = await s.violations.list_rows(ViolationQuery("default", open_only=False), 10)
    assert closed.closed == NOW and closed.close_reason.startswith("occurrence.")
    assert [e.type for e in await violation_events(system)] == [
        EventType.VIOLATION_OPENED,
        EventType.VIOLATION_CLOSED,
    ]


async def test_another_projects_evidence_neither_rejudges_nor_opens() -> None:
    """A finding (or a forged VEX) filed in another project about a running image concerns
    that project alone: nothing is judged here, nothing opens or closes."""
    system = System()
    cv = worker(system)
    await setup(system)
    await cv.process_outbox()
    await finding(system, "evil", A)
    events = await cv.resolve(await unjudged(system))
    assert events.images == {} and events.projects == {}
    await cv.process_outbox()
    assert await open_violations(system) == []
    assert await open_violations(system, "evil") == []

    # And the other way round: a real violation here is not closed by evil's VEX.
    await finding(system, "default", A)
    await cv.process_outbox()
    assert len(await open_violations(system)) == 1
    await finding(system, "evil", A, vex="NOT_AFFECTED")
    await system.resources.put_policy(
        "projects/evil",
        {
            "defaultAdmissionRule": {
                "evaluationMode": "ALWAYS_ALLOW",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        },
    )
    targets = await cv.resolve(await unjudged(system))
    assert targets.images == {} and targets.projects == {}
    await cv.process_outbox()
    assert len(await open_violations(system)) == 1


async def unjudged(system: System) -> list[Any]:
    async with system.store.session() as s:
        return await s.outbox.unjudged(10_000)


async def test_a_policy_change_rejudges_its_projects_pods() -> None:
    system = System()
    cv = worker(system)
    await setup(system)
    await cv.process_outbox()
    await system.policy(
        "default",
        {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"},
    )
    targets = await cv.resolve(await unjudged(system))
    assert list(targets.projects) == ["default"]
    await cv.process_outbox()
    assert sorted(v.pod for v in await open_violations(system)) == ["web-1", "web-2"]


async def test_a_scan_ageing_past_its_limit_is_scheduled_not_polled() -> None:
    system = System()
    cv = worker(system)
    await setup(system, freshness=True)
    await cv.process_outbox()
    assert await open_violations(system) == []
    # The scan was 2 h old; the policy allows 24 h: due again at scan time + 24 h.
    assert cv.next_due(("default", "shop", "web-1")) == NOW + timedelta(hours=22)
    assert await cv.process_due() == 0
    system.clock.now = NOW + timedelta(hours=22, seconds=1)
    assert await cv.process_due() == 2
    assert sorted(v.pod for v in await open_violations(system)) == ["web-1", "web-2"]
    assert "rescan" in (await open_violations(system))[0].explanation


async def test_breakglass_excuses_until_it_expires_then_a_violation_opens() -> None:
    system = System()
    cv = worker(system)
    await setup(system)
    until = NOW + timedelta(hours=1)
    async with system.store.session() as s:
        await s.inventory.write(
            InventoryChanges(opened=(running("hotfix", A, breakglass_until=until),))
        )
    await finding(system, "default", A)
    await cv.process_outbox()
    assert [v.pod for v in await open_violations(system)] == ["web-1"]  # hotfix excused
    assert cv.next_due(("default", "shop", "hotfix")) == until
    system.clock.now = until
    assert await cv.process_due() == 1
    assert sorted(v.pod for v in await open_violations(system)) == ["hotfix", "web-1"]
    kinds = [e.type for e in await violation_events(system)]
    assert EventType.BREAKGLASS_EXPIRED in kinds


async def test_a_pod_gone_closes_its_violation_and_sweeps_find_everything() -> None:
    system = System()
    cv = worker(system)
    await setup(system)
    await finding(system, "default", A)
    await cv.process_outbox()
    [opened] = await open_violations(system)
    async with system.store.session() as s:
        await s.inventory.write(InventoryChanges(closed=(running("web-1", A, until=NOW),)))
    result = await cv.sweep("periodic sweep")
    assert result.judged == 1  # web-2 only: web-1 is gone
    assert [v.violation_id for v in result.closed] == [opened.violation_id]
    assert result.closed[0].close_reason == "the pod no longer runs"


async def test_a_clusters_project_judges_it_and_holds_its_violations() -> None:
    """Two clusters of two projects: a policy change in one re-judges only its own
    cluster's pods, and the violations it opens are that project's."""
    system = System()
    await setup(system)
    cv = ContinuousValidation(
        system.store,
        system.resources,
        worker(system).new_judge,
        system.clock,
        cluster_projects={"default": "default", "edge": "other"},
        default_project="default",
    )
    async with system.store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(running("edge-1", A, cluster="edge"),)))
        await s.outbox.mark_judged([e.sequence for e in await s.outbox.unjudged(10_000)])
    await system.policy(
        "other",
        {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"},
    )
    targets = await cv.resolve(await unjudged(system))
    assert list(targets.projects) == ["other"]
    result = await cv.judge(targets)
    assert [(v.project, v.cluster, v.pod) for v in result.opened] == [("other", "edge", "edge-1")]
    assert await open_violations(system) == []  # the default project's pods were not touched


async def test_an_attestor_change_rejudges_the_projects_naming_it() -> None:
    system = System()
    cv = worker(system)
    qa = await setup(system)
    await cv.process_outbox()
    other = await system.attestor("sec", "other")
    async with system.store.session() as s:
        await s.outbox.mark_judged([e.sequence for e in await s.outbox.unjudged(10_000)])
    # Rotating qa's key to another one: qa's attestations no longer verify.
    current = await system.resources.get_attestor(qa.attestor)
    from chainproof.api.render import judge_document_json

    body = judge_document_json(current)
    body["userOwnedGrafeasNote"]["publicKeys"] = judge_document_json(
        await system.resources.get_attestor(other.attestor)
    )["userOwnedGrafeasNote"]["publicKeys"]
    await system.resources.update_attestor(qa.attestor, body)
    targets = await cv.resolve(await unjudged(system))
    assert list(targets.projects) == ["default"]
    await cv.process_outbox()
    assert sorted(v.pod for v in await open_violations(system)) == ["web-1", "web-2"]
    # The other attestor, named by no policy, concerns nobody.
    await system.resources.update_attestor(
        other.attestor, judge_document_json(await system.resources.get_attestor(other.attestor))
    )
    assert (await cv.resolve(await unjudged(system))).projects == {}


class _FlakyCluster:
    """PodActions whose API server answers 503 to the first ``failures`` calls of each
    action, then does it; ``log`` lists every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.log: list[tuple[str, str]] = []

    def _call(self, action: str, pod: str) -> None:
        from chainproof.sources.kubernetes.port import PodActionFailed

        self.log.append((action, pod))
        if sum(1 for a, p in self.log if (a, p) == (action, pod)) <= self.failures:
            raise PodActionFailed("etcdserver: leader changed", status=503)

    async def record_event(
        self, namespace: str, pod: str, reason: str, message: str, *, warning: bool
    ) -> None:
        self._call("event", pod)

    async def annotate(self, namespace: str, pod: str, annotations: Any) -> None:
        self._call("annotate", pod)

    async def evict(self, namespace: str, pod: str) -> None:
        self._call("evict", pod)


async def test_actions_are_retried_every_attempt_recorded_within_the_batchs_time() -> None:
    """The worker's side of the retry policy: two 503s then success, each attempt in the
    violation; and a cluster that never recovers holds the worker no longer than the
    batch's budget (fake time: nothing waits)."""
    from chainproof.services.judge.continuous import ContinuousOptions
    from chainproof.services.judge.pod_actions import ActionRetryPolicy

    slept: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def with_cluster(cluster: _FlakyCluster, budget: float) -> ContinuousValidation:
        async def actions_for(name: str) -> Any:
            return cluster

        return ContinuousValidation(
            system.store,
            system.resources,
            worker(system).new_judge,
            system.clock,
            cluster_projects={},
            default_project="default",
            options=ContinuousOptions(
                kubernetes_events=True,
                evict_namespaces=frozenset({"shop"}),
                action_retries=ActionRetryPolicy(attempts=3, first_delay=1.0, max_delay=1.0),
                actions_budget_seconds=budget,
            ),
            actions_for=actions_for,
            monotonic=lambda: now[0],
            sleep=sleep,
            jitter=lambda: 1.0,
        )

    system = System()
    await setup(system)
    await finding(system, "default", A)
    flaky = _FlakyCluster(failures=2)
    await with_cluster(flaky, budget=60).process_outbox()
    [v] = await open_violations(system)
    assert [(a.action, a.attempt, a.result.split(":")[0]) for a in v.actions] == [
        ("event", 1, "failed, retrying in 1.00s"),
        ("event", 2, "failed, retrying in 1.00s"),
        ("event", 3, "done"),
        ("evict", 1, "failed, retrying in 1.00s"),
        ("evict", 2, "failed, retrying in 1.00s"),
        ("evict", 3, "done"),
    ]

    # A cluster down for good, and a budget of 1.5 s: one wait fits, then no more (the
    # eviction's first attempt still has time; a wait after it would end past the budget).
    down = _FlakyCluster(failures=100)
    slept.clear()
    async with system.store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(running("web-9", A),)))
    await with_cluster(down, budget=1.5).judge(_targets_of(("default", "shop", "web-9")))
    nine = next(x for x in await open_violations(system) if x.pod == "web-9")
    assert slept == [1.0]
    assert [(a.action, a.result.split(":")[0]) for a in nine.actions] == [
        ("event", "failed, retrying in 1.00s"),
        ("event", "failed"),
        ("evict", "failed"),
    ]
    assert down.log == [("event", "web-9"), ("event", "web-9"), ("evict", "web-9")]


def _targets_of(*pods: tuple[str, str, str]) -> Any:
    from chainproof.services.judge.continuous import _Targets

    return _Targets(pods={p: "test" for p in pods})
