"""The server metadata repository (``uow.meta``), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from chainproof.store.port import MetadataStore


async def test_meta_get_or_set(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.meta.get_or_set("page-token-key", "first") == "first"
        assert await s.meta.get_or_set("page-token-key", "second") == "first"
    async with store.session() as s:
        assert await s.meta.get_or_set("page-token-key", "third") == "first"
        assert await s.meta.get_or_set("other", "") == ""
