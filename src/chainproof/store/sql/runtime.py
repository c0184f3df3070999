"""The runtime repositories on SQL: inventory, checkpoints, outbox, subscriptions,
deliveries and violations, for SQLite and PostgreSQL alike.

Owns the queries behind store/runtime_port.py. Every repository takes its unit of work's
``SqlTx`` (``uow.inventory``, ``uow.outbox``, …), so its writes commit or roll back with
everything else written in that unit of work: an outbox event lands exactly when the change
it announces does. Semantics follow the memory adapter (store/memory_runtime.py); the
contract suite in tests/contract runs on all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.policy.violations import CheckResult, ImageResult, Violation, ViolationAction
from chainproof.store.runtime_port import (
    DeliveryRecord,
    InventoryQuery,
    PodKey,
    SubscriptionRecord,
    ViolationQuery,
)
from chainproof.store.sql import bulk
from chainproof.store.sql.schema import (
    deliveries,
    inventory,
    inventory_checkpoints,
    outbox,
    subscriptions,
    violations,
)
from chainproof.store.sql.tx import SqlTx, dump_json

#: Values per ``IN (…)`` list: well under both databases' parameter limits.
_CHUNK = 1000
_Row = Any


def _insert(table: sa.Table, dialect: str) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


# inventory --------------------------------------------------------------------------------

_FACTS = (
    "pod_uid",
    "workload_kind",
    "workload_name",
    "service_account",
    "image_spec",
    "image_id",
    "digest",
    "image",
    "since",
    "until",
    "source",
    "breakglass_until",
)


def _inventory_row(r: RunningContainer) -> dict[str, Any]:
    return {
        "cluster": r.cluster,
        "namespace": r.namespace,
        "pod": r.pod,
        "container": r.container,
        **{name: getattr(r, name) for name in _FACTS},
    }


def _container(row: _Row) -> RunningContainer:
    return RunningContainer(
        cluster=row.cluster,
        namespace=row.namespace,
        workload_kind=row.workload_kind,
        workload_name=row.workload_name,
        pod=row.pod,
        pod_uid=row.pod_uid,
        container=row.container,
        service_account=row.service_account,
        image_spec=row.image_spec,
        image_id=row.image_id,
        digest=row.digest,
        image=row.image,
        since=row.since,
        until=row.until,
        source=row.source,
        breakglass_until=row.breakglass_until,
    )


_OPEN = inventory.c.until.is_(None)
# Rewrites the open row of one container with the facts given (closing it when ``until`` is
# set); the key columns are bound under other names, as a column cannot be both set and
# matched by one parameter.
_REWRITE_OPEN = (
    inventory.update()
    .where(
        inventory.c.cluster == sa.bindparam("k_cluster"),
        inventory.c.namespace == sa.bindparam("k_namespace"),
        inventory.c.pod == sa.bindparam("k_pod"),
        inventory.c.container == sa.bindparam("k_container"),
        _OPEN,
    )
    .values({name: sa.bindparam(f"v_{name}", type_=inventory.c[name].type) for name in _FACTS})
)
_NEWEST_FIRST = (
    inventory.c.since.desc(),
    inventory.c.cluster.desc(),
    inventory.c.namespace.desc(),
    inventory.c.pod.desc(),
    inventory.c.container.desc(),
)


def _rewrite_params(r: RunningContainer) -> dict[str, Any]:
    return {
        "k_cluster": r.cluster,
        "k_namespace": r.namespace,
        "k_pod": r.pod,
        "k_container": r.container,
        **{f"v_{name}": getattr(r, name) for name in _FACTS},
    }


def _sort_key(r: RunningContainer) -> tuple[datetime, str, str, str, str]:
    return (r.since, r.cluster, r.namespace, r.pod, r.container)


class SqlInventory:
    def __init__(self, tx: SqlTx) -> None:
        self._c, self._dialect = tx.connection, tx.dialect.value

    async def open_rows(
        self, cluster: str, namespace: str | None = None, pod: str | None = None
    ) -> list[RunningContainer]:
        stmt = sa.select(inventory).where(inventory.c.cluster == cluster, _OPEN)
        if namespace is not None:
            stmt = stmt.where(inventory.c.namespace == namespace)
        if pod is not None:
            stmt = stmt.where(inventory.c.pod == pod)
        return [_container(row) for row in await self._c.execute(stmt.order_by(inventory.c.row_id))]

    async def write(self, changes: InventoryChanges) -> None:
        # Close first, so that a container's new life can open under the same key (the
        # partial unique index allows one open row per container).
        rewrites = [_rewrite_params(r) for r in (*changes.closed, *changes.changed)]
        if rewrites:
            await self._c.execute(_REWRITE_OPEN, rewrites)
        if changes.opened:
            # A key that is open already fails on uq_inventory_open: close it first.
            await self._c.execute(inventory.insert(), [_inventory_row(r) for r in changes.opened])

    async def list_rows(self, query: InventoryQuery, limit: int) -> list[RunningContainer]:
        if limit <= 0:
            return []
        stmt = sa.select(inventory)
        if not query.include_closed:
            stmt = stmt.where(_OPEN)
        if query.clusters:
            stmt = stmt.where(inventory.c.cluster.in_(query.clusters))
        if query.namespace is not None:
            stmt = stmt.where(inventory.c.namespace == query.namespace)
        if not query.images:
            stmt = stmt.order_by(*_NEWEST_FIRST).limit(limit)
            return [_container(row) for row in await self._c.execute(stmt)]
        # Many images: one query per chunk, each already limited, merged here.
        rows: list[RunningContainer] = []
        for chunk in _chunks(list(dict.fromkeys(query.images))):
            part = stmt.where(inventory.c.image.in_(chunk)).order_by(*_NEWEST_FIRST).limit(limit)
            rows.extend(_container(row) for row in await self._c.execute(part))
        rows.sort(key=_sort_key, reverse=True)
        return rows[:limit]

    async def running_images(self, clusters: Sequence[str]) -> list[str]:
        stmt = sa.select(inventory.c.image).where(_OPEN).distinct()
        if clusters:
            stmt = stmt.where(inventory.c.cluster.in_(list(clusters)))
        return sorted(await self._c.scalars(stmt))

    async def count_workloads(self) -> int:
        workloads = (
            sa.select(
                inventory.c.cluster,
                inventory.c.namespace,
                inventory.c.workload_kind,
                inventory.c.workload_name,
            )
            .where(_OPEN)
            .distinct()
            .subquery()
        )
        found = await self._c.execute(sa.select(sa.func.count()).select_from(workloads))
        return int(found.scalar() or 0)

    async def open_rows_of_pods(self, pods: Sequence[PodKey]) -> list[RunningContainer]:
        # Three IN lists walk the open-row index (cluster, namespace, pod, container) on both
        # databases; the exact keys are kept here (a row-value IN list is not indexed alike).
        rows: list[RunningContainer] = []
        for chunk in _chunks(list(dict.fromkeys(pods))):
            wanted = set(chunk)
            stmt = (
                sa.select(inventory)
                .where(
                    _OPEN,
                    inventory.c.cluster.in_(sorted({k[0] for k in chunk})),
                    inventory.c.namespace.in_(sorted({k[1] for k in chunk})),
                    inventory.c.pod.in_(sorted({k[2] for k in chunk})),
                )
                .order_by(inventory.c.row_id)
            )
            for row in await self._c.execute(stmt):
                if (row.cluster, row.namespace, row.pod) in wanted:
                    rows.append(_container(row))
        return rows

    async def get_checkpoint(self, cluster: str) -> str | None:
        stmt = sa.select(inventory_checkpoints.c.resource_version).where(
            inventory_checkpoints.c.cluster == cluster
        )
        value = (await self._c.execute(stmt)).scalar()
        return None if value is None else str(value)

    async def set_checkpoint(self, cluster: str, resource_version: str) -> None:
        stmt = _insert(inventory_checkpoints, self._dialect).values(
            cluster=cluster, resource_version=resource_version
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[inventory_checkpoints.c.cluster],
            set_={"resource_version": stmt.excluded.resource_version},
        )
        await self._c.execute(stmt)


# outbox -----------------------------------------------------------------------------------


def _event(row: _Row) -> ChangeEvent:
    return ChangeEvent(
        event_id=row.event_id,
        project=row.project,
        type=EventType(row.type),
        subject=row.subject,
        time=row.time,
        data=row.data,
        sequence=int(row.sequence),
    )


#: The columns an append writes, in the order of its tuples.
_OUTBOX_WRITE = (
    "event_id", "project", "type", "subject", "time", "data", "routed", "judged"
)  # fmt: skip


class SqlOutbox:
    def __init__(self, tx: SqlTx) -> None:
        self._c, self._dialect = tx.connection, tx.dialect.value
        self._postgres = tx.postgres

    async def append(self, events: Sequence[ChangeEvent]) -> None:
        if not events:
            return
        # The database numbers them (the sequence column), in insertion order. An ingest
        # appends one per note and occurrence: the bulk path, in this transaction. Only
        # changes that can alter a verdict wait for the re-judging worker (judged=False).
        rows = [
            (
                e.event_id,
                e.project,
                e.type.value,
                e.subject,
                e.time,
                dump_json(e.data if type(e.data) is dict else dict(e.data)),
                False,
                not e.concerns_judgement,
            )
            for e in events
        ]
        await bulk.insert_rows(self._c, self._postgres, outbox, _OUTBOX_WRITE, rows)

    async def unrouted(self, limit: int) -> list[ChangeEvent]:
        if limit <= 0:
            return []
        stmt = sa.select(outbox).where(~outbox.c.routed).order_by(outbox.c.sequence).limit(limit)
        return [_event(row) for row in await self._c.execute(stmt)]

    async def mark_routed(self, sequences: Sequence[int]) -> None:
        for chunk in _chunks(list(sequences)):
            await self._c.execute(
                outbox.update().where(outbox.c.sequence.in_(chunk)).values(routed=True)
            )

    async def unjudged(self, limit: int) -> list[ChangeEvent]:
        if limit <= 0:
            return []
        stmt = sa.select(outbox).where(~outbox.c.judged).order_by(outbox.c.sequence).limit(limit)
        return [_event(row) for row in await self._c.execute(stmt)]

    async def mark_judged(self, sequences: Sequence[int]) -> None:
        for chunk in _chunks(list(sequences)):
            await self._c.execute(
                outbox.update().where(outbox.c.sequence.in_(chunk)).values(judged=True)
            )

    async def prune(self, before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        held = (
            sa.select(sa.literal(1))
            .where(
                deliveries.c.sequence == outbox.c.sequence,
                deliveries.c.status.in_(("pending", "dead")),
            )
            .exists()
        )
        doomed = (
            sa.select(outbox.c.sequence)
            .where(outbox.c.routed, outbox.c.time < before, ~held)
            .order_by(outbox.c.sequence)
            .limit(limit)
        )
        result = await self._c.execute(outbox.delete().where(outbox.c.sequence.in_(doomed)))
        return int(result.rowcount)

    async def get(self, sequences: Sequence[int]) -> dict[int, ChangeEvent]:
        found: dict[int, ChangeEvent] = {}
        for chunk in _chunks(list(dict.fromkeys(sequences))):
            stmt = sa.select(outbox).where(outbox.c.sequence.in_(chunk))
            for row in await self._c.execute(stmt):
                found[int(row.sequence)] = _event(row)
        return found


# subscriptions ----------------------------------------------------------------------------


def _subscription(row: _Row) -> SubscriptionRecord:
    return SubscriptionRecord(
        project=row.project,
        subscription_id=row.subscription_id,
        kinds=tuple(row.kinds),
        types=tuple(row.types),
        sink=row.sink,
        create_time=row.create_time,
        description=row.description,
    )


def _plain(value: Any) -> Any:
    """JSON-ready copies of mappings and sequences (the serialiser wants dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class SqlSubscriptions:
    def __init__(self, tx: SqlTx) -> None:
        self._c, self._dialect = tx.connection, tx.dialect.value

    async def put(self, record: SubscriptionRecord) -> None:
        row = {
            "project": record.project,
            "subscription_id": record.subscription_id,
            "kinds": list(record.kinds),
            "types": list(record.types),
            "sink": _plain(record.sink),
            "description": record.description,
            "create_time": record.create_time,
        }
        key = ("project", "subscription_id")
        stmt = _insert(subscriptions, self._dialect).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[subscriptions.c[k] for k in key],
            set_={k: stmt.excluded[k] for k in row if k not in key},
        )
        await self._c.execute(stmt)

    async def get(self, project: str, subscription_id: str) -> SubscriptionRecord | None:
        stmt = sa.select(subscriptions).where(
            subscriptions.c.project == project,
            subscriptions.c.subscription_id == subscription_id,
        )
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _subscription(row)

    async def delete(self, project: str, subscription_id: str) -> bool:
        stmt = subscriptions.delete().where(
            subscriptions.c.project == project,
            subscriptions.c.subscription_id == subscription_id,
        )
        if (await self._c.execute(stmt)).rowcount == 0:
            return False
        await self._c.execute(
            deliveries.delete().where(
                deliveries.c.project == project, deliveries.c.subscription_id == subscription_id
            )
        )
        return True

    async def list_rows(self, project: str | None) -> list[SubscriptionRecord]:
        stmt = sa.select(subscriptions).order_by(
            subscriptions.c.project, subscriptions.c.subscription_id
        )
        if project is not None:
            stmt = stmt.where(subscriptions.c.project == project)
        return [_subscription(row) for row in await self._c.execute(stmt)]


