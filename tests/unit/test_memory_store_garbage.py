"""A committed memory unit of work leaves no garbage for the cyclic collector.

Each undo step closes over the repositories, which hold the undo log: a log kept after the
session was a cycle that only the cyclic collector could free — for an SBOM's ingest some
270,000 objects, collected (slowly) whenever the collector next ran (ADR 0207)."""

from __future__ import annotations

import gc
from dataclasses import replace
from datetime import UTC, datetime

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.store.memory import MemoryStore
from chainproof.store.memory_runtime import MemoryRuntimeStore
from contract.store_samples import note_record, occurrence_record

WRITES = 200


async def _write(store: MemoryStore) -> None:
    # A coroutine of its own: nothing of the unit of work is referenced once it returns.
    async with store.session() as s:
        await s.notes.insert([note_record("p", f"n{i}") for i in range(WRITES)])
        await s.occurrences.insert([occurrence_record("p", f"o{i:04}") for i in range(WRITES)])
        await s.projects.add("p")


async def _append(store: MemoryRuntimeStore, events: list[ChangeEvent]) -> None:
    async with store.session() as r:
        await r.outbox.append(events)


async def test_a_committed_session_leaves_no_cycles() -> None:
    store = MemoryStore()
    gc.collect()
    gc.disable()
    try:
        await _write(store)
        # Before: every write's undo step (a closure, its cells and tuple) stayed in a cycle.
        assert gc.collect() < WRITES // 4
    finally:
        gc.enable()
    async with store.session(readonly=True) as s:  # and what was written is there
        assert len(await s.notes.page("p", None, None, 1000)) == WRITES
        assert len(await s.occurrences.page("p", None, None, 1000)) == WRITES


async def test_a_session_that_raises_still_rolls_back() -> None:
    store = MemoryStore()
    try:
        async with store.session() as s:
            await s.notes.insert([note_record("p", "n")])
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    async with store.session(readonly=True) as s:
        assert await s.notes.get("p", "n") is None


async def test_a_committed_runtime_session_leaves_no_cycles() -> None:
    store = MemoryRuntimeStore()
    events = [
        ChangeEvent(f"e{i}", "p", EventType.DECISION_MADE, f"projects/p/decisions/d{i}", _now())
        for i in range(WRITES)
    ]
    gc.collect()
    gc.disable()
    try:
        await _append(store, events)
        assert gc.collect() < WRITES // 4
    finally:
        gc.enable()
    assert len(store.state.events) == WRITES


def _now() -> datetime:
    return datetime(2026, 12, 3, tzinfo=UTC)


def test_copies_carry_every_field() -> None:
    """``_copy`` builds records field by field: a field added to a record must be carried."""
    from dataclasses import fields

    from chainproof.store.memory import _copy

    template = object()
    occurrence = replace(occurrence_record("p", "o"), document={"name": "x"}, template=template)
    note = replace(note_record("p", "n"), document={"name": "y"})
    for record, message in ((occurrence, "occurrence"), (note, "note")):
        copied = _copy(record)
        for f in fields(record):
            if f.name == message:
                assert getattr(copied, f.name) == getattr(record, f.name)
                assert getattr(copied, f.name) is not getattr(record, f.name)
            else:
                assert getattr(copied, f.name) is getattr(record, f.name), f.name
    assert len(fields(occurrence)) == 9 and len(fields(note)) == 5  # as _copy spells them


def test_outbox_entries_carry_every_field() -> None:
    from dataclasses import fields

    from chainproof.store.memory_runtime import _sequenced

    event = ChangeEvent("e", "p", EventType.NOTE_CHANGED, "s", _now(), {"a": 1}, 0)
    numbered = _sequenced(event, 7)
    assert numbered == replace(event, sequence=7)
    assert all(
        getattr(numbered, f.name) is getattr(event, f.name)
        for f in fields(event)
        if f.name != "sequence"
    )
    assert len(fields(event)) == 7  # as _sequenced spells them
