"""The notes repository (``uow.notes``), on memory, SQLite and PostgreSQL: exact round trips,
taken IDs, batch lookups, replace and delete, keyset pages and filters."""

from __future__ import annotations

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Not, Or, evaluate, render
from chainproof.store.port import MetadataStore
from contract.store_samples import image, note_record

P = "proj"


async def test_note_round_trip_is_exact(store: MetadataStore) -> None:
    records = [
        note_record(P, f"n{i}", kind)
        for i, kind in enumerate(["ATTESTATION", "VULNERABILITY", "BUILD"])
    ]
    async with store.session() as s:
        assert await s.notes.insert(records) == []
    async with store.session() as s:
        for r in records:
            got = await s.notes.get(P, r.note_id)
            assert got is not None
            assert got == r  # dataclass equality compares the protobuf messages too
            assert got.note.create_time.nanos == 123_456_789
        assert await s.notes.get(P, "missing") is None
        assert await s.notes.get("other", "n0") is None


async def test_stored_messages_cannot_be_mutated_through_records(store: MetadataStore) -> None:
    record = note_record(P, "n")
    async with store.session() as s:
        await s.notes.insert([record])
    record.note.short_description = "changed after insert"
    async with store.session() as s:
        got = await s.notes.get(P, "n")
        assert got is not None
        got.note.short_description = "changed after read"
    async with store.session() as s:
        again = await s.notes.get(P, "n")
        assert again is not None
        assert again.note.short_description == "note n ✓"


async def test_insert_notes_with_taken_ids_inserts_nothing(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.notes.insert([note_record(P, "taken1"), note_record(P, "taken2")]) == []
    async with store.session() as s:
        batch = [
            note_record(P, "new1"),
            note_record(P, "taken2"),
            note_record(P, "new2"),
            note_record(P, "taken1"),
        ]
        assert await s.notes.insert(batch) == ["taken2", "taken1"]
        assert await s.notes.get(P, "new1") is None
        # The session is still usable after the refusal.
        assert await s.notes.insert([note_record(P, "new3")]) == []
    async with store.session() as s:
        assert await s.notes.get(P, "new1") is None
        assert await s.notes.get(P, "new2") is None
        assert await s.notes.get(P, "new3") is not None
        # The same ID in another project is not taken.
        assert await s.notes.insert([note_record("elsewhere", "taken1")]) == []
        assert await s.notes.insert([]) == []


async def test_get_notes(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.notes.insert(
            [note_record("p1", "a"), note_record("p1", "b"), note_record("p2", "a")]
        )
    async with store.session() as s:
        got = await s.notes.get_many([("p1", "a"), ("p2", "a"), ("p2", "b"), ("p1", "a")])
        assert set(got) == {("p1", "a"), ("p2", "a")}
        assert got[("p2", "a")].note.name == "projects/p2/notes/a"
        assert await s.notes.get_many([]) == {}
        many = [("p1", f"x{i}") for i in range(1200)] + [("p1", "b")]
        assert set(await s.notes.get_many(many)) == {("p1", "b")}


async def test_kinds_of_stored_notes(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.notes.insert(
            [
                note_record("p1", "a", "VULNERABILITY"),
                note_record("p1", "b", "BUILD"),
                note_record("p2", "a"),
            ]
        )
    async with store.session(readonly=True) as s:
        got = await s.notes.kinds([("p1", "a"), ("p2", "a"), ("p2", "b"), ("p1", "a")])
        assert got == {("p1", "a"): "VULNERABILITY", ("p2", "a"): "ATTESTATION"}
        assert await s.notes.kinds([]) == {}
        # More keys than one query takes: every chunk is asked.
        many = [("p1", f"x{i}") for i in range(1200)] + [("p1", "b")]
        assert await s.notes.kinds(many) == {("p1", "b"): "BUILD"}


async def test_note_kinds(store: MetadataStore) -> None:
    """The kinds of stored notes among many keys, without the notes; absent keys left out."""
    async with store.session() as s:
        await s.notes.insert(
            [
                note_record("p1", "a"),
                note_record("p1", "v", "VULNERABILITY"),
                note_record("p2", "a"),
            ]
        )
    async with store.session() as s:
        keys = [("p1", f"x{i}") for i in range(1200)] + [("p1", "v"), ("p2", "a"), ("p1", "v")]
        kinds = await s.notes.kinds(keys)
        assert kinds == {("p1", "v"): "VULNERABILITY", ("p2", "a"): "ATTESTATION"}
        assert await s.notes.kinds([]) == {}
        await s.notes.delete("p1", "v")
        assert await s.notes.kinds([("p1", "v"), ("p1", "a")]) == {("p1", "a"): "ATTESTATION"}


async def test_replace_and_delete_note(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.notes.insert([note_record(P, "n")])
    changed = note_record(P, "n", "VULNERABILITY", short="replaced")
    async with store.session() as s:
        await s.notes.replace(changed)
        # Replacing a note that does not exist creates it, as in the reference adapter.
        await s.notes.replace(note_record(P, "fresh"))
    async with store.session() as s:
        assert await s.notes.get(P, "n") == changed
        assert await s.notes.get(P, "fresh") is not None
        assert await s.notes.delete(P, "n") is True
        assert await s.notes.delete(P, "n") is False
        assert await s.notes.get(P, "n") is None
    async with store.session() as s:
        assert [r.note_id for r in await s.notes.page(P, None, None, 10)] == ["fresh"]


async def test_list_notes_pages_and_filters(store: MetadataStore) -> None:
    kinds = ["ATTESTATION", "VULNERABILITY", "BUILD"]
    records = [note_record(P, f"n{i:02d}", kinds[i % 3]) for i in range(25)]
    async with store.session() as s:
        await s.notes.insert(records)
        await s.notes.insert([note_record("other", "n00")])
    pages: list[str] = []
    after = None
    while True:
        async with store.session() as s:
            chunk = await s.notes.page(P, None, after, 7)
        pages.extend(r.note_id for r in chunk)
        if len(chunk) < 7:
            break
        after = chunk[-1].note_id
    assert pages == sorted(r.note_id for r in records)
    filters: list[Expr] = [
        Compare(FilterColumn.KIND, "BUILD"),
        Compare(FilterColumn.KIND, "BUILD", negated=True),
        Compare(FilterColumn.NOTE_ID, "n03"),
        Compare(FilterColumn.NOTE_PROJECT, P),
        Compare(FilterColumn.NOTE_PROJECT, "other"),
        Compare(FilterColumn.RESOURCE, ""),  # notes have no resource: it reads as ""
        Compare(FilterColumn.RESOURCE, image("app")),
        Or((Compare(FilterColumn.NOTE_ID, "n01"), Compare(FilterColumn.KIND, "VULNERABILITY"))),
        Not(And((Compare(FilterColumn.KIND, "BUILD"), Compare(FilterColumn.NOTE_ID, "n02")))),
    ]
    async with store.session() as s:
        for where in filters:
            got = [r.note_id for r in await s.notes.page(P, where, None, 100)]
            expected = sorted(r.note_id for r in records if evaluate(where, r.column))
            assert got == expected, render(where)
        got = [r.note_id for r in await s.notes.page(P, filters[1], "n10", 3)]
        assert got == ["n12", "n13", "n15"]  # after n10, not BUILD (n11, n14 are BUILD)
        assert await s.notes.page(P, None, None, 0) == []
