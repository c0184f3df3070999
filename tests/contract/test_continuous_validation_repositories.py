"""What the re-judging worker reads and writes, on memory, SQLite and PostgreSQL: the
outbox's second reader (unjudged / mark_judged, independent of routing), every open row of
a set of pods, the open violations of a set of pods, batch upserts with actions, paging of
the violation list, and the breakglass window stored with a row."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chainproof.domain.events import EventType
from chainproof.domain.inventory import InventoryChanges
from chainproof.policy.violations import ViolationAction
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import ViolationQuery
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
