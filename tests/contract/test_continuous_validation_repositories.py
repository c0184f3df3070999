"""What the re-judging worker reads and writes, on memory, SQLite and PostgreSQL: the
outbox's second reader (unjudged / mark_judged, independent of routing), every open row of
a set of pods, the open violations of a set of pods, batch upserts with actions, paging of
the violation list, the breakglass window stored with a row, and at most one open violation
per pod with closing final, even when two leaders write at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from chainproof.domain.events import EventType
from chainproof.domain.inventory import InventoryChanges
from chainproof.policy.violations import ViolationAction
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import ViolationQuery
from chainproof.store.sql import SqlStore
from contract.runtime_samples import T0, Boom, event, row, violation


async def test_unjudged_is_a_reader_of_its_own(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.outbox.append([event(1), event(2), event(3)])
    async with store.session() as s:
        pending = await s.outbox.unjudged(10)
        assert [e.event_id for e in pending] == ["0190-0001", "0190-0002", "0190-0003"]
        assert await s.outbox.unjudged(0) == []
        # Routing does not judge, judging does not route.
        await s.outbox.mark_routed([pending[0].sequence])
        await s.outbox.mark_judged([pending[1].sequence])
    async with store.session() as s:
        assert [e.event_id for e in await s.outbox.unjudged(10)] == ["0190-0001", "0190-0003"]
        assert [e.event_id for e in await s.outbox.unrouted(10)] == ["0190-0002", "0190-0003"]
        assert [e.event_id for e in await s.outbox.unjudged(1)] == ["0190-0001"]

    async def fail() -> None:
        async with store.session() as s:
            await s.outbox.mark_judged([e.sequence for e in pending])
            raise Boom

    with pytest.raises(Boom):
        await fail()
    async with store.session() as s:
        assert len(await s.outbox.unjudged(10)) == 2  # rolled back with its unit of work


async def test_the_judges_own_events_are_never_unjudged(store: MetadataStore) -> None:
    own = [
        replace(event(n), type=t)
        for n, t in (
            (1, EventType.DECISION_MADE),
            (2, EventType.VIOLATION_OPENED),
            (3, EventType.BREAKGLASS_USED),
        )
    ]
    async with store.session() as s:
        await s.outbox.append([*own, replace(event(4), type=EventType.POLICY_CHANGED)])
    async with store.session() as s:
        assert [e.event_id for e in await s.outbox.unjudged(10)] == ["0190-0004"]
        assert len(await s.outbox.unrouted(10)) == 4  # the notifier still sends them all


async def test_open_rows_of_pods_and_breakglass_window(store: MetadataStore) -> None:
    until = T0 + timedelta(hours=4)
    rows = [
        row("web-a", "app"),
        row("web-a", "sidecar"),
        row("web-b", "app"),
        replace(row("web-a", "app", cluster="edge"), breakglass_until=until),
        row("web-c", "app", namespace="ops"),
    ]
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=tuple(rows)))
        await s.inventory.write(
            InventoryChanges(closed=(replace(rows[2], until=T0 + timedelta(minutes=1)),))
        )
    async with store.session() as s:
        found = await s.inventory.open_rows_of_pods(
            [("prod", "shop", "web-a"), ("prod", "shop", "web-b"), ("edge", "shop", "web-a")]
        )
        assert await s.inventory.open_rows_of_pods([]) == []
        assert await s.inventory.open_rows_of_pods([("prod", "ops", "web-a")]) == []
    keys = sorted((r.cluster, r.pod, r.container) for r in found)
    # web-b closed; web-c in another namespace was not asked for.
    assert keys == [
        ("edge", "web-a", "app"),
        ("prod", "web-a", "app"),
        ("prod", "web-a", "sidecar"),
    ]
    edge = next(r for r in found if r.cluster == "edge")
    assert edge.breakglass_until == until
    assert all(r.breakglass_until is None for r in found if r.cluster == "prod")


async def test_open_violations_of_pods_put_many_and_actions(store: MetadataStore) -> None:
    acted = ViolationAction("evict", T0 + timedelta(seconds=5), "done")
    vs = [
        violation("v1", "web-a", T0),
        violation("v2", "web-b", T0 + timedelta(seconds=1), actions=(acted,)),
        violation("v3", "web-c", T0 + timedelta(seconds=2), closed=T0 + timedelta(minutes=1)),
        violation("v4", "web-a", T0 + timedelta(seconds=3), cluster="edge"),
    ]
    async with store.session() as s:
        await s.violations.put_many(vs)
        await s.violations.put_many([])
    async with store.session() as s:
        found = await s.violations.open_for_pods(
            [("prod", "shop", "web-a"), ("prod", "shop", "web-b"), ("prod", "shop", "web-c")]
        )
        assert await s.violations.open_for_pods([]) == {}
    assert set(found) == {("prod", "shop", "web-a"), ("prod", "shop", "web-b")}
    assert found[("prod", "shop", "web-a")] == vs[0]
    assert found[("prod", "shop", "web-b")].actions == (acted,)
    # Upsert: the same IDs again replace, never duplicate.
    async with store.session() as s:
        await s.violations.put_many([replace(vs[0], closed=T0 + timedelta(hours=1))])
    async with store.session() as s:
        assert await s.violations.open_for_pods([("prod", "shop", "web-a")]) == {}
        every = await s.violations.list_rows(ViolationQuery("p", open_only=False), 10)
    assert [v.violation_id for v in every] == ["v4", "v3", "v2", "v1"]


async def test_violation_pages_follow_the_listing_order(store: MetadataStore) -> None:
    same = T0 + timedelta(seconds=9)
    vs = [violation(f"v{i}", f"pod-{i}", T0 + timedelta(seconds=i)) for i in range(5)]
    vs += [violation("w1", "pod-w1", same), violation("w2", "pod-w2", same)]
    async with store.session() as s:
        await s.violations.put_many(vs)
    seen: list[str] = []
    query = ViolationQuery("p")
    async with store.session() as s:
        while True:
            page = await s.violations.list_rows(query, 2)
            seen += [v.violation_id for v in page]
            if len(page) < 2:
                break
            last = page[-1]
            query = replace(query, after=(last.opened, last.violation_id))
    assert seen == ["w2", "w1", "v4", "v3", "v2", "v1", "v0"]


async def test_a_pod_has_at_most_one_open_violation(store: MetadataStore) -> None:
    """Two leaders overlapping for a moment could each open a violation for the same pod; the
    store keeps the first, does not write the second and says so, and the rest of the second
    leader's batch is written (ADR 0190). Closed ones may pile up, and once the open one
    closes a new one may open."""
    first = violation("v1", "web-a", T0)
    async with store.session() as s:
        assert await s.violations.put(first) is True
    async with store.session() as s:
        refused = await s.violations.put_many(
            [
                violation("v9", "web-b", T0),
                violation("v2", "web-a", T0 + timedelta(seconds=1)),
                # Twice in one batch: the first of the two is kept as well.
                violation("v8", "web-c", T0),
                violation("v7", "web-c", T0 + timedelta(seconds=1)),
            ]
        )
    assert refused == {"v2", "v7"}
    async with store.session() as s:
        found = await s.violations.open_for_pods(
            [("prod", "shop", "web-a"), ("prod", "shop", "web-b"), ("prod", "shop", "web-c")]
        )
        assert {k[2]: v.violation_id for k, v in found.items()} == {
            "web-a": "v1",
            "web-b": "v9",
            "web-c": "v8",
        }
        assert found[("prod", "shop", "web-a")] == first
        # The same violation again is an update, not a second one.
        still = replace(first, explanation="still denied")
        assert await s.violations.put(still) is True
        assert await s.violations.put(replace(still, closed=T0 + timedelta(minutes=1))) is True
        assert await s.violations.put(violation("v3", "web-a", T0 + timedelta(minutes=2)))
    async with store.session() as s:
        again = await s.violations.open_for_pods([("prod", "shop", "web-a")])
        assert [v.violation_id for v in again.values()] == ["v3"]
        every = await s.violations.list_rows(ViolationQuery("p", open_only=False), 10)
    assert sorted(v.violation_id for v in every) == ["v1", "v3", "v8", "v9"]
    assert next(v for v in every if v.violation_id == "v1").explanation == "still denied"


async def test_a_closed_violation_is_final(store: MetadataStore) -> None:
    """A leader that read a violation open and writes it again (updated, or with its actions)
    after another leader closed it neither reopens it nor rewrites its close."""
    first = violation("v1", "web-a", T0)
    closed = replace(first, closed=T0 + timedelta(minutes=1), close_reason="VEX not_affected")
    async with store.session() as s:
        await s.violations.put(first)
    async with store.session() as s:
        await s.violations.put(closed)
    stale = replace(
        first, explanation="still denied", actions=(ViolationAction("event", T0, "done"),)
    )
    async with store.session() as s:
        assert await s.violations.put_many([stale, violation("v2", "web-b", T0)]) == {"v1"}
        assert (
            await s.violations.put(replace(closed, close_reason="the pod no longer runs")) is False
        )
    async with store.session() as s:
        assert await s.violations.open_for_pods([("prod", "shop", "web-a")]) == {}
        [kept] = [
            v
            for v in await s.violations.list_rows(ViolationQuery("p", open_only=False), 10)
            if v.violation_id == "v1"
        ]
    assert kept == closed


async def _waiting_on_a_lock(store: MetadataStore) -> None:
    """PostgreSQL: until some backend of this database waits on a lock (a row being inserted
    by a transaction still open). Bounded; other adapters queue whole units of work."""
    if not isinstance(store, SqlStore) or store.engine.dialect.name != "postgresql":
        return
    for _ in range(500):
        async with store.engine.connect() as c:
            waiting = await c.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second leader's insert never waited for the first's row")


async def test_two_leaders_opening_at_once_keep_the_first(store: MetadataStore) -> None:
    """The race itself: the first leader's insert is not committed yet when the second one's
    comes. PostgreSQL makes the second insert wait for the first transaction, then skips it;
    SQLite and memory queue the second unit of work behind the first. Either way neither
    fails and one violation is open."""
    first_wrote = asyncio.Event()
    release = asyncio.Event()

    async def first_leader() -> frozenset[str]:
        async with store.session() as s:
            refused = await s.violations.put_many([violation("v1", "web-a", T0)])
            first_wrote.set()
            await release.wait()
        return refused

    async def second_leader() -> frozenset[str]:
        await first_wrote.wait()
        async with store.session() as s:
            return await s.violations.put_many(
                [violation("v2", "web-a", T0), violation("v3", "web-b", T0)]
            )

    one = asyncio.create_task(first_leader())
    two = asyncio.create_task(second_leader())
    await first_wrote.wait()
    await _waiting_on_a_lock(store)
    release.set()
    assert await asyncio.wait_for(one, 30) == frozenset()
    assert await asyncio.wait_for(two, 30) == {"v2"}
    async with store.session() as s:
        found = await s.violations.open_for_pods(
            [("prod", "shop", "web-a"), ("prod", "shop", "web-b")]
        )
    assert sorted(v.violation_id for v in found.values()) == ["v1", "v3"]
