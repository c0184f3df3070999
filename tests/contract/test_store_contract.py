"""The store contract: every MetadataStore adapter behaves like the in-memory reference.

Each test runs on memory, SQLite and PostgreSQL (the ``store`` fixture). Expected results
come from the records themselves through ``domain.filters.evaluate``, the definition of what
a filter means, so a SQL translation that drifts from it fails here.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Not, Or, evaluate, render
from chainproof.store.port import MetadataStore, OccurrenceRecord
from contract.store_samples import image, note_record, occurrence_record

P = "proj"


def ids(records: list[OccurrenceRecord]) -> list[str]:
    return [r.occurrence_id for r in records]


async def add_occurrences(store: MetadataStore, records: list[OccurrenceRecord]) -> None:
    async with store.session() as s:
        await s.insert_occurrences(records)


async def all_pages(
    store: MetadataStore, where: Expr | None, page: int, *, note: tuple[str, str] | None = None
) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    while True:
        async with store.session() as s:
            if note is None:
                chunk = await s.list_occurrences(P, where, after, page)
            else:
                chunk = await s.list_note_occurrences(note[0], note[1], where, after, page)
        assert len(chunk) <= page
        seen.extend(ids(chunk))
        if len(chunk) < page:
            return seen
        after = chunk[-1].occurrence_id


# projects ---------------------------------------------------------------------------------


async def test_projects(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.add_project("b") is True
        assert await s.add_project("b") is False
        for name in ("a", "c", "d", "B"):
            assert await s.add_project(name) is True
    async with store.session() as s:
        assert await s.has_project("b")
        assert not await s.has_project("zz")
        # Code point order: upper case before lower case, whatever the database's locale.
        assert await s.list_projects(None, 10) == ["B", "a", "b", "c", "d"]
        assert await s.list_projects(None, 2) == ["B", "a"]
        assert await s.list_projects("a", 2) == ["b", "c"]
        assert await s.list_projects("d", 2) == []
        assert await s.remove_project("c") is True
        assert await s.remove_project("c") is False
    async with store.session() as s:
        assert await s.list_projects(None, 10) == ["B", "a", "b", "d"]


async def test_project_holds_data(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.add_project("empty")
        await s.add_project("with-note")
        await s.add_project("with-occ")
        await s.insert_notes([note_record("with-note", "n")])
        await s.insert_occurrences([occurrence_record("with-occ", "o", note=("with-note", "n"))])
    async with store.session() as s:
        assert not await s.project_holds_data("empty")
        assert not await s.project_holds_data("unknown")
        assert await s.project_holds_data("with-note")
        assert await s.project_holds_data("with-occ")


# notes ------------------------------------------------------------------------------------


async def test_note_round_trip_is_exact(store: MetadataStore) -> None:
    records = [
        note_record(P, f"n{i}", kind)
        for i, kind in enumerate(["ATTESTATION", "VULNERABILITY", "BUILD"])
    ]
    async with store.session() as s:
        assert await s.insert_notes(records) == []
    async with store.session() as s:
        for r in records:
            got = await s.get_note(P, r.note_id)
            assert got is not None
            assert got == r  # dataclass equality compares the protobuf messages too
            assert got.note.create_time.nanos == 123_456_789
        assert await s.get_note(P, "missing") is None
        assert await s.get_note("other", "n0") is None


async def test_stored_messages_cannot_be_mutated_through_records(store: MetadataStore) -> None:
    record = note_record(P, "n")
    async with store.session() as s:
        await s.insert_notes([record])
    record.note.short_description = "changed after insert"
    async with store.session() as s:
        got = await s.get_note(P, "n")
        assert got is not None
        got.note.short_description = "changed after read"
    async with store.session() as s:
        again = await s.get_note(P, "n")
        assert again is not None
        assert again.note.short_description == "note n ✓"


async def test_insert_notes_with_taken_ids_inserts_nothing(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.insert_notes([note_record(P, "taken1"), note_record(P, "taken2")]) == []
    async with store.session() as s:
        batch = [
            note_record(P, "new1"),
            note_record(P, "taken2"),
            note_record(P, "new2"),
            note_record(P, "taken1"),
        ]
        assert await s.insert_notes(batch) == ["taken2", "taken1"]
        assert await s.get_note(P, "new1") is None
        # The session is still usable after the refusal.
        assert await s.insert_notes([note_record(P, "new3")]) == []
    async with store.session() as s:
        assert await s.get_note(P, "new1") is None
        assert await s.get_note(P, "new2") is None
        assert await s.get_note(P, "new3") is not None
        # The same ID in another project is not taken.
        assert await s.insert_notes([note_record("elsewhere", "taken1")]) == []
        assert await s.insert_notes([]) == []


async def test_get_notes(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.insert_notes(
            [note_record("p1", "a"), note_record("p1", "b"), note_record("p2", "a")]
        )
    async with store.session() as s:
        got = await s.get_notes([("p1", "a"), ("p2", "a"), ("p2", "b"), ("p1", "a")])
        assert set(got) == {("p1", "a"), ("p2", "a")}
        assert got[("p2", "a")].note.name == "projects/p2/notes/a"
        assert await s.get_notes([]) == {}
        many = [("p1", f"x{i}") for i in range(1200)] + [("p1", "b")]
        assert set(await s.get_notes(many)) == {("p1", "b")}


async def test_replace_and_delete_note(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.insert_notes([note_record(P, "n")])
    changed = note_record(P, "n", "VULNERABILITY", short="replaced")
    async with store.session() as s:
        await s.replace_note(changed)
        # Replacing a note that does not exist creates it, as in the reference adapter.
        await s.replace_note(note_record(P, "fresh"))
    async with store.session() as s:
        assert await s.get_note(P, "n") == changed
        assert await s.get_note(P, "fresh") is not None
        assert await s.delete_note(P, "n") is True
        assert await s.delete_note(P, "n") is False
        assert await s.get_note(P, "n") is None
    async with store.session() as s:
        assert [r.note_id for r in await s.list_notes(P, None, None, 10)] == ["fresh"]


async def test_list_notes_pages_and_filters(store: MetadataStore) -> None:
    kinds = ["ATTESTATION", "VULNERABILITY", "BUILD"]
    records = [note_record(P, f"n{i:02d}", kinds[i % 3]) for i in range(25)]
    async with store.session() as s:
        await s.insert_notes(records)
        await s.insert_notes([note_record("other", "n00")])
    pages: list[str] = []
    after = None
    while True:
        async with store.session() as s:
            chunk = await s.list_notes(P, None, after, 7)
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
            got = [r.note_id for r in await s.list_notes(P, where, None, 100)]
            expected = sorted(r.note_id for r in records if evaluate(where, r.column))
            assert got == expected, render(where)
        got = [r.note_id for r in await s.list_notes(P, filters[1], "n10", 3)]
        assert got == ["n12", "n13", "n15"]  # after n10, not BUILD (n11, n14 are BUILD)
        assert await s.list_notes(P, None, None, 0) == []


# occurrences ------------------------------------------------------------------------------


async def test_occurrence_round_trip_is_exact(store: MetadataStore) -> None:
    records = [
        occurrence_record(P, "o1", kind="ATTESTATION"),
        occurrence_record(P, "o2", kind="VULNERABILITY"),
        occurrence_record(P, "o3", kind="DSSE_ATTESTATION"),
    ]
    await add_occurrences(store, records)
    async with store.session() as s:
        for r in records:
            got = await s.get_occurrence(P, r.occurrence_id)
            assert got == r
            assert got is not None
            assert got.occurrence.SerializeToString(
                deterministic=True
            ) == r.occurrence.SerializeToString(deterministic=True)
        assert await s.get_occurrence(P, "missing") is None
        assert await s.get_occurrence("other", "o1") is None


async def test_replace_and_delete_occurrence(store: MetadataStore) -> None:
    await add_occurrences(store, [occurrence_record(P, "o1"), occurrence_record(P, "o2")])
    moved = occurrence_record(
        P, "o1", resource=image("moved"), note=("np", "other-note"), kind="VULNERABILITY"
    )
    async with store.session() as s:
        await s.replace_occurrence(moved)
    async with store.session() as s:
        assert await s.get_occurrence(P, "o1") == moved
        # The indexed columns moved with the document.
        where = Compare(FilterColumn.RESOURCE, image("moved"))
        assert ids(await s.list_occurrences(P, where, None, 10)) == ["o1"]
        assert ids(await s.list_note_occurrences("np", "other-note", None, None, 10)) == ["o1"]
        assert await s.delete_occurrence(P, "o1") is True
        assert await s.delete_occurrence(P, "o1") is False
        assert await s.delete_occurrence("other", "o2") is False
    async with store.session() as s:
        assert ids(await s.list_occurrences(P, None, None, 10)) == ["o2"]


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
        assert ids(await s.list_occurrences(P, None, expected[3], 2)) == expected[4:6]
        assert ids(await s.list_occurrences(P, None, expected[3] + "!", 1)) == expected[4:5]
        assert await s.list_occurrences(P, None, expected[-1], 5) == []


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
        got = await s.list_note_occurrences(*note, None, None, 100)
        assert {r.project for r in got} == {"team-0", "team-1", "team-2", "team-3"}


# filters ----------------------------------------------------------------------------------

_KINDS = ["ATTESTATION", "VULNERABILITY", "DSSE_ATTESTATION"]
_RESOURCES = [image("app"), image("web"), "pkg:pypi/requests@2.32.0"]
_NOTES = [("np1", "a"), ("np1", "b"), ("np2", "a")]


def _filter_dataset() -> list[OccurrenceRecord]:
    combos = itertools.product(range(3), range(3), range(3))
    return [
        occurrence_record(P, f"o{i:02d}", kind=_KINDS[k], resource=_RESOURCES[r], note=_NOTES[n])
        for i, (k, r, n) in enumerate(combos)
    ]


def _c(column: FilterColumn, value: str, negated: bool = False) -> Compare:
    return Compare(column, value, negated)


K, R, NP, NI = (
    FilterColumn.KIND,
    FilterColumn.RESOURCE,
    FilterColumn.NOTE_PROJECT,
    FilterColumn.NOTE_ID,
)

FILTER_SHAPES: list[Expr] = [
    _c(K, "VULNERABILITY"),
    _c(K, "VULNERABILITY", negated=True),
    _c(R, image("web")),
    _c(R, image("web"), negated=True),
    _c(R, "registry.example.com/nothing@sha256:00"),
    _c(NP, "np2"),
    _c(NP, "np2", negated=True),
    _c(NI, "a"),
    _c(NI, "a", negated=True),
    And((_c(NP, "np1"), _c(NI, "b"))),
    Or((_c(K, "ATTESTATION"), _c(R, "pkg:pypi/requests@2.32.0"))),
    Not(_c(K, "ATTESTATION")),
    Not(And((_c(NP, "np1"), _c(NI, "a")))),
    And(
        (
            Or((_c(K, "VULNERABILITY"), _c(K, "ATTESTATION"))),
            Not(_c(R, image("app"))),
            _c(NI, "a", negated=True),
        )
    ),
    Or(
        (
            And((_c(K, "DSSE_ATTESTATION"), _c(NP, "np2"))),
            Not(Or((_c(R, image("app")), _c(NI, "b")))),
        )
    ),
    Not(Not(_c(R, image("app")))),
    And(()),  # matches everything, as all([]) does
    Or(()),  # matches nothing, as any([]) does
]


@pytest.mark.parametrize("where", FILTER_SHAPES, ids=render)
async def test_every_filter_shape(store: MetadataStore, where: Expr) -> None:
    records = _filter_dataset()
    await add_occurrences(store, records)
    expected = sorted(r.occurrence_id for r in records if evaluate(where, r.column))
    async with store.session() as s:
        assert ids(await s.list_occurrences(P, where, None, 1000)) == expected
        by_note = await s.list_note_occurrences("np1", "a", where, None, 1000)
        assert ids(by_note) == sorted(
            r.occurrence_id
            for r in records
            if (r.note_project, r.note_id) == ("np1", "a") and evaluate(where, r.column)
        )


# Random filters over random records, checked against the definition of a filter. The
# values come from small pools so that comparisons hit as often as they miss.
_VALUES = {
    K: st.sampled_from(_KINDS),
    R: st.sampled_from([*_RESOURCES, "ünïcødé/☃@sha256:1", ""]),
    NP: st.sampled_from(["np1", "np2", "np-ß"]),
    NI: st.sampled_from(["a", "b", "𝔘"]),
}
_compares = st.sampled_from(list(_VALUES)).flatmap(
    lambda column: st.builds(Compare, st.just(column), _VALUES[column], st.booleans())
)
_filters: st.SearchStrategy[Expr] = st.recursive(
    _compares,
    lambda inner: st.one_of(
        st.builds(And, st.lists(inner, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, max_size=3).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=8,
)
_row = st.tuples(_VALUES[K], _VALUES[R], _VALUES[NP], _VALUES[NI])
_run = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, max_size=12), where=_filters)
async def test_random_filters_match_evaluate(
    store: MetadataStore, rows: list[tuple[str, str, str, str]], where: Expr
) -> None:
    # Examples share the store, so each one writes to a project of its own.
    project = f"run-{next(_run)}"
    records = [
        occurrence_record(project, f"o{i:02d}", kind=k, resource=r, note=(np, ni))
        for i, (k, r, np, ni) in enumerate(rows)
    ]
    notes = [note_record(project, f"n{i:02d}-{ni}", k) for i, (k, _, _, ni) in enumerate(rows)]
    async with store.session() as s:
        await s.insert_occurrences(records)
        assert await s.insert_notes(notes) == []
    async with store.session() as s:
        got = ids(await s.list_occurrences(project, where, None, 100))
        assert got == sorted(r.occurrence_id for r in records if evaluate(where, r.column))
        got_notes = [n.note_id for n in await s.list_notes(project, where, None, 100)]
        assert got_notes == sorted(n.note_id for n in notes if evaluate(where, n.column))


# transactions -----------------------------------------------------------------------------


class Boom(Exception):
    pass


async def _write_everything_then_fail(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.add_project("new-project")
        await s.remove_project(P)
        assert await s.insert_notes([note_record(P, f"batch{i}") for i in range(5)]) == []
        await s.insert_occurrences([occurrence_record(P, f"o-batch{i}") for i in range(50)])
        await s.replace_note(note_record(P, "kept", "BUILD", short="overwritten"))
        await s.replace_occurrence(occurrence_record(P, "o-kept", resource=image("x")))
        assert await s.delete_note(P, "kept")
        assert await s.get_or_set_meta("other", "v") == "v"
        # Within the session its own writes are visible.
        assert await s.get_note(P, "batch3") is not None
        raise Boom


async def test_failed_session_leaves_nothing(store: MetadataStore) -> None:
    before_note = note_record(P, "kept")
    before_occ = occurrence_record(P, "o-kept")
    async with store.session() as s:
        await s.add_project(P)
        await s.insert_notes([before_note])
        await s.insert_occurrences([before_occ])
        await s.get_or_set_meta("secret", "original")
    with pytest.raises(Boom):
        await _write_everything_then_fail(store)
    async with store.session() as s:
        assert await s.list_projects(None, 10) == [P]
        assert [n.note_id for n in await s.list_notes(P, None, None, 10)] == ["kept"]
        assert await s.get_note(P, "kept") == before_note
        assert await s.get_occurrence(P, "o-kept") == before_occ
        assert ids(await s.list_occurrences(P, None, None, 100)) == ["o-kept"]
        assert await s.get_or_set_meta("other", "second") == "second"
        assert await s.get_or_set_meta("secret", "x") == "original"


async def test_committed_session_is_visible_to_the_next(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.insert_occurrences([occurrence_record(P, f"o{i}") for i in range(1000)])
    async with store.session() as s:
        assert len(await s.list_occurrences(P, None, None, 1000)) == 1000


async def test_meta_get_or_set(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.get_or_set_meta("page-token-key", "first") == "first"
        assert await s.get_or_set_meta("page-token-key", "second") == "first"
    async with store.session() as s:
        assert await s.get_or_set_meta("page-token-key", "third") == "first"
        assert await s.get_or_set_meta("other", "") == ""


# odd text -------------------------------------------------------------------------------

ODD = [
    "plain",
    "Zürich",
    "e\u0301",  # e + combining acute: not the same string as "é"
    "é",
    "日本語",
    "🔏-emoji",
    "𝔘nicode-astral",
    "rtl-\u05e9\u05dc\u05d5\u05dd",
    "zero\u200bwidth",
    "tab\there",
    "'; DROP TABLE notes; --",
    'quote"s\\back',
    "%_like_wildcards",
    "Z",
    "a",
]


async def test_odd_unicode_ids_and_resources(store: MetadataStore) -> None:
    notes = [note_record(P, text) for text in ODD]
    occurrences = [
        occurrence_record(P, f"o-{text}", resource=f"registry.example.com/{text}", note=(P, text))
        for text in ODD
    ]
    async with store.session() as s:
        assert await s.insert_notes(notes) == []
        await s.insert_occurrences(occurrences)
    async with store.session() as s:
        # Keys sort by code point, as Python compares strings, on every adapter.
        assert [n.note_id for n in await s.list_notes(P, None, None, 100)] == sorted(ODD)
        assert ids(await s.list_occurrences(P, None, None, 100)) == sorted(ids(occurrences))
        assert ids(await s.list_occurrences(P, None, "o-Z", 100)) == sorted(
            i for i in ids(occurrences) if i > "o-Z"
        )
        for text in ODD:
            assert await s.get_note(P, text) == notes[ODD.index(text)]
            where = Compare(FilterColumn.RESOURCE, f"registry.example.com/{text}")
            assert ids(await s.list_occurrences(P, where, None, 10)) == [f"o-{text}"]
            assert ids(await s.list_note_occurrences(P, text, None, None, 10)) == [f"o-{text}"]
        # No normalisation: "é" and "e" + combining accent stay two different IDs.
        assert (await s.get_note(P, "é")) != (await s.get_note(P, "e\u0301"))
        assert await s.get_note(P, "%") is None
