"""SQLite's write-ahead log is checkpointed beside the writers (store/sql/checkpoint.py).

The database file alone is read through SQLite's ``immutable`` mode, which ignores the log:
a row shows there only once a checkpoint has copied it back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from chainproof.store.sql import SqlStore
from chainproof.store.sql.checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer
from contract.store_samples import note_record


def _notes_in_file_alone(path: Path) -> int:
    """The notes the database file holds without its write-ahead log."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM notes").fetchone()[0])


async def _wait_for(condition: object, what: str) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _write_notes(store: SqlStore, prefix: str, count: int) -> None:
    async with store.session() as s:
        await s.projects.add("p")
        assert not await s.notes.insert([note_record("p", f"{prefix}{i}") for i in range(count)])


async def test_a_committed_write_reaches_the_database_file_without_the_writer_checkpointing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    store = SqlStore.from_url(f"sqlite:///{path}")
    await store.open()
    try:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        before = checkpointer.completed
        await _write_notes(store, "n", 500)
        # The commit returned before the log was copied back; the background run does it.
        await _wait_for(lambda: checkpointer.completed > before, "a background checkpoint")
        assert _notes_in_file_alone(path) == 500
        async with store.session(readonly=True) as s:
            raw = await s.connection.get_raw_connection()  # type: ignore[attr-defined]
            cursor = await raw.driver_connection.execute("PRAGMA wal_autocheckpoint")
            (pages,) = await cursor.fetchone()
        assert pages == AUTOCHECKPOINT_PAGES  # the writers' own threshold is out of the way
    finally:
        await store.close()


async def test_kicks_within_the_interval_make_one_more_checkpoint_not_one_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "k.db"
    store = SqlStore.from_url(f"sqlite:///{path}")
    await store.open()
    engine = store.engine
    checkpointer = WalCheckpointer(engine, min_interval_s=3600)
    try:
        await _write_notes(store, "a", 10)
        checkpointer.kick()
        await _wait_for(lambda: checkpointer.completed == 1, "the first checkpoint")
        await _write_notes(store, "b", 10)
        for _ in range(5):
            checkpointer.kick()  # inside the interval: one run is scheduled, none starts
        await asyncio.sleep(0.2)
        assert checkpointer.completed == 1
        assert _notes_in_file_alone(path) == 10
        # Closing cancels the scheduled run and empties the log into the file instead.
        await checkpointer.close()
        assert _notes_in_file_alone(path) == 20
        assert (tmp_path / "k.db-wal").stat().st_size == 0
    finally:
        await store.close()


async def test_closing_the_store_leaves_a_complete_database_file(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    store = SqlStore.from_url(f"sqlite:///{path}")
    await store.open()
    await _write_notes(store, "n", 50)
    await store.close()
    assert _notes_in_file_alone(path) == 50
    wal = tmp_path / "z.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


async def test_a_failing_checkpoint_is_logged_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that cannot be opened: every checkpoint fails.
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    checkpointer = WalCheckpointer(engine, min_interval_s=0)
    try:
        checkpointer.kick()
        await asyncio.sleep(0.3)
        assert checkpointer.completed == 0
        assert "checkpoint failed" in caplog.text
        await checkpointer.close()  # logs again, raises nothing
    finally:
        await engine.dispose()


async def test_memory_and_postgres_stores_have_no_checkpointer(pg_database_url: str) -> None:
    assert SqlStore.from_url("sqlite://").checkpointer is None
    assert SqlStore.from_url(pg_database_url).checkpointer is None
