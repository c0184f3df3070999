"""Wiring the runtime side of the server from settings: the inventory updater, the leader
election, the notifier and its sinks, and one watcher per configured cluster.

Called by the composition root (bootstrap); nothing here starts anything (``Runtime.start``
does, with the server). Other singleton workers (re-judging) join with
``runtime.worker.add_task`` before the start, and hear inventory changes through
``runtime.inventory_listeners``; workers of this server that take events get them through a
subscription whose sink is ``{"internal": NAME}``, with their sink in ``internal_sinks``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from chainproof.config import ClusterSettings, Settings
from chainproof.crypto.sealing import SealError
from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.inventory import InventoryChanges, validate_cluster_name
from chainproof.errors import InvalidArgument
from chainproof.services.common import utc_now
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.services.judge.leader import LeaderElection
from chainproof.services.judge.notifier import Notifier
from chainproof.services.judge.pod_actions import ActionRetryPolicy
from chainproof.services.judge.runtime_worker import (
    ClusterWatcher,
    RuntimeWorker,
    connection_of,
    notify_forever,
)
from chainproof.services.judge.subscriptions import webhook_secret
from chainproof.services.secret_key_file import SecretKeyFile
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent, Sink
from chainproof.sources.kubernetes.port import PodActions
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import SubscriptionRecord, runtime_sessions

if TYPE_CHECKING:
    from chainproof.services.common import Clock
    from chainproof.services.judge.continuous import ContinuousValidation
    from chainproof.services.judge.judging import Judge
    from chainproof.services.judge.resources import JudgeResources

log = structlog.get_logger("chainproof.runtime")

InventoryListener = Callable[[str, InventoryChanges], Awaitable[None]]


class _NoSuchWorker:
    """The sink of an internal subscription whose worker this server does not run: every
    attempt fails and is retried, so the events wait for a server that has it."""

    def __init__(self, name: str) -> None:
        self._name = name

    async def deliver(self, event: OutgoingEvent) -> None:
        raise DeliveryFailed(f"no internal worker named {self._name!r} runs in this server")

    async def close(self) -> None:
        return None


class _Unopenable:
    """The sink of a webhook whose sealed secret this server cannot open: every attempt
    fails (retried, then a dead letter) and says why; nothing is sent."""

    def __init__(self, why: str) -> None:
        self._why = why

    async def deliver(self, event: OutgoingEvent) -> None:
        raise DeliveryFailed(self._why)

    async def close(self) -> None:
        return None


@dataclass
class Runtime:
    worker: RuntimeWorker
    inventory: InventoryUpdater
    watchers: list[ClusterWatcher]
    notifier: Notifier | None
    internal_sinks: dict[str, Sink] = field(default_factory=dict)
    inventory_listeners: list[InventoryListener] = field(default_factory=list)
    #: The re-judging worker (services.judge.continuous), when enabled.
    continuous: ContinuousValidation | None = None
    clusters: dict[str, ClusterSettings] = field(default_factory=dict)
    _leader: Gauge | None = None
    _deliveries: Counter | None = None
    _violations: Gauge | None = None
    _counted: set[tuple[str, str, str]] = field(default_factory=set)
    _apis: dict[str, Any] = field(default_factory=dict)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self._leader = Gauge(
            "chainproof_runtime_leader",
            "1 while this replica runs the watchers and the notifier (the leader), else 0.",
            registry=registry,
        )
        self._leader.set(1 if self.worker.election.is_leader else 0)
        self._deliveries = Counter(
            "chainproof_notifier_deliveries",
            "Delivery attempts of outbox events, by result (delivered, retry, dead).",
            ["result"],
            registry=registry,
        )

        self._violations = Gauge(
            "chainproof_violations_open",
            "Open continuous-validation violations, by project, cluster and namespace "
            "(kept by the leader replica).",
            ["project", "cluster", "namespace"],
            registry=registry,
        )

    def violation_counts(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """Set the gauges to the stored counts (labels no longer open drop to 0)."""
        if self._violations is None:
            return
        for gone in self._counted - set(counts):
            self._violations.labels(*gone).set(0)
        for labels, value in counts.items():
            self._violations.labels(*labels).set(value)
        self._counted |= set(counts)

    async def pod_actions(self, cluster: str) -> PodActions | None:
        """Events, annotations, evictions on one configured cluster's pods (None when the
        cluster is not configured: chainproof cannot reach it)."""
        settings = self.clusters.get(cluster)
        if settings is None:
            return None
        from chainproof.sources.kubernetes.actions import KubernetesPodActions
        from chainproof.sources.kubernetes.client import api_client

        api = self._apis.get(cluster)
        if api is None:
            api = self._apis[cluster] = await api_client(connection_of(settings))
        return KubernetesPodActions(api)

    async def close(self) -> None:
        apis, self._apis = self._apis, {}
        for api in apis.values():
            await api.close()

    def leadership_changed(self, leader: bool) -> None:
        if self._leader is not None:
            self._leader.set(1 if leader else 0)

    def delivery_attempted(self, result: str) -> None:
        if self._deliveries is not None:
            self._deliveries.labels(result).inc()

    def admitted_pods(
        self, settings: Settings
    ) -> Callable[[Mapping[str, Any]], Awaitable[object]] | None:
        """What the admission webhook calls with each Pod it admits: rows in the inventory
        of the webhook's cluster (``admission.cluster``, or the one watched cluster when
        there is exactly one), or None when that cluster has no usable name."""
        cluster = admission_cluster(settings)
        if cluster is None:
            return None

        async def admitted(pod: Mapping[str, Any]) -> object:
            return await self.inventory.admitted(cluster, pod)

        return admitted

    async def tell(self, cluster: str, changes: InventoryChanges) -> None:
        for listener in self.inventory_listeners:
            await listener(cluster, changes)


def admission_cluster(settings: Settings) -> str | None:
    """The inventory cluster of pods the admission webhook admits."""
    name = settings.admission.cluster
    if not name:
        watched = settings.runtime.clusters
        name = watched[0].name if len(watched) == 1 else "default"
    try:
        return validate_cluster_name(name)
    except InvalidArgument:
        log.warning(
            "admission.cluster is not a valid inventory cluster name; admitted pods are not "
            "added to the inventory (the watchers still see them)",
            cluster=name,
        )
        return None


def project_clusters(settings: Settings, project: str) -> tuple[str, ...]:
    """The inventory clusters whose workloads belong to ``project`` (:func:`cluster_projects`
    read the other way), configured ones first. Empty when none is: a caller must then show
    nothing, never every cluster."""
    owners = cluster_projects(settings)
    ordered = dict.fromkeys([*(c.name for c in settings.runtime.clusters), *owners])
    return tuple(name for name in ordered if owners[name] == project)


def sink_factory(
    settings: Settings, internal: dict[str, Sink], keys: SecretKeyFile | None = None
) -> Callable[..., Sink]:
    n = settings.notifications
    destinations = settings.outbound.destination_policy()
    secrets = keys or SecretKeyFile(n.secret_key_file, n.extra_secret_key_files)

    def sink_for(sub: SubscriptionRecord) -> Sink:
        spec: Any = sub.sink
        if "http" in spec:
            from chainproof.sinks.http_webhook import HttpWebhookSink

            http = spec["http"]
            try:
                secret = webhook_secret(sub, secrets)
            except SealError as exc:
                # Never unsigned, never under a guessed secret: each attempt fails, saying
                # why, until an operator restores the key and restarts the server.
                return _Unopenable(f"the webhook secret of {sub.subscription_id}: {exc}")
            return HttpWebhookSink(
                str(http["url"]),
                secret,
                timeout_s=n.http_timeout_seconds,
                destinations=destinations,
            )
        if "nats" in spec:
            from chainproof.sinks.nats_jetstream import NatsJetStreamSink

            nats = spec["nats"]
            servers = str(nats.get("servers") or n.nats_servers)
            return NatsJetStreamSink(
                servers, str(nats["subject"]), timeout_s=n.http_timeout_seconds
            )
        name = str(spec.get("internal", ""))
        return internal.get(name) or _NoSuchWorker(name)

    return sink_for


def build_runtime(settings: Settings, store: MetadataStore) -> Runtime:
    from chainproof.store.factory import create_leader_lock

    sessions = runtime_sessions(store)
    check = settings.runtime.leader_check_seconds
    holder: list[Runtime] = []
    election = LeaderElection(
        create_leader_lock(store),
        retry_s=check,
        check_s=check,
        on_change=lambda leader: holder[0].leadership_changed(leader) if holder else None,
    )

    async def tell(cluster: str, changes: InventoryChanges) -> None:
        await holder[0].tell(cluster, changes)

    updater = InventoryUpdater(
        sessions,
        utc_now,
        on_changes=tell,
        breakglass_max=timedelta(hours=settings.admission.breakglass_max_hours),
    )
    runtime = Runtime(RuntimeWorker(election), updater, [], None)
    runtime.clusters = {c.name: c for c in settings.runtime.clusters}
    holder.append(runtime)
    n = settings.notifications
    if n.enabled:
        notifier = Notifier(
            sessions,
            sink_factory(settings, runtime.internal_sinks),
            utc_now,
            source=n.source or f"//chainproof/{settings.host}:{settings.port}",
            retry=RetryPolicy(
                base_s=n.retry_base_seconds,
                cap_s=max(n.retry_cap_seconds, n.retry_base_seconds),
                max_attempts=n.max_attempts,
            ),
            observe=runtime.delivery_attempted,
        )
        runtime.notifier = notifier
        retention = timedelta(hours=n.retention_hours)
        runtime.worker.add_task(
            "notifier", lambda: notify_forever(notifier, n.poll_seconds, retention)
        )
    for cluster in settings.runtime.clusters:
        watcher = ClusterWatcher(cluster, updater, settings.runtime.watch_timeout_seconds)
        runtime.watchers.append(watcher)
        runtime.worker.add_task(f"watcher {cluster.name}", watcher.run)
    return runtime


def cluster_projects(settings: Settings) -> dict[str, str]:
    """Each known cluster's project: the configured ones' ``project`` (default
    admission.project), and the admission webhook's cluster, which is admission.project's."""
    from chainproof.domain.names import validate_project_id

    default = settings.admission.project
    projects: dict[str, str] = {}
    admitted = admission_cluster(settings)
    if admitted is not None:
        projects[admitted] = default
    for c in settings.runtime.clusters:
        projects[c.name] = validate_project_id(
            c.project or default, field=f"runtime.clusters[{c.name}].project"
        )
    return projects


def add_continuous_validation(
    runtime: Runtime,
    settings: Settings,
    store: MetadataStore,
    resources: JudgeResources,
    new_judge: Callable[[datetime], Judge],
    clock: Clock,
) -> ContinuousValidation | None:
    """The re-judging worker, as a leader task hearing inventory changes (when enabled)."""
    from chainproof.services.judge.continuous import ContinuousOptions, ContinuousValidation

    cv = settings.runtime.continuous_validation
    if not cv.enabled:
        return None
    options = ContinuousOptions(
        breakglass_enabled=settings.admission.breakglass_enabled,
        batch_events=cv.batch_events,
        poll_seconds=cv.poll_seconds,
        sweep_every=timedelta(hours=cv.sweep_hours) if cv.sweep_hours else None,
        kubernetes_events=cv.kubernetes_events,
        annotate_pods=cv.annotate_pods,
        evict_namespaces=frozenset(cv.evict_namespaces),
        action_retries=ActionRetryPolicy(
            attempts=cv.action_attempts,
            first_delay=cv.action_retry_seconds,
            max_delay=cv.action_max_retry_seconds,
            attempt_timeout=cv.action_timeout_seconds,
        ),
        actions_budget_seconds=cv.actions_budget_seconds,
    )
    continuous = ContinuousValidation(
        store,
        resources,
        new_judge,
        clock,
        cluster_projects=cluster_projects(settings),
        default_project=settings.admission.project,
        options=options,
        actions_for=runtime.pod_actions,
        on_counts=runtime.violation_counts,
    )
    runtime.continuous = continuous
    runtime.worker.add_task("re-judging", continuous.run)
    runtime.inventory_listeners.append(continuous.inventory_changed)
    return continuous
