"""The bulk write path (store/sql/bulk.py: COPY on PostgreSQL, the driver's executemany on
SQLite; ADR 0086) stores the very bytes SQLAlchemy's statement path stores, so that reads,
filters and time comparisons cannot tell which path wrote a row; and it never writes outside
the unit of work's transaction, nor leaves a refused batch of notes half written."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from chainproof.store.port import MetadataStore
from chainproof.store.sql import SqlStore
from contract.store_samples import note_record, occurrence_record

P = "bulk"


def sql_only(store: MetadataStore) -> SqlStore:
    if not isinstance(store, SqlStore):
        pytest.skip("the bulk path is the SQL adapters'")
    return store


async def stored_columns(store: SqlStore, table: str, key: str, ids: list[str]) -> list[Any]:
    # Every column as the database holds it (text for SQLite's instants and JSON).
    cast = "CAST({} AS TEXT)" if store.target.dialect.value == "postgresql" else "{}"
    columns = ["create_time", "update_time", "data"]
    select = ", ".join(cast.format(c) for c in columns)
    async with store.engine.connect() as c:
        rows = []
        for i in ids:
            query = sa.text(f"SELECT {select} FROM {table} WHERE {key} = :i")  # noqa: S608
            row = (await c.execute(query, {"i": i})).one()
            rows.append(tuple(row))
    return rows


async def test_bulk_and_statement_paths_store_the_same_occurrence_bytes(
    store: MetadataStore,
) -> None:
    sql = sql_only(store)
    bulk = occurrence_record(P, "by-bulk", kind="VULNERABILITY")
    statement = replace(bulk, occurrence_id="by-statement")
    async with store.session() as s:
        await s.occurrences.insert([bulk])  # the bulk path
        await s.occurrences.replace(statement)  # SQLAlchemy's upsert statement
    a, b = await stored_columns(sql, "occurrences", "occurrence_id", ["by-bulk", "by-statement"])
    assert a == b
    async with store.session(readonly=True) as s:
        back = await s.occurrences.get(P, "by-bulk")
    assert back is not None and back.occurrence == bulk.occurrence


async def test_bulk_and_statement_paths_store_the_same_note_bytes(store: MetadataStore) -> None:
    sql = sql_only(store)
    bulk = note_record(P, "n-bulk", kind="VULNERABILITY")
    statement = replace(bulk, note_id="n-statement")
    async with store.session() as s:
        assert await s.notes.insert([bulk]) == []
        await s.notes.replace(statement)
    a, b = await stored_columns(sql, "notes", "note_id", ["n-bulk", "n-statement"])
    assert a == b


async def test_a_note_batch_with_one_taken_id_writes_none_and_the_session_goes_on(
    store: MetadataStore,
) -> None:
    async with store.session() as s:
        assert await s.notes.insert([note_record(P, "taken")]) == []
    batch = [note_record(P, f"fresh-{i}") for i in range(700)] + [note_record(P, "taken")]
    async with store.session() as s:
        assert await s.notes.insert(batch) == ["taken"]
        # The savepoint undid the partial write; the same transaction still writes.
        assert await s.notes.insert([note_record(P, "after")]) == []
    async with store.session(readonly=True) as s:
        found = await s.notes.get_many([(P, r.note_id) for r in batch] + [(P, "after")])
    assert sorted(k[1] for k in found) == ["after", "taken"]


async def test_the_bulk_path_refuses_to_write_outside_a_transaction(store: MetadataStore) -> None:
    sql = sql_only(store)
    if sql.target.dialect.value == "postgresql":
        pytest.skip("PostgreSQL's COPY opens the session's transaction itself (ADR 0131)")
    from chainproof.store.sql import bulk
    from chainproof.store.sql.schema import occurrences

    async with sql.engine.connect() as c:  # no BEGIN: autocommit on SQLite's driver
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await bulk.insert_rows(
                c, False, occurrences, ("project", "occurrence_id"), [("x", "y")]
            )
