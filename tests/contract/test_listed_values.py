"""A filter that lists values (``resource = a OR resource = b …``, compiled to ``IN``) pages in
occurrence-ID order on every adapter, like any other list (SQLite orders it through a sort
rather than the primary key there, so that the lists can use their index)."""

from __future__ import annotations

from chainproof.domain.filters import And, Compare, FilterColumn, Or
from chainproof.store.port import MetadataStore
from contract.store_samples import image, occurrence_record

P = "lists"


async def test_listed_resources_and_notes_page_in_id_order(store: MetadataStore) -> None:
    resources = [image(f"app{i}") for i in range(6)]
    records = [
        occurrence_record(P, f"o{i:03d}", resource=resources[i % 6], note=("n", f"note{i % 4}"))
        for i in range(60)
    ]
    async with store.session() as s:
        await s.occurrences.insert(records[::-1])  # stored out of order
    where = And(
        (
            Or(tuple(Compare(FilterColumn.RESOURCE, r) for r in resources[:3])),
            Compare(FilterColumn.NOTE_PROJECT, "n"),
            Or((Compare(FilterColumn.NOTE_ID, "note1"), Compare(FilterColumn.NOTE_ID, "note2"))),
        )
    )
    expected = sorted(
        r.occurrence_id
        for r in records
        if r.resource in resources[:3] and r.note_id in ("note1", "note2")
    )
    got: list[str] = []
    after: str | None = None
    async with store.session(readonly=True) as s:
        while page := await s.occurrences.page(P, where, after, 4):
            got += [r.occurrence_id for r in page]
            after = page[-1].occurrence_id
    assert got == expected and len(expected) == 15


async def test_delete_occurrences_deletes_those_that_exist_atomically(
    store: MetadataStore,
) -> None:
    records = [occurrence_record(P, f"d{i:04d}") for i in range(700)]  # past one chunk of keys
    async with store.session() as s:
        await s.occurrences.insert(records)
    wanted = [f"d{i:04d}" for i in range(0, 700, 2)] + ["missing", "d0000"]
    async with store.session() as s:
        deleted = await s.occurrences.delete_many(P, wanted)
    assert sorted(deleted) == [f"d{i:04d}" for i in range(0, 700, 2)]
    async with store.session(readonly=True) as s:
        left = await s.occurrences.page(P, None, None, 1_000)
    assert [r.occurrence_id for r in left] == [f"d{i:04d}" for i in range(1, 700, 2)]

    class Abort(Exception):
        pass

    try:
        async with store.session() as s:
            assert len(await s.occurrences.delete_many(P, [r.occurrence_id for r in left])) == 350
            raise Abort
    except Abort:
        pass
    async with store.session(readonly=True) as s:
        assert len(await s.occurrences.page(P, None, None, 1_000)) == 350  # rolled back
