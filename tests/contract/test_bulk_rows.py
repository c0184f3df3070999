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


async def test_update_many_and_the_upsert_store_the_same_occurrence_bytes(
    store: MetadataStore,
) -> None:
    """An occurrence written over by update_many (rows inserted by the bulk path) holds what
    SQLAlchemy's upsert stores for the same new document and times: non-ASCII, a line
    separator, quotes and microseconds included."""
    sql = sql_only(store)
    rows = [occurrence_record(P, i, kind="VULNERABILITY") for i in ("by-update", "by-upsert")]
    async with store.session() as s:
        await s.occurrences.insert(rows)
    before = await stored_columns(sql, "occurrences", "occurrence_id", ["by-update"])
    changed = []
    for r in rows:
        occ = type(r.occurrence)()
        occ.CopyFrom(r.occurrence)
        occ.vulnerability.short_description = 'é, \u2028 and "quotes"'
        occ.update_time.seconds += 86_400
        occ.update_time.nanos = 123_456_000
        changed.append(replace(r, occurrence=occ, document=None))
    async with store.session() as s:
        assert await s.occurrences.update_many([changed[0]]) == ["by-update"]
        await s.occurrences.replace(changed[1])
    a, b = await stored_columns(sql, "occurrences", "occurrence_id", ["by-update", "by-upsert"])
    # The same bytes but for the name each document carries.
    assert a[:2] == b[:2] != before[0][:2]
    assert a[2] == b[2].replace("by-upsert", "by-update") != before[0][2]
    async with store.session(readonly=True) as s:
        back = await s.occurrences.get(P, "by-update")
    assert back is not None and back.occurrence == changed[0].occurrence


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


async def test_the_bulk_upsert_inserts_new_keys_sets_existing_ones_and_rolls_back_whole(
    store: MetadataStore,
) -> None:
    """bulk.upsert_rows (the image summaries' writes, ADR 0205): one statement for the
    batch on PostgreSQL, one prepared statement per row on SQLite, with the same result and
    the same stored instant bytes as SQLAlchemy's own insert."""
    from datetime import UTC, datetime

    from chainproof.store.sql import bulk
    from chainproof.store.sql.schema import image_summaries
    from chainproof.store.sql.summaries import SUMMARY_COLUMNS

    sql = sql_only(store)
    postgres = sql.target.dialect.value == "postgresql"
    when = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=UTC)

    def row(resource: str, count: int) -> tuple[Any, ...]:
        return ("up", resource, count, 0, 0, 0, 1, 0, 0, 3, when)

    key = ("scope", "resource")
    async with sql.engine.begin() as c:
        await bulk.upsert_rows(c, postgres, image_summaries, SUMMARY_COLUMNS, key, [row("a", 1)])
        await c.execute(
            image_summaries.insert(), [dict(zip(SUMMARY_COLUMNS, row("s", 1), strict=True))]
        )
        await bulk.upsert_rows(
            c, postgres, image_summaries, SUMMARY_COLUMNS, key, [row("a", 5), row("b", 2)]
        )

    async def refused_batch() -> None:
        async with sql.engine.begin() as c:
            await bulk.upsert_rows(
                c, postgres, image_summaries, SUMMARY_COLUMNS, key, [row("a", 9), row("c", 1)]
            )
            raise ZeroDivisionError  # the transaction rolls the whole batch back

    with pytest.raises(ZeroDivisionError):
        await refused_batch()
    cast = "CAST(last_scan AS TEXT)" if postgres else "last_scan"
    async with sql.engine.connect() as c:
        found = (
            await c.execute(
                sa.text(
                    f"SELECT resource, occurrences, worst_open, {cast} FROM image_summaries "  # noqa: S608
                    "WHERE scope = 'up' ORDER BY resource"
                )
            )
        ).all()
    assert [tuple(r[:3]) for r in found] == [("a", 5, 3), ("b", 2, 3), ("s", 1, 3)]
    assert found[0][3] == found[2][3]  # the same instant bytes as the statement path's
