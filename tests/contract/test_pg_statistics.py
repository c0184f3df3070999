"""PostgreSQL: the store takes a table's statistics again after it bulk copied many rows
into it (ADR 0176) — and leaves them when it copied few, or when the copy rolled back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from chainproof.store.sql import SqlStore
from chainproof.store.sql import store as sql_store
from contract.conftest import empty_postgres_store
from contract.store_samples import image, occurrence_record

pytestmark = pytest.mark.postgres


async def _analyzed(store: SqlStore, table: str) -> int:
    async with store.engine.connect() as c:
        await c.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        count = await c.execute(
            sa.text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table},
        )
        return int(count.scalar_one())


async def test_many_copied_rows_are_analyzed_few_and_rolled_back_are_not(
    pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_store, "ANALYZE_AFTER_ROWS", 40)
    store = await empty_postgres_store(pg_database_url)
    try:
        before = await _analyzed(store, "occurrences")
        rows = [occurrence_record("p", f"few-{i}", resource=image(f"a{i}")) for i in range(30)]
        async with store.session() as s:
            await s.occurrences.insert(rows)
        assert await _analyzed(store, "occurrences") == before  # 30 < 40 copied so far

        class Boom(Exception):
            pass

        undone = [occurrence_record("p", f"undone-{i}", resource=image("u")) for i in range(50)]

        async def rolled_back() -> None:
            async with store.session() as s:
                await s.occurrences.insert(undone)
                raise Boom

        with pytest.raises(Boom):
            await rolled_back()
        assert await _analyzed(store, "occurrences") == before  # a rollback copied nothing

        async with store.session() as s:
            await s.occurrences.insert(
                [occurrence_record("p", f"more-{i}", resource=image(f"b{i}")) for i in range(15)]
            )
        assert await _analyzed(store, "occurrences") == before + 1  # 45 rows: taken again
        async with store.session(readonly=True) as s:
            assert len(await s.occurrences.page("p", None, None, 100)) == 45
    finally:
        await store.close()
