"""The delivery repository, on memory, SQLite and PostgreSQL: adding keeps what exists, due
means first in line per subscription and subject, updates one or many, lists by state."""

from __future__ import annotations

from datetime import timedelta

from chainproof.store.port import MetadataStore
from contract.runtime_samples import T0, delivery


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
        await s.deliveries.update_many(
            [delivery(2, status="delivered", attempts=1, done_time=T0), delivery(5)]
        )
        await s.deliveries.update_many([])
    async with store.session() as s:
        got = await s.deliveries.list_rows("p", "hook", None, 10)
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
