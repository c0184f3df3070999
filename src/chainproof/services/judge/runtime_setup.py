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
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from chainproof.config import Settings
from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.inventory import InventoryChanges, validate_cluster_name
from chainproof.errors import InvalidArgument
from chainproof.services.common import utc_now
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.services.judge.leader import LeaderElection
from chainproof.services.judge.notifier import Notifier
from chainproof.services.judge.runtime_worker import ClusterWatcher, RuntimeWorker, notify_forever
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent, Sink
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import SubscriptionRecord, runtime_sessions

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


@dataclass
class Runtime:
    worker: RuntimeWorker
    inventory: InventoryUpdater
    watchers: list[ClusterWatcher]
    notifier: Notifier | None
    internal_sinks: dict[str, Sink] = field(default_factory=dict)
    inventory_listeners: list[InventoryListener] = field(default_factory=list)
    _leader: Gauge | None = None
    _deliveries: Counter | None = None

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
    """The inventory clusters whose workloads belong to ``project``: each configured cluster
    whose ``project`` (default ``admission.project``) it is, and the admission webhook's
    cluster for the admission project. Empty when none is: a caller must then show nothing,
    never every cluster."""
    default = settings.admission.project
    names = [c.name for c in settings.runtime.clusters if (c.project or default) == project]
    if project == default:
        admitted = admission_cluster(settings)
        claimed = {c.name for c in settings.runtime.clusters if (c.project or default) != project}
        if admitted is not None and admitted not in claimed:
            names.append(admitted)
    return tuple(dict.fromkeys(names))


def sink_factory(settings: Settings, internal: dict[str, Sink]) -> Callable[..., Sink]:
    n = settings.notifications
    destinations = settings.outbound.destination_policy()

    def sink_for(sub: SubscriptionRecord) -> Sink:
        spec: Any = sub.sink
        if "http" in spec:
            from chainproof.sinks.http_webhook import HttpWebhookSink

            http = spec["http"]
            return HttpWebhookSink(
                str(http["url"]),
                str(http["secret"]),
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

    updater = InventoryUpdater(sessions, utc_now, on_changes=tell)
    runtime = Runtime(RuntimeWorker(election), updater, [], None)
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
