"""Repositories for what happens after admission: inventory, outbox, subscriptions,
deliveries, violations.

Each repository lives inside a unit of work (one transaction; ``uow.outbox`` and the
others, store/port.py), so an outbox event is written in the same transaction as the change
it describes, and a violation with the event that announces it. Memory
(store/memory_runtime.py) is the reference; SQL (store/sql/runtime.py) serves SQLite and
PostgreSQL; tests/contract runs one suite on all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chainproof.domain.events import ChangeEvent
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.policy.violations import Violation

if TYPE_CHECKING:
    from chainproof.store.port import MetadataStore


#: A pod across clusters: ``(cluster, namespace, pod)``.
PodKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    clusters: tuple[str, ...] = ()
    namespace: str | None = None
    images: tuple[str, ...] = ()
    include_closed: bool = False


class InventoryRepository(Protocol):
    async def open_rows(
        self, cluster: str, namespace: str | None = None, pod: str | None = None
    ) -> list[RunningContainer]:
        """Open rows of a cluster, of one namespace, or of one pod."""

    async def write(self, changes: InventoryChanges) -> None:
        """Insert opened rows, update changed open rows in place, close closed ones."""

    async def list_rows(self, query: InventoryQuery, limit: int) -> list[RunningContainer]:
        """Rows matching every criterion, newest ``since`` first."""

    async def running_images(self, clusters: Sequence[str]) -> list[str]:
        """Distinct images of the open rows in those clusters (all clusters when empty)."""

    async def count_workloads(self) -> int:
        """Distinct running workloads: (cluster, namespace, workload kind, workload name) of
        the open rows."""

    async def open_rows_of_pods(self, pods: Sequence[PodKey]) -> list[RunningContainer]:
        """Every open row of each of those pods (``(cluster, namespace, pod)``)."""

    async def get_checkpoint(self, cluster: str) -> str | None: ...

    async def set_checkpoint(self, cluster: str, resource_version: str) -> None: ...


class OutboxRepository(Protocol):
    async def append(self, events: Sequence[ChangeEvent]) -> None:
        """Record events to deliver; the store assigns each a sequence number."""

    async def unrouted(self, limit: int) -> list[ChangeEvent]:
        """Events not yet routed to subscriptions, in sequence order."""

    async def mark_routed(self, sequences: Sequence[int]) -> None: ...

    async def unjudged(self, limit: int) -> list[ChangeEvent]:
        """Events the re-judging worker has not handled yet, in sequence order (a second
        reader of the outbox, independent of routing). Events that cannot alter a verdict
        (``ChangeEvent.concerns_judgement`` false: decisions, violations, breakglass) are
        never among them."""

    async def mark_judged(self, sequences: Sequence[int]) -> None: ...

    async def get(self, sequences: Sequence[int]) -> dict[int, ChangeEvent]: ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` routed events older than ``before`` that no pending or
        dead delivery refers to; returns how many went."""


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """Where to send which events. ``sink`` is ``{"http": {"url", "secret"}}`` or
    ``{"nats": {"servers", "subject"}}`` or ``{"internal": NAME}`` (a worker of this server)."""

    project: str
    subscription_id: str
    kinds: tuple[str, ...]
    types: tuple[str, ...]
    sink: Mapping[str, Any]
    create_time: datetime
    description: str = ""


class SubscriptionRepository(Protocol):
    async def put(self, record: SubscriptionRecord) -> None: ...

    async def get(self, project: str, subscription_id: str) -> SubscriptionRecord | None: ...

    async def delete(self, project: str, subscription_id: str) -> bool:
        """Delete the subscription and its deliveries (pending ones, dead letters, the
        delivery log); False when it did not exist."""

    async def list_rows(self, project: str | None) -> list[SubscriptionRecord]:
        """One project's subscriptions, or every project's (None)."""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    project: str
    subscription_id: str
    sequence: int
    event_id: str
    subject: str
    status: str = "pending"  # pending, delivered, dead
    attempts: int = 0
    next_attempt: datetime | None = None
    last_error: str = ""
    done_time: datetime | None = None


class DeliveryRepository(Protocol):
    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        """Add pending deliveries; one that exists already (same subscription and sequence)
        is left as it is."""

    async def due(self, now: datetime, limit: int) -> list[DeliveryRecord]:
        """Pending deliveries due by ``now`` and first in line for their subject: none of
        the same subscription and subject with a lower sequence is still pending."""

    async def update(self, record: DeliveryRecord) -> None:
        """Store the delivery as given (inserting it when missing)."""

    async def update_many(self, records: Sequence[DeliveryRecord]) -> None:
        """``update`` for each, in one statement where the database allows."""

    async def list_rows(
        self, project: str, subscription_id: str, status: str | None, limit: int
    ) -> list[DeliveryRecord]: ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` delivered deliveries done before ``before`` (dead ones stay:
        they are the dead-letter list); returns how many went."""


@dataclass(frozen=True, slots=True)
class ViolationQuery:
    project: str
    clusters: tuple[str, ...] = ()
    namespace: str | None = None
    open_only: bool = True
    #: Only violations after this one in the listing order (``(opened, violation_id)`` of
    #: the last one of the previous page).
    after: tuple[datetime, str] | None = None


class ViolationRepository(Protocol):
    async def open_for(self, cluster: str, namespace: str, pod: str) -> Violation | None: ...

    async def open_for_pods(self, pods: Sequence[PodKey]) -> dict[PodKey, Violation]:
        """The open violation of each of those pods that has one (the oldest, should a pod
        have two)."""

    async def put(self, violation: Violation) -> bool:
        """``put_many`` of one; True when it was written."""

    async def put_many(self, violations: Sequence[Violation]) -> frozenset[str]:
        """Insert or replace each by ID, in as few statements as the database allows, and
        return the IDs of those not written (ADR 0190). A pod has at most one open violation
        (a unique index on SQL): a new open violation of a pod that has one already is not
        written, the first one stays. A violation closed in the store is final: writing it
        again (open or closed) changes nothing. Two overlapping leaders therefore never
        double a pod's violation, nor reopen one the other closed, and neither fails."""

    async def list_rows(self, query: ViolationQuery, limit: int) -> list[Violation]:
        """Newest opened first (ties: the greater ID first)."""

    async def count_open(self) -> dict[tuple[str, str, str], int]:
        """Open violations per (project, cluster, namespace), for the gauges."""


@dataclass
class RuntimeRepositories:
    """The runtime repositories of one session, as a session hands them out."""

    inventory: InventoryRepository
    outbox: OutboxRepository
    subscriptions: SubscriptionRepository
    deliveries: DeliveryRepository
    violations: ViolationRepository
    extra: dict[str, Any] = field(default_factory=dict)


class RuntimeUnit(Protocol):
    """What a service of the runtime side needs from a unit of work: these repositories,
    in one transaction. A store's unit of work (store/port.py) has them beside the others;
    ``RuntimeRepositories`` (MemoryRuntimeStore) has only them."""

    @property
    def inventory(self) -> InventoryRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def violations(self) -> ViolationRepository: ...


#: How runtime services open a transaction: ``store.session`` is one.
RuntimeSessions = Callable[[], AbstractAsyncContextManager[RuntimeUnit]]


def runtime_sessions(store: MetadataStore, *, readonly: bool = False) -> RuntimeSessions:
    """Units of work of ``store`` for runtime services (``readonly``: promising no writes)."""
    return lambda: store.session(readonly=readonly)