# deliveries -------------------------------------------------------------------------------


def _delivery_row(r: DeliveryRecord) -> dict[str, Any]:
    return {
        "project": r.project,
        "subscription_id": r.subscription_id,
        "sequence": r.sequence,
        "event_id": r.event_id,
        "subject": r.subject,
        "status": r.status,
        "attempts": r.attempts,
        "next_attempt": r.next_attempt,
        "last_error": r.last_error,
        "done_time": r.done_time,
    }


def _delivery(row: _Row) -> DeliveryRecord:
    return DeliveryRecord(
        project=row.project,
        subscription_id=row.subscription_id,
        sequence=int(row.sequence),
        event_id=row.event_id,
        subject=row.subject,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt=row.next_attempt,
        last_error=row.last_error,
        done_time=row.done_time,
    )


_KEY = ("project", "subscription_id", "sequence")


def _delivery_upsert(dialect: str) -> Any:
    # Built once per dialect (its compiled form is cached), run with many parameter sets.
    stmt = _insert(deliveries, dialect)
    return stmt.on_conflict_do_update(
        index_elements=[deliveries.c[k] for k in _KEY],
        set_={c.name: stmt.excluded[c.name] for c in deliveries.c if c.name not in _KEY},
    )


_DELIVERY_UPSERT = {d: _delivery_upsert(d) for d in ("postgresql", "sqlite")}


