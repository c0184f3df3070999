"""The runtime repositories' contract, on memory, SQLite and PostgreSQL: the inventory and
its checkpoints, the outbox, subscriptions, deliveries and violations, each reached through
a store session (``session.runtime``) and committed or rolled back with it.

Expected results are written out from the port's docstrings (store/runtime_port.py), not
read from any adapter.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.domain.inventory import InventoryChanges, RunningContainer
from chainproof.policy.violations import CheckResult, ImageResult, Violation
from chainproof.store.port import MetadataStore, NoteRecord
from chainproof.store.runtime_port import (
    DeliveryRecord,
    InventoryQuery,
    SubscriptionRecord,
    ViolationQuery,
    runtime_sessions,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def row(
    pod: str,
    container: str = "app",
    *,
    cluster: str = "prod",
    namespace: str = "shop",
    digest: str | None = D1,
    since: datetime = T0,
    uid: str = "",
    source: str = "watcher",
) -> RunningContainer:
    image = (
        f"registry.example/{container}@{digest}" if digest else f"registry.example/{container}:1"
    )
    return RunningContainer(
        cluster=cluster,
        namespace=namespace,
        workload_kind="Deployment",
        workload_name="web",
        pod=pod,
        pod_uid=uid or f"uid-{pod}",
        container=container,
        service_account="default",
        image_spec=f"registry.example/{container}:1",
        image_id=f"docker-pullable://registry.example/{container}@{digest}" if digest else "",
        digest=digest,
        image=image,
        since=since,
        source=source,
    )


class Boom(Exception):
    pass


# inventory --------------------------------------------------------------------------------


async def test_inventory_opens_updates_closes_and_reopens(store: MetadataStore) -> None:
    a, b = row("web-a"), row("web-b", namespace="other")
    c = row("web-c", cluster="edge")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a, b, c)))
    async with store.session() as s:
        inv = s.inventory
        assert sorted(r.pod for r in await inv.open_rows("prod")) == ["web-a", "web-b"]
        assert [r.pod for r in await inv.open_rows("prod", "shop")] == ["web-a"]
        assert await inv.open_rows("prod", "shop", "web-a") == [a]
        assert await inv.open_rows("prod", "shop", "nobody") == []
        assert await inv.open_rows("edge") == [c]
    # An imageID appears: the open row is updated in place and keeps its since.
    later = T0 + timedelta(minutes=1)
    seen = replace(a, image_id="docker://x@" + D1, workload_name="web2")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(changed=(seen,)))
    async with store.session() as s:
        assert await s.inventory.open_rows("prod", "shop", "web-a") == [seen]
    # A new life of the same container: close and open in one write.
    closed = replace(seen, until=later)
    again = row("web-a", digest=D2, since=later, uid="uid-2")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(again,), closed=(closed,)))
    async with store.session() as s:
        inv = s.inventory
        assert await inv.open_rows("prod", "shop", "web-a") == [again]
        everything = await inv.list_rows(InventoryQuery(include_closed=True), 100)
        assert closed in everything and again in everything and len(everything) == 4


async def test_opening_an_open_container_again_fails_and_writes_nothing(
    store: MetadataStore,
) -> None:
    a = row("web-a")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a,)))
    with pytest.raises(Exception):  # noqa: B017,PT011 - each adapter has its own error type
        async with store.session() as s:
            await s.inventory.write(
                InventoryChanges(opened=(row("other"), replace(a, pod_uid="x")))
            )
    async with store.session() as s:
        assert await s.inventory.open_rows("prod") == [a]


async def test_inventory_list_filters_and_orders_newest_first(store: MetadataStore) -> None:
    rows = [
        row("p1", since=T0),
        row("p2", since=T0 + timedelta(seconds=2), container="db", digest=D2),
        row("p3", since=T0 + timedelta(seconds=1), cluster="edge"),
        row("p4", since=T0 + timedelta(seconds=3), namespace="ops"),
    ]
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=tuple(rows)))
        await s.inventory.write(
            InventoryChanges(closed=(replace(rows[3], until=T0 + timedelta(seconds=4)),))
        )
    async with store.session(readonly=True) as s:
        inv = s.inventory
        pods = lambda got: [r.pod for r in got]  # noqa: E731
        assert pods(await inv.list_rows(InventoryQuery(), 10)) == ["p2", "p3", "p1"]
        assert pods(await inv.list_rows(InventoryQuery(), 2)) == ["p2", "p3"]
        assert pods(await inv.list_rows(InventoryQuery(include_closed=True), 10)) == [
            "p4",
            "p2",
            "p3",
            "p1",
        ]
        assert pods(await inv.list_rows(InventoryQuery(clusters=("edge",)), 10)) == ["p3"]
        assert pods(await inv.list_rows(InventoryQuery(namespace="shop"), 10)) == [
            "p2",
            "p3",
            "p1",
        ]
        by_image = InventoryQuery(images=(rows[1].image, "registry.example/none@" + D1))
        assert pods(await inv.list_rows(by_image, 10)) == ["p2"]
        # Many images at once (more than one IN list's worth) still filter and order.
        many = (*(f"registry.example/x{i}@{D1}" for i in range(2500)), rows[0].image)
        assert pods(await inv.list_rows(InventoryQuery(images=many), 10)) == ["p3", "p1"]
        assert pods(await inv.list_rows(InventoryQuery(), 0)) == []


async def test_running_images_are_distinct_sorted_and_open_only(store: MetadataStore) -> None:
    a, b = row("p1"), row("p2")  # the same image twice
    c = row("p3", container="db", digest=D2, cluster="edge")
    d = row("p4", container="zz")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a, b, c, d)))
        await s.inventory.write(InventoryChanges(closed=(replace(d, until=T0),)))
    async with store.session() as s:
        inv = s.inventory
        assert await inv.running_images([]) == sorted({a.image, c.image})
        assert await inv.running_images(["prod"]) == [a.image]
        assert await inv.running_images(["edge", "nowhere"]) == [c.image]


async def test_checkpoints_per_cluster(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.inventory.get_checkpoint("prod") is None
        await s.inventory.set_checkpoint("prod", "100")
        await s.inventory.set_checkpoint("edge", "7")
    async with store.session() as s:
        await s.inventory.set_checkpoint("prod", "250")
    async with store.session() as s:
        assert await s.inventory.get_checkpoint("prod") == "250"
        assert await s.inventory.get_checkpoint("edge") == "7"


async def test_a_failed_session_leaves_no_inventory_or_checkpoint(store: MetadataStore) -> None:
    async def fail() -> None:
        async with store.session() as s:
            await s.inventory.write(InventoryChanges(opened=(row("p1"),)))
            await s.inventory.set_checkpoint("prod", "9")
            raise Boom

    with pytest.raises(Boom):
        await fail()
    async with store.session() as s:
        assert await s.inventory.open_rows("prod") == []
        assert await s.inventory.get_checkpoint("prod") is None


# outbox -----------------------------------------------------------------------------------


def event(n: int, subject: str = "projects/p/occurrences/a", project: str = "p") -> ChangeEvent:
    return ChangeEvent(
        f"0190-{n:04d}",
        project,
        EventType.OCCURRENCE_CREATED,
        subject,
        T0 + timedelta(seconds=n),
        {"name": subject, "kind": "VULNERABILITY", "n": n},
    )


async def test_outbox_numbers_events_in_order_and_routes_them_once(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.outbox.append([event(1), event(2)])
    async with store.session() as s:
        await s.outbox.append([event(3, "projects/p/occurrences/b")])
    async with store.session() as s:
        pending = await s.outbox.unrouted(10)
    assert [e.event_id for e in pending] == ["0190-0001", "0190-0002", "0190-0003"]
    sequences = [e.sequence for e in pending]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3 and sequences[0] > 0
    first = pending[0]
    assert first == replace(event(1), sequence=sequences[0])
    async with store.session() as s:
        assert [e.event_id for e in await s.outbox.unrouted(2)] == [
            "0190-0001",
            "0190-0002",
        ]
        await s.outbox.mark_routed(sequences[:2])
    async with store.session() as s:
        assert [e.event_id for e in await s.outbox.unrouted(10)] == ["0190-0003"]
        got = await s.outbox.get([sequences[0], sequences[2], 10**9])
        assert set(got) == {sequences[0], sequences[2]}
        assert got[sequences[2]].subject == "projects/p/occurrences/b"
        assert got[sequences[0]].data == {
            "name": "projects/p/occurrences/a",
            "kind": "VULNERABILITY",
            "n": 1,
        }
    # Later events get higher numbers than every earlier one, routed or not.
    async with store.session() as s:
        await s.outbox.append([event(4)])
    async with store.session() as s:
        third, fourth = await s.outbox.unrouted(10)
    assert (third.event_id, fourth.event_id) == ("0190-0003", "0190-0004")
    assert fourth.sequence > max(sequences)


async def test_outbox_event_rolls_back_with_the_change_it_announces(
    store: MetadataStore,
) -> None:
    from chainproof.domain.messages import note_from_json

    note = note_from_json({"vulnerability": {}})

    async def fail() -> None:
        async with store.session() as s:
            await s.notes.insert([NoteRecord("p", "n1", "VULNERABILITY", note)])
            await s.outbox.append([event(1)])
            raise Boom

    with pytest.raises(Boom):
        await fail()
    async with store.session() as s:
        assert await s.notes.get("p", "n1") is None
        assert await s.outbox.unrouted(10) == []
    async with store.session() as s:
        await s.notes.insert([NoteRecord("p", "n1", "VULNERABILITY", note)])
        await s.outbox.append([event(1)])
    async with store.session() as s:
        assert await s.notes.get("p", "n1") is not None
        assert [e.event_id for e in await s.outbox.unrouted(10)] == ["0190-0001"]


async def test_runtime_sessions_commit_each_block(store: MetadataStore) -> None:
    sessions = runtime_sessions(store)
    async with sessions() as repos:
        await repos.outbox.append([event(1)])

    async def fail() -> None:
        async with sessions() as repos:
            await repos.outbox.append([event(2)])
            raise Boom

    with pytest.raises(Boom):
        await fail()
    async with runtime_sessions(store, readonly=True)() as repos:
        assert [e.event_id for e in await repos.outbox.unrouted(10)] == ["0190-0001"]


# subscriptions ----------------------------------------------------------------------------


def subscription(project: str, sid: str, **kw: object) -> SubscriptionRecord:
    base = SubscriptionRecord(
        project,
        sid,
        ("occurrence",),
        ("dev.chainproof.occurrence.created",),
        {"http": {"url": "https://hooks.example/x", "secret": "whsec_abc"}},
        T0,
        "a hook",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_subscriptions_put_get_list_delete(store: MetadataStore) -> None:
    a = subscription("p", "a")
    b = subscription("p", "b", kinds=(), types=(), sink={"nats": {"subject": "cp.events"}})
    c = subscription("q", "a")
    async with store.session() as s:
        for r in (b, c, a):
            await s.subscriptions.put(r)
    async with store.session() as s:
        subs = s.subscriptions
        assert await subs.get("p", "a") == a
        assert await subs.get("p", "b") == b
        assert await subs.get("p", "zz") is None
        assert await subs.list_rows("p") == [a, b]
        assert await subs.list_rows(None) == [a, b, c]
        await subs.put(replace(a, description="changed"))
    async with store.session() as s:
        subs = s.subscriptions
        got = await subs.get("p", "a")
        assert got is not None and got.description == "changed"
        await s.runtime.deliveries.add([delivery(7, sid="a"), delivery(8, sid="b")])
        assert await subs.delete("p", "a") is True
        assert await subs.delete("p", "a") is False
        # Its deliveries went with it; another subscription's stay.
        assert await s.runtime.deliveries.list_rows("p", "a", None, 10) == []
        assert len(await s.runtime.deliveries.list_rows("p", "b", None, 10)) == 1
    async with store.session() as s:
        assert await s.subscriptions.list_rows(None) == [b, c]


# deliveries -------------------------------------------------------------------------------


def delivery(seq: int, subject: str = "s1", sid: str = "hook", **kw: object) -> DeliveryRecord:
    return replace(
        DeliveryRecord("p", sid, seq, f"e{seq}", subject, next_attempt=T0),
        **kw,  # type: ignore[arg-type]
    )


async def test_delivery_add_keeps_an_existing_one(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.deliveries.add([delivery(1)])
        await s.deliveries.update(delivery(1, attempts=3, last_error="down"))
    async with store.session() as s:
        await s.deliveries.add([delivery(1), delivery(2)])
    async with store.session() as s:
        got = await s.deliveries.list_rows("p", "hook", None, 10)
    assert got == [delivery(1, attempts=3, last_error="down"), delivery(2)]
    async with store.session() as s:
        await s.runtime.deliveries.update_many(
            [delivery(2, status="delivered", attempts=1, done_time=T0), delivery(5)]
        )
        await s.runtime.deliveries.update_many([])
    async with store.session() as s:
        got = await s.runtime.deliveries.list_rows("p", "hook", None, 10)
    assert got == [
        delivery(1, attempts=3, last_error="down"),
        delivery(2, status="delivered", attempts=1, done_time=T0),
        delivery(5),
    ]


async def test_due_is_first_in_line_per_subscription_and_subject(store: MetadataStore) -> None:
    now = T0 + timedelta(minutes=1)
    later = now + timedelta(minutes=5)
    async with store.session() as s:
        await s.deliveries.add(
            [
                delivery(1, "s1", next_attempt=later),  # backing off: holds s1's line
                delivery(2, "s1"),
                delivery(3, "s2", next_attempt=None),
                delivery(4, "s2"),
                delivery(5, "s3", status="delivered"),
                delivery(6, "s3"),
                delivery(7, "s4", status="dead"),
                delivery(8, "s4"),
                delivery(2, "s1", sid="other"),  # another subscription: its own line
                delivery(9, "s5", next_attempt=now),
            ]
        )
    async with store.session() as s:
        due = await s.deliveries.due(now, 10)
    assert [(d.subscription_id, d.sequence) for d in due] == [
        ("other", 2),
        ("hook", 3),
        ("hook", 6),
        ("hook", 8),
        ("hook", 9),
    ]
    async with store.session() as s:
        assert len(await s.deliveries.due(now, 2)) == 2
        # Delivering s2's first lets its second come up; s1 stays held until its first is due.
        await s.deliveries.update(delivery(3, "s2", status="delivered", done_time=now))
    async with store.session() as s:
        due = {(d.subscription_id, d.sequence) for d in await s.deliveries.due(now, 10)}
    assert ("hook", 4) in due and ("hook", 3) not in due and ("hook", 2) not in due
    async with store.session() as s:
        due = {(d.subscription_id, d.sequence) for d in await s.deliveries.due(later, 10)}
    assert ("hook", 1) in due and ("hook", 2) not in due


async def test_delivery_list_by_status_in_sequence_order(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.deliveries.add(
            [
                delivery(3, status="dead", last_error="HTTP 404", done_time=T0),
                delivery(1, status="delivered", attempts=1, done_time=T0),
                delivery(2),
                delivery(4, sid="other"),
            ]
        )
    async with store.session() as s:
        d = s.deliveries
        assert [r.sequence for r in await d.list_rows("p", "hook", None, 10)] == [1, 2, 3]
        dead = await d.list_rows("p", "hook", "dead", 10)
        assert dead == [delivery(3, status="dead", last_error="HTTP 404", done_time=T0)]
        assert [r.sequence for r in await d.list_rows("p", "hook", None, 2)] == [1, 2]
        assert await d.list_rows("q", "hook", None, 10) == []


# violations -------------------------------------------------------------------------------


def violation(vid: str, pod: str, opened: datetime, **kw: object) -> Violation:
    image = ImageResult(
        "registry.example/web@" + D1,
        "app",
        "DENY",
        "CVE-2026-1 is CRITICAL",
        (
            CheckResult("no-critical", "vulnerabilities", "NON_CONFORMANT", "CVE-2026-1"),
            CheckResult("signed", "attested_by", "CONFORMANT", "signed by ci"),
        ),
    )
    base = Violation(
        vid,
        "p",
        "prod",
        "shop",
        pod,
        "Deployment",
        "web",
        (image,),
        "registry.example/web: CVE-2026-1 is CRITICAL",
        "occurrence projects/p/occurrences/x",
        opened,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_violations_put_open_for_list_and_count(store: MetadataStore) -> None:
    v1 = violation("v1", "web-a", T0)
    v2 = violation("v2", "web-b", T0 + timedelta(seconds=1))
    v3 = violation("v3", "web-c", T0 + timedelta(seconds=2), namespace="ops", cluster="edge")
    v4 = violation("v4", "web-d", T0 + timedelta(seconds=3), project="q")
    async with store.session() as s:
        for v in (v1, v2, v3, v4):
            await s.violations.put(v)
    async with store.session() as s:
        vs = s.violations
        assert await vs.open_for("prod", "shop", "web-a") == v1
        assert await vs.open_for("prod", "shop", "nobody") is None
        assert [v.violation_id for v in await vs.list_rows(ViolationQuery("p"), 10)] == [
            "v3",
            "v2",
            "v1",
        ]
        assert await vs.count_open() == {
            ("p", "prod", "shop"): 2,
            ("p", "edge", "ops"): 1,
            ("q", "prod", "shop"): 1,
        }
        closed = replace(v1, closed=T0 + timedelta(minutes=1), close_reason="VEX not_affected")
        await vs.put(closed)
    async with store.session() as s:
        vs = s.violations
        assert await vs.open_for("prod", "shop", "web-a") is None
        assert [v.violation_id for v in await vs.list_rows(ViolationQuery("p"), 10)] == [
            "v3",
            "v2",
        ]
        every = await vs.list_rows(ViolationQuery("p", open_only=False), 10)
        assert [v.violation_id for v in every] == ["v3", "v2", "v1"]
        assert every[2] == closed
        edge = ViolationQuery("p", clusters=("edge",), open_only=False)
        assert [v.violation_id for v in await vs.list_rows(edge, 10)] == ["v3"]
        shop = ViolationQuery("p", namespace="shop", open_only=False)
        assert [v.violation_id for v in await vs.list_rows(shop, 1)] == ["v2"]
        assert (await vs.count_open())[("p", "prod", "shop")] == 1


async def test_pruning_forgets_delivered_and_keeps_pending_and_dead(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.runtime.outbox.append(
            [event(n, f"projects/p/occurrences/{n}") for n in (1, 2, 3, 4)]
        )
    async with store.session() as s:
        seqs = [e.sequence for e in await s.runtime.outbox.unrouted(10)]
        await s.runtime.outbox.mark_routed(seqs[:3])  # the fourth is not routed yet
        await s.runtime.deliveries.add(
            [
                delivery(seqs[0], status="delivered", done_time=T0),
                delivery(seqs[1], status="dead", done_time=T0),
                delivery(seqs[2]),
                delivery(
                    seqs[0], sid="late", status="delivered", done_time=T0 + timedelta(hours=2)
                ),
            ]
        )
    cutoff = T0 + timedelta(hours=1)
    after_all = T0 + timedelta(days=1)
    async with store.session() as s:
        assert await s.runtime.deliveries.prune(cutoff, 10) == 1  # only the old delivered one
        # The first event is still wanted by nobody pending or dead: it goes; the second
        # (a dead letter's) and third (pending) stay; the fourth was never routed.
        assert await s.runtime.outbox.prune(after_all, 10) == 1
    async with store.session() as s:
        left = await s.runtime.outbox.get(seqs)
        assert sorted(left) == seqs[1:]
        assert [
            d.subscription_id for d in await s.runtime.deliveries.list_rows("p", "late", None, 9)
        ] == ["late"]
        assert [
            d.sequence for d in await s.runtime.deliveries.list_rows("p", "hook", None, 9)
        ] == seqs[1:3]
        assert await s.runtime.deliveries.prune(after_all, 0) == 0
        assert await s.runtime.deliveries.prune(after_all, 10) == 1
        assert await s.runtime.outbox.prune(after_all, 10) == 0
