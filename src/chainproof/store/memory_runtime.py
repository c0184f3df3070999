"""In-memory runtime repositories: the reference semantics for the SQL ones.

In a MemoryStore they are part of each unit of work (``uow.outbox``, …) and write to its undo
log, so a unit of work that raises leaves nothing behind; MemoryRuntimeStore gives them on
their own, for processes and tests that keep only the inventory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from chainproof.domain.events import ChangeEvent
from chainproof.domain.inventory import ContainerKey, InventoryChanges, RunningContainer
from chainproof.policy.violations import Violation
from chainproof.store.runtime_port import (
    DeliveryRecord,
    InventoryQuery,
    PodKey,
    RuntimeRepositories,
    SubscriptionRecord,
    ViolationQuery,
)

Undo = list[Callable[[], None]]


class MemoryRuntimeState:
    def __init__(self) -> None:
        #: Open rows by key, and every row ever (closed ones too) in insertion order.
        self.open: dict[ContainerKey, int] = {}
        self.rows: dict[int, RunningContainer] = {}
        self.checkpoints: dict[str, str] = {}
        self.events: dict[int, ChangeEvent] = {}
        self.routed: set[int] = set()
        self.judged: set[int] = set()
        self.subscriptions: dict[tuple[str, str], SubscriptionRecord] = {}
        self.deliveries: dict[tuple[str, str, int], DeliveryRecord] = {}
        self.violations: dict[str, Violation] = {}
        self.counter = 0


def _put(undo: Undo, table: dict[Any, Any], key: Any, value: Any) -> None:
    had, previous = key in table, table.get(key)
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value

    def back() -> None:
        if had:
            table[key] = previous
        else:
            table.pop(key, None)

    undo.append(back)


class _Inventory:
    def __init__(self, s: MemoryRuntimeState, undo: Undo) -> None:
        self._s, self._undo = s, undo

    async def open_rows(
        self, cluster: str, namespace: str | None = None, pod: str | None = None
    ) -> list[RunningContainer]:
        return [
            self._s.rows[i]
            for k, i in self._s.open.items()
            if k.cluster == cluster
            and (namespace is None or k.namespace == namespace)
            and (pod is None or k.pod == pod)
        ]

    async def write(self, changes: InventoryChanges) -> None:
        for row in changes.closed:
            index = self._s.open.get(row.key)
            if index is not None:
                _put(self._undo, self._s.rows, index, row)
                _put(self._undo, self._s.open, row.key, None)
        for row in changes.changed:
            index = self._s.open.get(row.key)
            if index is not None:
                _put(self._undo, self._s.rows, index, row)
        for row in changes.opened:
            if row.key in self._s.open:
                raise RuntimeError(f"{row.key} is open already: close it first")
            self._s.counter += 1
            _put(self._undo, self._s.rows, self._s.counter, row)
            _put(self._undo, self._s.open, row.key, self._s.counter)

    async def list_rows(self, query: InventoryQuery, limit: int) -> list[RunningContainer]:
        images = set(query.images)
        rows = [
            r
            for r in self._s.rows.values()
            if (query.include_closed or r.until is None)
            and (not query.clusters or r.cluster in query.clusters)
            and (query.namespace is None or r.namespace == query.namespace)
            and (not images or r.image in images)
        ]
        rows.sort(key=lambda r: (r.since, r.cluster, r.namespace, r.pod, r.container), reverse=True)
        return rows[:limit]

    async def running_images(self, clusters: Sequence[str]) -> list[str]:
        return sorted(
            {
                self._s.rows[i].image
                for k, i in self._s.open.items()
                if not clusters or k.cluster in clusters
            }
        )

    async def count_workloads(self) -> int:
        return len(
            {
                (r.cluster, r.namespace, r.workload_kind, r.workload_name)
                for r in (self._s.rows[i] for i in self._s.open.values())
            }
        )

    async def open_rows_of_pods(self, pods: Sequence[PodKey]) -> list[RunningContainer]:
        wanted = set(pods)
        return [
            self._s.rows[i]
            for i in sorted(self._s.open.values())
            if (self._s.rows[i].cluster, self._s.rows[i].namespace, self._s.rows[i].pod) in wanted
        ]

    async def get_checkpoint(self, cluster: str) -> str | None:
        return self._s.checkpoints.get(cluster)

    async def set_checkpoint(self, cluster: str, resource_version: str) -> None:
        _put(self._undo, self._s.checkpoints, cluster, resource_version)


def _sequenced(e: ChangeEvent, sequence: int) -> ChangeEvent:
    """``replace(e, sequence=sequence)``, built field by field: a third of the cost, for an
    ingest's 20,000 entries (tests/unit/test_memory_store_garbage.py checks the fields)."""
    return ChangeEvent(e.event_id, e.project, e.type, e.subject, e.time, e.data, sequence)