class SqlDeliveries:
    def __init__(self, tx: SqlTx) -> None:
        self._c, self._dialect = tx.connection, tx.dialect.value

    async def add(self, records: Sequence[DeliveryRecord]) -> None:
        if not records:
            return
        stmt = _insert(deliveries, self._dialect).on_conflict_do_nothing(
            index_elements=[deliveries.c[k] for k in _KEY]
        )
        await self._c.execute(stmt, [_delivery_row(r) for r in records])

    async def due(self, now: datetime, limit: int) -> list[DeliveryRecord]:
        if limit <= 0:
            return []
        earlier = deliveries.alias("earlier")
        ahead = (
            sa.select(sa.literal(1))
            .where(
                earlier.c.project == deliveries.c.project,
                earlier.c.subscription_id == deliveries.c.subscription_id,
                earlier.c.subject == deliveries.c.subject,
                earlier.c.status == "pending",
                earlier.c.sequence < deliveries.c.sequence,
            )
            .exists()
        )
        stmt = (
            sa.select(deliveries)
            .where(
                deliveries.c.status == "pending",
                sa.or_(deliveries.c.next_attempt.is_(None), deliveries.c.next_attempt <= now),
                ~ahead,
            )
            .order_by(deliveries.c.sequence, deliveries.c.project, deliveries.c.subscription_id)
            .limit(limit)
        )
        return [_delivery(row) for row in await self._c.execute(stmt)]

    async def update(self, record: DeliveryRecord) -> None:
        await self.update_many([record])

    async def update_many(self, records: Sequence[DeliveryRecord]) -> None:
        if records:
            await self._c.execute(
                _DELIVERY_UPSERT[self._dialect], [_delivery_row(r) for r in records]
            )

    async def list_rows(
        self, project: str, subscription_id: str, status: str | None, limit: int
    ) -> list[DeliveryRecord]:
        if limit <= 0:
            return []
        stmt = sa.select(deliveries).where(
            deliveries.c.project == project, deliveries.c.subscription_id == subscription_id
        )
        if status is not None:
            stmt = stmt.where(deliveries.c.status == status)
        stmt = stmt.order_by(deliveries.c.sequence).limit(limit)
        return [_delivery(row) for row in await self._c.execute(stmt)]

    async def prune(self, before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        key = sa.tuple_(deliveries.c.project, deliveries.c.subscription_id, deliveries.c.sequence)
        done = (
            sa.select(deliveries.c.project, deliveries.c.subscription_id, deliveries.c.sequence)
            .where(deliveries.c.status == "delivered", deliveries.c.done_time < before)
            .order_by(deliveries.c.sequence)
            .limit(limit)
        )
        result = await self._c.execute(deliveries.delete().where(key.in_(done)))
        return int(result.rowcount)


# violations -------------------------------------------------------------------------------


def _image_result(data: Mapping[str, Any]) -> ImageResult:
    return ImageResult(
        image=str(data["image"]),
        container=str(data["container"]),
        result=str(data["result"]),
        description=str(data["description"]),
        checks=tuple(
            CheckResult(
                check=str(c["checkName"]),
                kind=str(c["checkType"]),
                verdict=str(c["verdict"]),
                explanation=str(c["explanation"]),
            )
            for c in data.get("checkResults") or ()
        ),
    )


def _violation(row: _Row) -> Violation:
    return Violation(
        violation_id=row.violation_id,
        project=row.project,
        cluster=row.cluster,
        namespace=row.namespace,
        pod=row.pod,
        workload_kind=row.workload_kind,
        workload_name=row.workload_name,
        images=tuple(_image_result(i) for i in row.images),
        explanation=row.explanation,
        cause=row.cause,
        opened=row.opened,
        closed=row.closed,
        close_reason=row.close_reason,
        actions=tuple(
            ViolationAction(
                str(a["action"]),
                parse_rfc3339(str(a["time"])),
                str(a["result"]),
                int(a.get("attempt", 1)),
            )
            for a in row.actions or ()
        ),
    )


def _violation_row(violation: Violation) -> dict[str, Any]:
    return {
        "violation_id": violation.violation_id,
        "project": violation.project,
        "cluster": violation.cluster,
        "namespace": violation.namespace,
        "pod": violation.pod,
        "workload_kind": violation.workload_kind,
        "workload_name": violation.workload_name,
        "images": [i.to_dict() for i in violation.images],
        "explanation": violation.explanation,
        "cause": violation.cause,
        "opened": violation.opened,
        "closed": violation.closed,
        "close_reason": violation.close_reason,
        "actions": [a.to_dict() for a in violation.actions],
    }


_VIOLATION_OPEN = violations.c.closed.is_(None)


class SqlViolations:
    def __init__(self, tx: SqlTx) -> None:
        self._c, self._dialect = tx.connection, tx.dialect.value

    async def open_for(self, cluster: str, namespace: str, pod: str) -> Violation | None:
        stmt = (
            sa.select(violations)
            .where(
                violations.c.cluster == cluster,
                violations.c.namespace == namespace,
                violations.c.pod == pod,
                _VIOLATION_OPEN,
            )
            .order_by(violations.c.opened, violations.c.violation_id)
            .limit(1)
        )
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _violation(row)

    async def open_for_pods(self, pods: Sequence[PodKey]) -> dict[PodKey, Violation]:
        found: dict[PodKey, Violation] = {}
        for chunk in _chunks(list(dict.fromkeys(pods))):
            wanted = set(chunk)
            stmt = (
                sa.select(violations)
                .where(
                    _VIOLATION_OPEN,
                    violations.c.cluster.in_(sorted({k[0] for k in chunk})),
                    violations.c.namespace.in_(sorted({k[1] for k in chunk})),
                    violations.c.pod.in_(sorted({k[2] for k in chunk})),
                )
                .order_by(violations.c.opened, violations.c.violation_id)
            )
            for row in await self._c.execute(stmt):
                key = (row.cluster, row.namespace, row.pod)
                if key in wanted:
                    found.setdefault(key, _violation(row))
        return found

    async def put(self, violation: Violation) -> bool:
        return not await self.put_many([violation])

    async def put_many(self, violations_: Sequence[Violation]) -> frozenset[str]:
        if not violations_:
            return frozenset()
        # The last write of an ID in the batch counts (one statement may not touch a row twice).
        wanted = {v.violation_id: _violation_row(v) for v in violations_}
        held: set[str] = set()
        for chunk in _chunks(list(wanted)):
            found = sa.select(violations.c.violation_id).where(violations.c.violation_id.in_(chunk))
            held.update(r[0] for r in await self._c.execute(found))
        written: set[str] = set()
        # Known IDs: replaced while open in the database, never once closed there. The WHERE
        # is read again on the row's newest version (PostgreSQL locks the conflicting row), so
        # a violation another leader closed a moment ago stays closed.
        known = [row for vid, row in wanted.items() if vid in held]
        if known:
            stmt = _insert(violations, self._dialect)
            upsert = stmt.on_conflict_do_update(
                index_elements=[violations.c.violation_id],
                set_={k: stmt.excluded[k] for k in known[0] if k != "violation_id"},
                where=_VIOLATION_OPEN,
            ).returning(violations.c.violation_id)
            written.update(r[0] for r in await self._c.execute(upsert, known))
        # New IDs: inserted unless they would be a second open violation of a pod (the unique
        # partial index ix_violations_open_pod); the first stays. DO NOTHING without a target
        # covers that index, and waits for a concurrent insert of the same pod to commit.
        new = [row for vid, row in wanted.items() if vid not in held]
        if new:
            insert = (
                _insert(violations, self._dialect)
                .on_conflict_do_nothing()
                .returning(violations.c.violation_id)
            )
            written.update(r[0] for r in await self._c.execute(insert, new))
        return frozenset(wanted) - written

    async def list_rows(self, query: ViolationQuery, limit: int) -> list[Violation]:
        if limit <= 0:
            return []
        stmt = sa.select(violations).where(violations.c.project == query.project)
        if query.open_only:
            stmt = stmt.where(_VIOLATION_OPEN)
        if query.clusters:
            stmt = stmt.where(violations.c.cluster.in_(query.clusters))
        if query.namespace is not None:
            stmt = stmt.where(violations.c.namespace == query.namespace)
        if query.after is not None:
            opened, vid = query.after
            stmt = stmt.where(
                sa.or_(
                    violations.c.opened < opened,
                    sa.and_(violations.c.opened == opened, violations.c.violation_id < vid),
                )
            )
        stmt = stmt.order_by(violations.c.opened.desc(), violations.c.violation_id.desc())
        return [_violation(row) for row in await self._c.execute(stmt.limit(limit))]

    async def count_open(self) -> dict[tuple[str, str, str], int]:
        stmt = (
            sa.select(
                violations.c.project,
                violations.c.cluster,
                violations.c.namespace,
                sa.func.count(),
            )
            .where(_VIOLATION_OPEN)
            .group_by(violations.c.project, violations.c.cluster, violations.c.namespace)
        )
        return {(r[0], r[1], r[2]): int(r[3]) for r in await self._c.execute(stmt)}
