"""The occurrences repository (``uow.occurrences``), on memory, SQLite and PostgreSQL: exact
round trips, replace and delete with the indexed columns, keyset pages by project and by
note (across projects). Filters on both notes and occurrences: test_filters_contract.py."""

from __future__ import annotations

from typing import Any

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Or
from chainproof.domain.messages import OccurrencePB, from_stored_json
from chainproof.store.port import MetadataStore, OccurrenceRecord
from contract.store_samples import image, occurrence_record

P = "proj"


def ids(records: list[OccurrenceRecord]) -> list[str]:
    return [r.occurrence_id for r in records]


async def add_occurrences(store: MetadataStore, records: list[OccurrenceRecord]) -> None:
    async with store.session() as s:
        await s.occurrences.insert(records)


async def all_pages(
    store: MetadataStore, where: Expr | None, page: int, *, note: tuple[str, str] | None = None
) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    while True:
        async with store.session() as s:
            if note is None:
                chunk = await s.occurrences.page(P, where, after, page)
            else:
                chunk = await s.occurrences.page_of_note(note[0], note[1], where, after, page)
        assert len(chunk) <= page
        seen.extend(ids(chunk))
        if len(chunk) < page:
            return seen
        after = chunk[-1].occurrence_id


async def test_occurrence_round_trip_is_exact(store: MetadataStore) -> None:
    records = [
        occurrence_record(P, "o1", kind="ATTESTATION"),
        occurrence_record(P, "o2", kind="VULNERABILITY"),
        occurrence_record(P, "o3", kind="DSSE_ATTESTATION"),
    ]
    await add_occurrences(store, records)
    async with store.session() as s:
        for r in records:
            got = await s.occurrences.get(P, r.occurrence_id)
            assert got == r
            assert got is not None
            assert got.occurrence.SerializeToString(
                deterministic=True
            ) == r.occurrence.SerializeToString(deterministic=True)
        assert await s.occurrences.get(P, "missing") is None
        assert await s.occurrences.get("other", "o1") is None


async def test_replace_and_delete_occurrence(store: MetadataStore) -> None:
    await add_occurrences(store, [occurrence_record(P, "o1"), occurrence_record(P, "o2")])
    moved = occurrence_record(
        P, "o1", resource=image("moved"), note=("np", "other-note"), kind="VULNERABILITY"
    )
    async with store.session() as s:
        await s.occurrences.replace(moved)
    async with store.session() as s:
        assert await s.occurrences.get(P, "o1") == moved
        # The indexed columns moved with the document.
        where = Compare(FilterColumn.RESOURCE, image("moved"))
        assert ids(await s.occurrences.page(P, where, None, 10)) == ["o1"]
        assert ids(await s.occurrences.page_of_note("np", "other-note", None, None, 10)) == ["o1"]
        assert await s.occurrences.delete(P, "o1") is True
        assert await s.occurrences.delete(P, "o1") is False
        assert await s.occurrences.delete("other", "o2") is False
    async with store.session() as s:
        assert ids(await s.occurrences.page(P, None, None, 10)) == ["o2"]


async def test_update_many_rewrites_only_what_is_stored_as_the_record_says(
    store: MetadataStore,
) -> None:
    """An update keeps an occurrence's kind, note and resource: a record that says otherwise,
    or whose occurrence is gone, is skipped, never created or moved; the others are written
    whole (document, times) and their JSON pages follow, in one statement's worth."""
    await add_occurrences(
        store,
        [occurrence_record(P, f"u{i}", kind="VULNERABILITY") for i in range(4)]
        + [occurrence_record("elsewhere", "u9", kind="VULNERABILITY")],
    )

    def rewritten(oid: str, project: str = P, **changes: Any) -> OccurrenceRecord:
        r = occurrence_record(project, oid, kind=changes.pop("kind", "VULNERABILITY"), **changes)
        r.occurrence.vulnerability.short_description = f"again {oid}"
        r.occurrence.update_time.seconds += 3_600
        return r

    batch = [
        rewritten("u2"),
        rewritten("u0"),
        rewritten("u1", resource=image("moved")),  # says another resource: skipped
        rewritten("u3", note=("np", "other-note")),  # another note: skipped
        rewritten("missing"),  # gone: not created
        rewritten("u9", project="elsewhere"),
    ]
    async with store.session() as s:
        assert await s.occurrences.update_many(batch) == ["u2", "u0", "u9"]
        assert await s.occurrences.update_many([]) == []
    async with store.session() as s:
        assert await s.occurrences.get(P, "u0") == batch[1]
        assert await s.occurrences.get(P, "u2") == batch[0]
        assert await s.occurrences.get("elsewhere", "u9") == batch[5]
        assert await s.occurrences.get(P, "u1") == occurrence_record(P, "u1", kind="VULNERABILITY")
        assert await s.occurrences.get(P, "u3") == occurrence_record(P, "u3", kind="VULNERABILITY")
        assert await s.occurrences.get(P, "missing") is None
        pages = await s.occurrences.page_documents(P, None, None, 10)
        said = {r.occurrence_id: r.document["vulnerability"].get("shortDescription") for r in pages}
        assert said == {
            "u0": "again u0",
            "u1": "CVE-2024-0001",
            "u2": "again u2",
            "u3": "CVE-2024-0001",
        }

    class Undo(Exception):
        pass

    try:
        async with store.session() as s:
            assert await s.occurrences.update_many([rewritten("u1")]) == ["u1"]
            raise Undo
    except Undo:
        pass
    async with store.session() as s:
        assert await s.occurrences.get(P, "u1") == occurrence_record(P, "u1", kind="VULNERABILITY")