class _Outbox:
    def __init__(self, s: MemoryRuntimeState, undo: Undo) -> None:
        self._s, self._undo = s, undo

    async def append(self, events: Sequence[ChangeEvent]) -> None:
        for event in events:
            self._s.counter += 1
            _put(self._undo, self._s.events, self._s.counter, _sequenced(event, self._s.counter))
            if not event.concerns_judgement:
                await self.mark_judged([self._s.counter])

    async def unrouted(self, limit: int) -> list[ChangeEvent]:
        pending = sorted(q for q in self._s.events if q not in self._s.routed)
        return [self._s.events[q] for q in pending[:limit]]

    async def mark_routed(self, sequences: Sequence[int]) -> None:
        for q in sequences:
            if q not in self._s.routed:
                self._s.routed.add(q)
                self._undo.append(lambda q=q: self._s.routed.discard(q))  # type: ignore[misc]

    async def get(self, sequences: Sequence[int]) -> dict[int, ChangeEvent]:
        return {q: self._s.events[q] for q in sequences if q in self._s.events}

    async def unjudged(self, limit: int) -> list[ChangeEvent]:
        pending = sorted(q for q in self._s.events if q not in self._s.judged)
        return [self._s.events[q] for q in pending[: max(limit, 0)]]

    async def mark_judged(self, sequences: Sequence[int]) -> None:
        for q in sequences:
            if q not in self._s.judged:
                self._s.judged.add(q)
                self._undo.append(lambda q=q: self._s.judged.discard(q))  # type: ignore[misc]

    async def prune(self, before: datetime, limit: int) -> int:
        held = {key[2] for key, d in self._s.deliveries.items() if d.status in ("pending", "dead")}
        gone = [
            q
            for q in sorted(self._s.events)
            if q in self._s.routed and q not in held and self._s.events[q].time < before
        ][: max(limit, 0)]
        for q in gone:
            _put(self._undo, self._s.events, q, None)
            self._s.routed.discard(q)
            self._undo.append(lambda q=q: self._s.routed.add(q))  # type: ignore[misc]
        return len(gone)


class _Subscriptions:
    def __init__(self, s: MemoryRuntimeState, undo: Undo) -> None:
        self._s, self._undo = s, undo

    async def put(self, record: SubscriptionRecord) -> None:
        _put(self._undo, self._s.subscriptions, (record.project, record.subscription_id), record)

    async def get(self, project: str, subscription_id: str) -> SubscriptionRecord | None:
        return self._s.subscriptions.get((project, subscription_id))

    async def delete(self, project: str, subscription_id: str) -> bool:
        if (project, subscription_id) not in self._s.subscriptions:
            return False
        _put(self._undo, self._s.subscriptions, (project, subscription_id), None)
        for key in [k for k in self._s.deliveries if k[:2] == (project, subscription_id)]:
            _put(self._undo, self._s.deliveries, key, None)
        return True

    async def list_rows(self, project: str | None) -> list[SubscriptionRecord]:
        return [
            r
            for k, r in sorted(self._s.subscriptions.items())
            if project is None or k[0] == project
        ]


class _Deliveries:
    def __init__(self, s: MemoryRuntimeState, undo: Undo) -> None:
        self._s, self._undo = s, undo

    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        for r in records:
            key = (r.project, r.subscription_id, r.sequence)
            if key not in self._s.deliveries:
                _put(self._undo, self._s.deliveries, key, r)

    async def due(self, now: datetime, limit: int) -> list[DeliveryRecord]:
        first: dict[tuple[str, str, str], DeliveryRecord] = {}
        for key in sorted(self._s.deliveries, key=lambda k: k[2]):
            r = self._s.deliveries[key]
            if r.status != "pending":
                continue
            line = (r.project, r.subscription_id, r.subject)
            if line not in first:
                first[line] = r
        due = [r for r in first.values() if r.next_attempt is None or r.next_attempt <= now]
        due.sort(key=lambda r: (r.sequence, r.project, r.subscription_id))
        return due[:limit]

    async def update(self, record: DeliveryRecord) -> None:
        _put(
            self._undo,
            self._s.deliveries,
            (record.project, record.subscription_id, record.sequence),
            record,
        )

    async def update_many(self, records: Sequence[DeliveryRecord]) -> None:
        for record in records:
            await self.update(record)

    async def list_rows(
        self, project: str, subscription_id: str, status: str | None, limit: int
    ) -> list[DeliveryRecord]:
        rows = [
            r
            for (p, sid, _), r in sorted(self._s.deliveries.items(), key=lambda kv: kv[0][2])
            if p == project and sid == subscription_id and (status is None or r.status == status)
        ]
        return rows[:limit]

    async def prune(self, before: datetime, limit: int) -> int:
        gone = [
            key
            for key, d in sorted(self._s.deliveries.items(), key=lambda kv: kv[0][2])
            if d.status == "delivered" and d.done_time is not None and d.done_time < before
        ][: max(limit, 0)]
        for key in gone:
            _put(self._undo, self._s.deliveries, key, None)
        return len(gone)


