"""Filters and keys behave alike on every adapter, for notes and occurrences.

Each test runs on memory, SQLite and PostgreSQL (the ``store`` fixture). Expected results
come from the records themselves through ``domain.filters.evaluate``, the definition of what
a filter means, so a SQL translation that drifts from it fails here. Keys compare by code
point, with no normalisation, whatever the database's locale.
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
        await s.occurrences.insert(records)


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
        assert ids(await s.occurrences.page(P, where, None, 1000)) == expected
        by_note = await s.occurrences.page_of_note("np1", "a", where, None, 1000)
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
        await s.occurrences.insert(records)
        assert await s.notes.insert(notes) == []
    async with store.session() as s:
        got = ids(await s.occurrences.page(project, where, None, 100))
        assert got == sorted(r.occurrence_id for r in records if evaluate(where, r.column))
        got_notes = [n.note_id for n in await s.notes.page(project, where, None, 100)]
        assert got_notes == sorted(n.note_id for n in notes if evaluate(where, n.column))


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
        assert await s.notes.insert(notes) == []
        await s.occurrences.insert(occurrences)
    async with store.session() as s:
        # Keys sort by code point, as Python compares strings, on every adapter.
        assert [n.note_id for n in await s.notes.page(P, None, None, 100)] == sorted(ODD)
        assert ids(await s.occurrences.page(P, None, None, 100)) == sorted(ids(occurrences))
        assert ids(await s.occurrences.page(P, None, "o-Z", 100)) == sorted(
            i for i in ids(occurrences) if i > "o-Z"
        )
        for text in ODD:
            assert await s.notes.get(P, text) == notes[ODD.index(text)]
            where = Compare(FilterColumn.RESOURCE, f"registry.example.com/{text}")
            assert ids(await s.occurrences.page(P, where, None, 10)) == [f"o-{text}"]
            assert ids(await s.occurrences.page_of_note(P, text, None, None, 10)) == [f"o-{text}"]
        # No normalisation: "é" and "e" + combining accent stay two different IDs.
        assert (await s.notes.get(P, "é")) != (await s.notes.get(P, "e\u0301"))
        assert await s.notes.get(P, "%") is None
