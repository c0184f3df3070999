"""Concurrent writers on a fresh SQLite store: new pooled connections open while another
connection holds the write lock, and must wait for it instead of failing at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chainproof.domain.messages import note_from_json
from chainproof.store.factory import create_store
from chainproof.store.port import NoteRecord


async def test_many_writers_at_once_on_a_new_pool(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/c.db")
    await store.open()
    await store.close()  # a fresh pool: every writer below opens its own connection
    store = create_store(f"sqlite:///{tmp_path}/c.db")
    try:

        async def writer(i: int) -> None:
            async with store.session() as s:
                note = note_from_json({"attestation": {}})
                assert await s.notes.insert([NoteRecord("p", f"n{i}", "ATTESTATION", note)]) == []
                await asyncio.sleep(0.05)  # hold the write lock while others connect

        await asyncio.gather(*(writer(i) for i in range(32)))
        async with store.session() as s:
            assert len(await s.notes.page("p", None, None, 100)) == 32
    finally:
        await store.close()


async def test_readers_do_not_wait_for_a_writer_and_see_committed_data_only(
    tmp_path: Path,
) -> None:
    store = create_store(f"sqlite:///{tmp_path}/r.db")
    await store.open()
    try:
        async with store.session() as s:
            await s.notes.insert(
                [NoteRecord("p", "old", "ATTESTATION", note_from_json({"attestation": {}}))]
            )
        writer_inside = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with store.session() as s:
                await s.notes.insert(
                    [NoteRecord("p", "new", "ATTESTATION", note_from_json({"attestation": {}}))]
                )
                writer_inside.set()
                await release.wait()  # hold the write lock until the reader is done

        task = asyncio.create_task(writer())
        await writer_inside.wait()
        async with asyncio.timeout(5):  # would hang if readers queued behind the writer
            async with store.session(readonly=True) as s:
                seen = [r.note_id for r in await s.notes.page("p", None, None, 10)]
        assert seen == ["old"]
        release.set()
        await task
        async with store.session(readonly=True) as s:
            assert [r.note_id for r in await s.notes.page("p", None, None, 10)] == ["new", "old"]
    finally:
        await store.close()