async def test_keyset_pages_have_no_duplicates_and_no_gaps(store: MetadataStore) -> None:
    records = [
        occurrence_record(P, f"{i:04x}-occ", resource=image("app" if i % 3 else "db"))
        for i in range(0, 230, 3)
    ]
    await add_occurrences(store, records)
    await add_occurrences(store, [occurrence_record("other", "0000-occ")])
    expected = sorted(ids(records))
    for page in (1, 7, 20, len(records), 1000):
        assert await all_pages(store, None, page) == expected
    where = Compare(FilterColumn.RESOURCE, image("db"))
    assert await all_pages(store, where, 4) == sorted(
        r.occurrence_id for r in records if r.resource == image("db")
    )
    async with store.session() as s:
        # ``after`` is exclusive and need not be an existing key.
        assert ids(await s.occurrences.page(P, None, expected[3], 2)) == expected[4:6]
        assert ids(await s.occurrences.page(P, None, expected[3] + "!", 1)) == expected[4:5]
        assert await s.occurrences.page(P, None, expected[-1], 5) == []


async def test_list_note_occurrences_spans_projects(store: MetadataStore) -> None:
    note = ("shared-notes", "attestor")
    records = [
        occurrence_record(
            f"team-{i % 4}", f"o{i:03d}", note=note, resource=image("app" if i % 2 else "web")
        )
        for i in range(30)
    ]
    records.append(occurrence_record("team-0", "o999", note=("shared-notes", "other")))
    records.append(occurrence_record("team-0", "o998", note=("other-project", "attestor")))
    await add_occurrences(store, records)
    mine = sorted(r.occurrence_id for r in records if (r.note_project, r.note_id) == note)
    assert await all_pages(store, None, 8, note=note) == mine
    where = Compare(FilterColumn.RESOURCE, image("web"))
    assert await all_pages(store, where, 3, note=note) == [
        r.occurrence_id
        for r in sorted(records, key=lambda r: r.occurrence_id)
        if (r.note_project, r.note_id) == note and r.resource == image("web")
    ]
    async with store.session() as s:
        got = await s.occurrences.page_of_note(*note, None, None, 100)
        assert {r.project for r in got} == {"team-0", "team-1", "team-2", "team-3"}


async def test_pages_of_stored_json_match_pages_of_messages(store: MetadataStore) -> None:
    """``page_documents`` lists what ``page`` lists, in the same order and under the same
    filter, each occurrence as its stored JSON — which parses back to the same message."""
    records = [
        occurrence_record(
            P,
            f"occ-{i:03d}",
            resource=image(f"app{i % 3}"),
            kind=("VULNERABILITY", "ATTESTATION", "DSSE_ATTESTATION")[i % 3],
        )
        for i in range(25)
    ] + [occurrence_record("other", "occ-x")]
    await add_occurrences(store, records)
    where = Compare(FilterColumn.RESOURCE, image("app1"))
    for filt in (None, where):
        async with store.session() as s:
            messages = await s.occurrences.page(P, filt, None, 100)
            documents = await s.occurrences.page_documents(P, filt, None, 100)
            later = await s.occurrences.page_documents(P, filt, messages[2].occurrence_id, 3)
        assert [d.occurrence_id for d in documents] == ids(messages)
        assert [d.occurrence_id for d in later] == ids(messages)[3:6]
        for doc, msg in zip(documents, messages, strict=True):
            assert (doc.project, doc.kind, doc.note_project, doc.note_id, doc.resource) == (
                msg.project,
                msg.kind,
                msg.note_project,
                msg.note_id,
                msg.resource,
            )
            assert from_stored_json(OccurrencePB, dict(doc.document)) == msg.occurrence
    assert len(documents) == 8
    async with store.session() as s:
        assert await s.occurrences.page_documents(P, None, None, 0) == []
        first = (await s.occurrences.page_documents(P, None, None, 1))[0]
    original = dict(first.document)
    assert isinstance(first.document, dict)
    first.document["resourceUri"] = "changed"  # a caller's copy, not the store's
    async with store.session() as s:
        assert (await s.occurrences.page_documents(P, None, None, 1))[0].document == original


