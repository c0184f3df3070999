"""Batch inserts are atomic on every adapter, whatever write path the adapter takes (one COPY
on PostgreSQL, ADR 0131): a batch that fails part-way, or whose session fails after it, leaves
none of its rows behind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from chainproof.store.port import MetadataStore
from contract.store_samples import occurrence_record

P = "batch"


class Abort(Exception):
    pass


async def insert(store: MetadataStore, batch: list[Any], *, then_fail: bool = False) -> None:
    async with store.session() as s:
        await s.occurrences.insert(batch)
        if then_fail:
            raise Abort


async def stored(store: MetadataStore, ids: list[str]) -> list[str]:
    async with store.session(readonly=True) as s:
        return [i for i in ids if await s.occurrences.get(P, i) is not None]


async def test_batch_with_a_taken_id_stores_none_of_its_rows(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.occurrences.insert([occurrence_record(P, "taken")])
    batch = [occurrence_record(P, f"new-{i}") for i in range(300)]
    batch.append(occurrence_record(P, "taken"))  # the last row collides
    with pytest.raises((IntegrityError, RuntimeError), match="taken|duplicate|UNIQUE"):
        await insert(store, batch)
    assert await stored(store, [r.occurrence_id for r in batch]) == ["taken"]


async def test_batch_as_first_statement_rolls_back_with_its_session(store: MetadataStore) -> None:
    # Nothing runs before the insert: its transaction must still be the session's.
    batch = [occurrence_record(P, f"first-{i}") for i in range(50)]
    with pytest.raises(Abort):
        await insert(store, batch, then_fail=True)
    assert await stored(store, [r.occurrence_id for r in batch]) == []


async def test_batch_as_first_statement_commits_every_row(store: MetadataStore) -> None:
    batch = [occurrence_record(P, f"kept-{i}") for i in range(1000)]
    async with store.session() as s:
        await s.occurrences.insert(batch)
    assert len(await stored(store, [r.occurrence_id for r in batch])) == 1000
    async with store.session(readonly=True) as s:
        back = await s.occurrences.get(P, "kept-7")
    assert back is not None
    assert back.occurrence.create_time == batch[7].occurrence.create_time
    assert back.occurrence.remediation == "upgrade → 2.0"
