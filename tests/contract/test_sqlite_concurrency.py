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
                assert await s.insert_notes([NoteRecord("p", f"n{i}", "ATTESTATION", note)]) == []
                await asyncio.sleep(0.05)  # hold the write lock while others connect

        await asyncio.gather(*(writer(i) for i in range(32)))
        async with store.session() as s:
            assert len(await s.list_notes("p", None, None, 100)) == 32
    finally:
        await store.close()