async def test_reads_by_resources_answer_what_pages_answer(store: MetadataStore) -> None:
    """``of_resources`` and ``documents_of_resources`` give every occurrence of the listed
    resources that meets the filter — what paging ``page`` over a resource list gives — in
    (resource, ID) order, in one call: more rows than a page, more resources than one
    statement lists, repeated and unknown resources, other projects and kinds left out."""
    resources = [image(f"app{i:03d}") for i in range(620)]
    records = [
        occurrence_record(
            P,
            f"occ-{i:05d}",
            resource=resources[(i * 7) % len(resources)],
            kind=("VULNERABILITY", "ATTESTATION")[i % 2],
            note=("notes-project", f"note-{i % 5}"),
        )
        for i in range(2_600)
    ] + [occurrence_record("other", "occ-x", resource=resources[0])]
    await add_occurrences(store, records)
    wanted = [*resources[600:], *resources[:560], resources[3], image("unknown")]
    notes = Or(tuple(Compare(FilterColumn.NOTE_ID, f"note-{n}") for n in (1, 3)))
    where = And((Compare(FilterColumn.KIND, "VULNERABILITY"), notes))
    listed = set(wanted)
    for filt, keep in (
        (None, lambda r: True),
        (where, lambda r: r.kind == "VULNERABILITY" and r.note_id in ("note-1", "note-3")),
    ):
        expected = sorted(
            (r.resource, r.occurrence_id)
            for r in records
            if r.project == P and r.resource in listed and keep(r)
        )
        async with store.session(readonly=True) as s:
            messages = await s.occurrences.of_resources(P, wanted, filt)
            documents = await s.occurrences.documents_of_resources(P, wanted, filt)
        assert len(expected) > 1_000 or filt is not None
        assert [(r.resource, r.occurrence_id) for r in messages] == expected
        assert [(d.resource, d.occurrence_id) for d in documents] == expected
        stored = {(r.project, r.occurrence_id): r for r in records}
        for doc, msg in zip(documents, messages, strict=True):
            original = stored[(msg.project, msg.occurrence_id)]
            assert msg.occurrence == original.occurrence
            assert (msg.kind, msg.note_project, msg.note_id) == (
                original.kind,
                original.note_project,
                original.note_id,
            )
            assert (doc.kind, doc.note_project, doc.note_id) == (
                msg.kind,
                msg.note_project,
                msg.note_id,
            )
            assert from_stored_json(OccurrencePB, dict(doc.document)) == msg.occurrence
    async with store.session(readonly=True) as s:
        assert await s.occurrences.of_resources(P, [], None) == []
        assert await s.occurrences.documents_of_resources(P, [image("unknown")], None) == []


async def test_reads_by_notes_answer_what_filters_answer(store: MetadataStore) -> None:
    """``of_notes`` and ``documents_of_notes``: the occurrences under the listed notes (a
    note's project counts) on the listed resources, in (resource, ID) order — more notes
    and resources than one statement lists, other projects left out."""
    resources = [image(f"app{i:03d}") for i in range(530)]
    records = [
        occurrence_record(
            P,
            f"occ-{i:05d}",
            resource=resources[(i * 11) % len(resources)],
            note=(f"np{i % 2}", f"note-{i % 601}"),
        )
        for i in range(3_000)
    ] + [occurrence_record("other", "occ-x", resource=resources[0], note=("np0", "note-0"))]
    await add_occurrences(store, records)
    notes = [("np0", f"note-{n}") for n in range(0, 601, 2)] + [
        ("np1", f"note-{n}") for n in range(0, 601, 3)
    ]
    wanted = [*resources[10:], resources[10], image("unknown")]
    chosen, listed = set(notes), set(wanted)
    expected = sorted(
        (r.resource, r.occurrence_id)
        for r in records
        if r.project == P and (r.note_project, r.note_id) in chosen and r.resource in listed
    )
    assert len(expected) > 1_000
    async with store.session(readonly=True) as s:
        messages = await s.occurrences.of_notes(P, notes, wanted)
        documents = await s.occurrences.documents_of_notes(P, notes, wanted)
        assert await s.occurrences.of_notes(P, [], wanted) == []
        assert await s.occurrences.documents_of_notes(P, notes, []) == []
    assert [(r.resource, r.occurrence_id) for r in messages] == expected
    assert [(d.resource, d.occurrence_id) for d in documents] == expected
    for doc, msg in zip(documents, messages, strict=True):
        assert from_stored_json(OccurrencePB, dict(doc.document)) == msg.occurrence
    # A few resources are probed per note, many sifted from each note's index range (SQLite):
    # both answer the same.
    for few in (wanted[:1], wanted[3:8], wanted[20:29]):
        async with store.session(readonly=True) as s:
            got = await s.occurrences.of_notes(P, notes, few)
        assert [(r.resource, r.occurrence_id) for r in got] == [
            e for e in expected if e[0] in set(few)
        ]
