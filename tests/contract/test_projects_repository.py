"""The projects repository (``uow.projects``), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from chainproof.store.port import MetadataStore
from contract.store_samples import note_record, occurrence_record


async def test_projects(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.projects.add("b") is True
        assert await s.projects.add("b") is False
        for name in ("a", "c", "d", "B"):
            assert await s.projects.add(name) is True
    async with store.session() as s:
        assert await s.projects.exists("b")
        assert not await s.projects.exists("zz")
        # Code point order: upper case before lower case, whatever the database's locale.
        assert await s.projects.page(None, 10) == ["B", "a", "b", "c", "d"]
        assert await s.projects.page(None, 2) == ["B", "a"]
        assert await s.projects.page("a", 2) == ["b", "c"]
        assert await s.projects.page("d", 2) == []
        assert await s.projects.remove("c") is True
        assert await s.projects.remove("c") is False
    async with store.session() as s:
        assert await s.projects.page(None, 10) == ["B", "a", "b", "d"]


async def test_project_holds_data(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.projects.add("empty")
        await s.projects.add("with-note")
        await s.projects.add("with-occ")
        await s.notes.insert([note_record("with-note", "n")])
        await s.occurrences.insert([occurrence_record("with-occ", "o", note=("with-note", "n"))])
    async with store.session() as s:
        assert not await s.projects.holds_data("empty")
        assert not await s.projects.holds_data("unknown")
        assert await s.projects.holds_data("with-note")
        assert await s.projects.holds_data("with-occ")