class _Violations:
    def __init__(self, s: MemoryRuntimeState, undo: Undo) -> None:
        self._s, self._undo = s, undo

    async def open_for(self, cluster: str, namespace: str, pod: str) -> Violation | None:
        for v in self._s.violations.values():
            if v.is_open and (v.cluster, v.namespace, v.pod) == (cluster, namespace, pod):
                return v
        return None

    async def open_for_pods(self, pods: Sequence[PodKey]) -> dict[PodKey, Violation]:
        wanted = set(pods)
        found: dict[PodKey, Violation] = {}
        for v in sorted(self._s.violations.values(), key=lambda v: (v.opened, v.violation_id)):
            key = (v.cluster, v.namespace, v.pod)
            if v.is_open and key in wanted and key not in found:
                found[key] = v
        return found

    async def put(self, violation: Violation) -> bool:
        return not await self.put_many([violation])

    async def put_many(self, violations: Sequence[Violation]) -> frozenset[str]:
        refused: set[str] = set()
        open_pods = {_pod_of(v) for v in self._s.violations.values() if v.is_open}
        for violation in violations:
            held = self._s.violations.get(violation.violation_id)
            if held is not None and not held.is_open:
                refused.add(violation.violation_id)  # closing is final
                continue
            if held is None and violation.is_open and _pod_of(violation) in open_pods:
                refused.add(violation.violation_id)  # the first open one stays
                continue
            _put(self._undo, self._s.violations, violation.violation_id, violation)
            if held is not None and not violation.is_open:
                open_pods.discard(_pod_of(held))
            elif violation.is_open:
                open_pods.add(_pod_of(violation))
        return frozenset(refused)

    async def list_rows(self, query: ViolationQuery, limit: int) -> list[Violation]:
        if limit <= 0:
            return []
        rows = [
            v
            for v in self._s.violations.values()
            if v.project == query.project
            and (not query.open_only or v.is_open)
            and (not query.clusters or v.cluster in query.clusters)
            and (query.namespace is None or v.namespace == query.namespace)
            and (query.after is None or (v.opened, v.violation_id) < query.after)
        ]
        rows.sort(key=lambda v: (v.opened, v.violation_id), reverse=True)
        return rows[:limit]

    async def count_open(self) -> dict[tuple[str, str, str], int]:
        counts: dict[tuple[str, str, str], int] = {}
        for v in self._s.violations.values():
            if v.is_open:
                key = (v.project, v.cluster, v.namespace)
                counts[key] = counts.get(key, 0) + 1
        return counts


def _pod_of(v: Violation) -> PodKey:
    return (v.cluster, v.namespace, v.pod)


def memory_repositories(state: MemoryRuntimeState, undo: Undo) -> RuntimeRepositories:
    return RuntimeRepositories(
        inventory=_Inventory(state, undo),
        outbox=_Outbox(state, undo),
        subscriptions=_Subscriptions(state, undo),
        deliveries=_Deliveries(state, undo),
        violations=_Violations(state, undo),
    )


class MemoryRuntimeStore:
    """Runtime repositories on their own, one transaction at a time, for processes (and
    tests) that keep the inventory in memory."""

    def __init__(self) -> None:
        self.state = MemoryRuntimeState()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[RuntimeRepositories]:
        async with self._lock:
            undo: Undo = []
            try:
                yield memory_repositories(self.state, undo)
            except BaseException:
                while undo:
                    undo.pop()()
                raise
            undo.clear()  # committed; the steps close over repositories that hold the log
