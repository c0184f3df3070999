"""``uow.occurrences.page_json`` on memory, SQLite and PostgreSQL: the page ``page`` gives, each
occurrence as the JSON it is stored as (REST serves it as is, ADR 0136).

The JSON must mean exactly what the protobuf round trip would render: the samples carry the
fields easiest to get wrong (bytes, nanosecond times, float32, unicode, nested and repeated
messages), and every filter shape the lists take picks the same rows in the same order.
"""

from __future__ import annotations

import orjson
import pytest

from chainproof.domain.filters import Compare, Expr, FilterColumn, Not, Or
from chainproof.domain.messages import OccurrencePB, from_stored_json, to_json
from chainproof.store.port import MetadataStore
from contract.store_samples import image, occurrence_record
from contract.test_occurrences_repository import P, add_occurrences, ids

KINDS = ("ATTESTATION", "VULNERABILITY", "DSSE_ATTESTATION")

WHERE: list[Expr | None] = [
    None,
    Compare(FilterColumn.RESOURCE, image("app0")),
    Compare(FilterColumn.KIND, "VULNERABILITY", negated=True),
    Or((Compare(FilterColumn.RESOURCE, image("app1")), Compare(FilterColumn.RESOURCE, "none"))),
    Not(Compare(FilterColumn.NOTE_ID, "note-1")),
]


async def _seed(store: MetadataStore) -> None:
    await add_occurrences(
        store,
        [
            occurrence_record(
                P,
                f"o{i:02d}",
                kind=KINDS[i % 3],
                resource=image(f"app{i % 2}"),
                note=("notes-project", f"note-{i % 4}"),
            )
            for i in range(12)
        ]
        + [occurrence_record("elsewhere", "o99")],
    )


@pytest.mark.parametrize("where", WHERE, ids=lambda w: "all" if w is None else str(w))
async def test_page_json_is_page_in_stored_json(store: MetadataStore, where: Expr | None) -> None:
    await _seed(store)
    async with store.session(readonly=True) as s:
        records = await s.occurrences.page(P, where, None, 100)
        stored = await s.occurrences.page_json(P, where, None, 100)
    assert records, "the filter should pick something"
    assert [(j.project, j.occurrence_id) for j in stored] == [
        (r.project, r.occurrence_id) for r in records
    ]
    for record, item in zip(records, stored, strict=True):
        served = orjson.loads(item.json)
        # What the protobuf path would have answered, member for member.
        assert served == to_json(record.occurrence)
        assert to_json(from_stored_json(OccurrencePB, served)) == served


async def test_page_json_pages_like_page(store: MetadataStore) -> None:
    await _seed(store)
    where = Compare(FilterColumn.RESOURCE, image("app1"))
    seen: list[str] = []
    after: str | None = None
    async with store.session(readonly=True) as s:
        every = ids(await s.occurrences.page(P, where, None, 100))
    while True:
        async with store.session(readonly=True) as s:
            chunk = await s.occurrences.page_json(P, where, after, 4)
        assert len(chunk) <= 4
        seen += [j.occurrence_id for j in chunk]
        if len(chunk) < 4:
            break
        after = chunk[-1].occurrence_id
    assert seen == every
    assert len(every) == 6


async def test_page_json_of_nothing(store: MetadataStore) -> None:
    await _seed(store)
    async with store.session(readonly=True) as s:
        assert await s.occurrences.page_json(P, None, None, 0) == []
        assert await s.occurrences.page_json("nobody", None, None, 10) == []
        assert await s.occurrences.page_json(P, None, "o99", 10) == []
