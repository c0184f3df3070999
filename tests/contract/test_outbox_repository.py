"""The outbox repository, on memory, SQLite and PostgreSQL: events numbered in order, routed
once, read back by sequence, committed or rolled back with the change they announce, and
pruned once nobody needs them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chainproof.domain.messages import note_from_json
from chainproof.store.port import MetadataStore, NoteRecord
from chainproof.store.runtime_port import runtime_sessions
from contract.runtime_samples import T0, Boom, delivery, event


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


async def test_pruning_forgets_delivered_and_keeps_pending_and_dead(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.outbox.append([event(n, f"projects/p/occurrences/{n}") for n in (1, 2, 3, 4)])
    async with store.session() as s:
        seqs = [e.sequence for e in await s.outbox.unrouted(10)]
        await s.outbox.mark_routed(seqs[:3])  # the fourth is not routed yet
        await s.deliveries.add(
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
        assert await s.deliveries.prune(cutoff, 10) == 1  # only the old delivered one
        # The first event is still wanted by nobody pending or dead: it goes; the second
        # (a dead letter's) and third (pending) stay; the fourth was never routed.
        assert await s.outbox.prune(after_all, 10) == 1
    async with store.session() as s:
        left = await s.outbox.get(seqs)
        assert sorted(left) == seqs[1:]
        assert [d.subscription_id for d in await s.deliveries.list_rows("p", "late", None, 9)] == [
            "late"
        ]
        assert [d.sequence for d in await s.deliveries.list_rows("p", "hook", None, 9)] == seqs[1:3]
        assert await s.deliveries.prune(after_all, 0) == 0
        assert await s.deliveries.prune(after_all, 10) == 1
        assert await s.outbox.prune(after_all, 10) == 0
