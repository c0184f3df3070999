"""``uow.occurrences.read_slices``: the judge's one batched read of a review's evidence, on
memory, SQLite and PostgreSQL. Each slice answers for its own scope only — its note (in every
project) or its project, its resource, its kinds — in ID order and cut at its own limit, and
nothing one slice asks for leaks into another's answer: evidence counts only for the rule
that trusts its signer, so a row filed under the wrong slice would be evidence for the wrong
attestor."""

from __future__ import annotations

import pytest

from chainproof.store.port import MetadataStore, OccurrenceRecord, OccurrenceSlice
from contract.store_samples import image, note_record, occurrence_record

WEB = image("web")
API = image("api")


def ids(records: list[OccurrenceRecord]) -> list[str]:
    return [r.occurrence_id for r in records]


async def _add(store: MetadataStore, records: list[OccurrenceRecord]) -> None:
    async with store.session() as s:
        await s.occurrences.insert(records)


async def test_a_note_slice_holds_its_note_and_resource_only(store: MetadataStore) -> None:
    qa = ("sec", "qa-note")
    await _add(
        store,
        [
            occurrence_record("app", "a1", note=qa, resource=WEB),
            occurrence_record("other-team", "a2", note=qa, resource=WEB),  # any project
            occurrence_record("app", "x1", note=qa, resource=API),  # another digest
            occurrence_record("app", "x2", note=("evil", "qa-note"), resource=WEB),  # same ID
            occurrence_record("app", "x3", note=("sec", "qa-note-2"), resource=WEB),
            occurrence_record("app", "x4", note=qa, resource=WEB + "x"),  # a longer resource
            occurrence_record("app", "x5", note=qa, resource=image("web", "sha256:" + "cd" * 32)),
        ],
    )
    async with store.session(readonly=True) as s:
        got = await s.occurrences.read_slices(
            [
                OccurrenceSlice(WEB, 10, note=qa),
                OccurrenceSlice(API, 10, note=qa),
                OccurrenceSlice(WEB, 10, note=("evil", "qa-note")),
            ]
        )
    assert [ids(rows) for rows in got.rows] == [["a1", "a2"], ["x1"], ["x2"]]
    assert {r.project for r in got.rows[0]} == {"app", "other-team"}
    assert got.notes == {}


async def test_a_project_slice_holds_its_project_resource_and_kinds_only(
    store: MetadataStore,
) -> None:
    await _add(
        store,
        [
            occurrence_record("prod", "v1", kind="VULNERABILITY", resource=WEB),
            occurrence_record("prod", "d1", kind="DISCOVERY", resource=WEB),
            occurrence_record("prod", "p1", kind="PACKAGE", resource=WEB),
            occurrence_record("elsewhere", "v2", kind="VULNERABILITY", resource=WEB),
            occurrence_record("prod", "v3", kind="VULNERABILITY", resource=API),
        ],
    )
    async with store.session(readonly=True) as s:
        got = await s.occurrences.read_slices(
            [
                OccurrenceSlice(WEB, 10, project="prod", kinds=("VULNERABILITY", "DISCOVERY")),
                OccurrenceSlice(WEB, 10, project="prod", kinds=("PACKAGE",)),
                OccurrenceSlice(WEB, 10, project="prod"),
                OccurrenceSlice(WEB, 10, project="nobody"),
            ]
        )
    assert [ids(rows) for rows in got.rows] == [["d1", "v1"], ["p1"], ["d1", "p1", "v1"], []]


async def test_rows_come_whole_in_id_order_cut_at_each_limit(store: MetadataStore) -> None:
    note = ("sec", "build-note")
    records = [
        occurrence_record(f"team-{i % 3}", f"o{i:02d}", note=note, resource=WEB)
        for i in (7, 3, 9, 1, 5, 2)
    ]
    await _add(store, records)
    async with store.session(readonly=True) as s:
        got = await s.occurrences.read_slices(
            [
                OccurrenceSlice(WEB, 4, note=note),
                OccurrenceSlice(WEB, 100, note=note),
                OccurrenceSlice(WEB, 0, note=note),
            ]
        )
    assert ids(got.rows[0]) == ["o01", "o02", "o03", "o05"]
    assert ids(got.rows[1]) == ["o01", "o02", "o03", "o05", "o07", "o09"]
    assert got.rows[2] == []
    by_id = {r.occurrence_id: r for r in records}
    for row in got.rows[1]:
        assert row == by_id[row.occurrence_id]
        assert row.occurrence.SerializeToString(deterministic=True) == by_id[
            row.occurrence_id
        ].occurrence.SerializeToString(deterministic=True)


async def test_notes_come_only_for_the_kinds_asked(store: MetadataStore) -> None:
    scanner = note_record("prod", "scanner", kind="DISCOVERY")
    cve = note_record("prod", "CVE-1", kind="VULNERABILITY")
    async with store.session() as s:
        await s.notes.insert([scanner, cve])
        await s.occurrences.insert(
            [
                occurrence_record("prod", "d1", kind="DISCOVERY", note=("prod", "scanner")),
                occurrence_record("prod", "d2", kind="DISCOVERY", note=("prod", "scanner")),
                occurrence_record("prod", "d3", kind="DISCOVERY", note=("prod", "gone")),
                occurrence_record("prod", "v1", kind="VULNERABILITY", note=("prod", "CVE-1")),
            ]
        )
    target = image("app")
    async with store.session(readonly=True) as s:
        got = await s.occurrences.read_slices(
            [
                OccurrenceSlice(
                    target,
                    10,
                    project="prod",
                    kinds=("VULNERABILITY", "DISCOVERY"),
                    with_notes=("DISCOVERY",),
                )
            ]
        )
    assert ids(got.rows[0]) == ["d1", "d2", "d3", "v1"]
    assert dict(got.notes) == {("prod", "scanner"): scanner}  # not the CVE's, not a missing one


async def test_many_slices_are_each_answered_in_order(store: MetadataStore) -> None:
    resources = [image(f"svc{i}") for i in range(130)]
    await _add(
        store,
        [
            occurrence_record("app", f"o{i:03d}", note=("sec", "qa"), resource=r)
            for i, r in enumerate(resources)
        ],
    )
    slices = [OccurrenceSlice(r, 5, note=("sec", "qa")) for r in resources]
    slices.append(slices[0])  # the same slice twice is answered twice
    async with store.session(readonly=True) as s:
        got = await s.occurrences.read_slices(slices)
    assert [ids(rows) for rows in got.rows] == [[f"o{i:03d}"] for i in range(130)] + [["o000"]]
    async with store.session(readonly=True) as s:
        assert (await s.occurrences.read_slices([])).rows == ()


def test_a_slice_is_scoped_by_a_note_or_a_project() -> None:
    with pytest.raises(ValueError, match="not both"):
        OccurrenceSlice(WEB, 1, note=("a", "b"), project="c")
    with pytest.raises(ValueError, match="not both"):
        OccurrenceSlice(WEB, 1)
