"""The judge documents repository (``uow.documents``: attestors, policies), on memory, SQLite
and PostgreSQL: exact round trips of any JSON, whole replacement, deletion, separation by
project and collection, keyset pages by ID."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

import pytest

from chainproof.store.port import DocumentRecord, DuplicateKey, MetadataStore
from contract.store_samples import PLUS_2, T0, document_data, document_record

P = "proj"
ATTESTORS = "attestors"
POLICIES = "policies"
MICRO = timedelta(microseconds=1)


def doc_ids(records: list[DocumentRecord]) -> list[str]:
    return [r.doc_id for r in records]


async def put_documents(store: MetadataStore, records: list[DocumentRecord]) -> None:
    async with store.session() as s:
        for r in records:
            await s.documents.put(r)


def assert_aware(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() is not None


async def test_document_put_get_round_trip(store: MetadataStore) -> None:
    record = document_record(
        P, ATTESTORS, "built-by-ci", created=T0.astimezone(PLUS_2), updated=T0 + MICRO
    )
    async with store.session() as s:
        assert await s.documents.get(P, ATTESTORS, "built-by-ci") is None
        await s.documents.put(record)
        # A session sees its own write.
        assert await s.documents.get(P, ATTESTORS, "built-by-ci") == record
    async with store.session() as s:
        got = await s.documents.get(P, ATTESTORS, "built-by-ci")
        assert got == record
        assert got is not None
        assert got.data["big"] == 2**53 + 1
        assert isinstance(got.data["score"], float)
        assert got.data["keys"][0] == {"id": "pgp:ABCD", "algorithm": None}
        # Same instants, microseconds kept, zone known (which zone is the adapter's choice).
        assert got.create_time == T0
        assert got.update_time == T0 + MICRO
        assert_aware(got.create_time)
        assert_aware(got.update_time)
        assert await s.documents.get(P, ATTESTORS, "missing") is None
        assert await s.documents.get(P, POLICIES, "built-by-ci") is None
        assert await s.documents.get("other", ATTESTORS, "built-by-ci") is None


async def test_document_data_may_be_any_mapping(store: MetadataStore) -> None:
    record = document_record(P, POLICIES, "policy", data=MappingProxyType({"rule": "ALLOW"}))
    async with store.session() as s:
        await s.documents.put(record)
    async with store.session() as s:
        got = await s.documents.get(P, POLICIES, "policy")
        assert got is not None
        assert dict(got.data) == {"rule": "ALLOW"}


async def test_put_document_replaces_the_whole_document(store: MetadataStore) -> None:
    first = document_record(P, ATTESTORS, "a", etag="e1")
    await put_documents(store, [first])
    # The service keeps create_time from what it read; the store keeps whatever it is given.
    second = document_record(
        P,
        ATTESTORS,
        "a",
        etag="e2",
        created=first.create_time,
        updated=T0 + timedelta(days=1),
        data={"only": ["this"]},
    )
    async with store.session() as s:
        await s.documents.put(second)
    async with store.session() as s:
        got = await s.documents.get(P, ATTESTORS, "a")
        assert got == second
        assert got is not None
        # Replaced, not merged: keys of the first version are gone.
        assert set(got.data) == {"only"}
        assert got.create_time == T0
        assert got.etag == "e2"
        assert doc_ids(await s.documents.page(P, ATTESTORS, None, 10)) == ["a"]
    # The store stores the create_time it is given, even a changed one.
    third = document_record(P, ATTESTORS, "a", etag="e3", created=T0 - timedelta(days=3))
    async with store.session() as s:
        await s.documents.put(third)
    async with store.session() as s:
        assert await s.documents.get(P, ATTESTORS, "a") == third


async def test_delete_document(store: MetadataStore) -> None:
    await put_documents(
        store,
        [
            document_record(P, ATTESTORS, "a"),
            document_record(P, ATTESTORS, "b"),
            document_record(P, POLICIES, "a"),
            document_record("other", ATTESTORS, "a"),
        ],
    )
    async with store.session() as s:
        assert await s.documents.delete(P, ATTESTORS, "a") is True
        assert await s.documents.delete(P, ATTESTORS, "a") is False
        assert await s.documents.delete(P, ATTESTORS, "never") is False
        assert await s.documents.get(P, ATTESTORS, "a") is None
    async with store.session() as s:
        assert await s.documents.get(P, ATTESTORS, "a") is None
        # Only that one document went.
        assert doc_ids(await s.documents.page(P, ATTESTORS, None, 10)) == ["b"]
        assert await s.documents.get(P, POLICIES, "a") is not None
        assert await s.documents.get("other", ATTESTORS, "a") is not None
    # Deleted, then put again: a new document.
    again = document_record(P, ATTESTORS, "a", etag="new")
    await put_documents(store, [again])
    async with store.session() as s:
        assert await s.documents.get(P, ATTESTORS, "a") == again


async def test_documents_are_separated_by_project_and_collection(store: MetadataStore) -> None:
    places = [(P, ATTESTORS), (P, POLICIES), ("other", ATTESTORS), ("other", POLICIES)]
    records = {
        place: document_record(*place, "same-id", etag=f"{place[0]}:{place[1]}") for place in places
    }
    await put_documents(store, list(records.values()))
    async with store.session() as s:
        for place, record in records.items():
            assert await s.documents.get(*place, "same-id") == record
            assert await s.documents.page(*place, None, 10) == [record]
        assert await s.documents.page(P, "unknown", None, 10) == []
        assert await s.documents.page("unknown", ATTESTORS, None, 10) == []


async def test_list_documents_pages_by_id(store: MetadataStore) -> None:
    names = [f"att-{i:02d}" for i in range(23)] + ["B", "a", "Z", "é", "e\u0301", "日本", "🔏"]
    records = [document_record(P, ATTESTORS, name, etag=name) for name in names]
    # Put in an order that is neither sorted nor reversed.
    await put_documents(store, records[::2] + records[1::2])
    await put_documents(
        store,
        [document_record(P, POLICIES, "att-05"), document_record("other", ATTESTORS, "att-00")],
    )
    expected = sorted(names)  # code point order, as Python compares strings
    for page in (1, 4, 7, len(names), 100):
        seen: list[DocumentRecord] = []
        after: str | None = None
        while True:
            async with store.session() as s:
                chunk = await s.documents.page(P, ATTESTORS, after, page)
            assert len(chunk) <= page
            seen.extend(chunk)
            if len(chunk) < page:
                break
            after = chunk[-1].doc_id
        assert doc_ids(seen) == expected
        assert seen == sorted(records, key=lambda r: r.doc_id)
    async with store.session() as s:
        # ``after`` is exclusive and need not exist.
        assert doc_ids(await s.documents.page(P, ATTESTORS, "att-03", 2)) == ["att-04", "att-05"]
        assert doc_ids(await s.documents.page(P, ATTESTORS, "att-03!", 1)) == ["att-04"]
        assert await s.documents.page(P, ATTESTORS, expected[-1], 5) == []
        assert await s.documents.page(P, ATTESTORS, None, 0) == []


async def test_documents_keep_their_data_out_of_reach_of_callers(store: MetadataStore) -> None:
    data = document_data("a")
    await put_documents(store, [document_record(P, ATTESTORS, "a", data=data)])
    data["threshold"] = 99  # the caller's dict changes after the put
    async with store.session() as s:
        got = await s.documents.get(P, ATTESTORS, "a")
    assert got is not None
    assert got.data["threshold"] == 2


async def test_get_many_and_put_many_documents(store: MetadataStore) -> None:
    """A batch reads its documents in one call and writes them in one: new ones inserted,
    stored ones replaced whole, other collections and projects untouched; the batch is
    atomic, and a repeated key is refused before anything is written."""
    await put_documents(
        store,
        [
            document_record(P, ATTESTORS, "kept", etag="k"),
            document_record(P, ATTESTORS, "replaced", etag="old", data={"old": True}),
            document_record(P, POLICIES, "new-0", etag="other-collection"),
        ],
    )
    fresh = [document_record(P, ATTESTORS, f"new-{i:04d}", etag=f"n{i}") for i in range(1_203)]
    replaced = document_record(
        P, ATTESTORS, "replaced", etag="new", data={"only": 1}, updated=T0 + timedelta(days=2)
    )
    async with store.session() as s:
        await s.documents.put_many([*fresh, replaced])
        got = await s.documents.get_many(P, ATTESTORS, ["replaced", "kept", "new-0001", "never"])
        assert set(got) == {"replaced", "kept", "new-0001"}  # a session sees its own writes
    async with store.session() as s:
        ids = [r.doc_id for r in fresh] + ["kept", "replaced", "kept", "absent"]
        got = await s.documents.get_many(P, ATTESTORS, ids)
        assert set(got) == {r.doc_id for r in fresh} | {"kept", "replaced"}
        assert got["replaced"] == replaced and set(got["replaced"].data) == {"only"}
        assert all(got[r.doc_id] == r for r in fresh)
        assert got["kept"].etag == "k"
        other = await s.documents.get(P, POLICIES, "new-0")
        assert other is not None and other.etag == "other-collection"
        assert await s.documents.get_many(P, ATTESTORS, []) == {}
        assert await s.documents.get_many("other", ATTESTORS, ["kept"]) == {}
        await s.documents.put_many([])
    # Atomic with the unit of work: a block that raises leaves nothing of the batch.
    try:
        async with store.session() as s:
            await s.documents.put_many([document_record(P, ATTESTORS, "rolled-back")])
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    async with store.session() as s:
        assert await s.documents.get(P, ATTESTORS, "rolled-back") is None
    twice = [document_record(P, ATTESTORS, "dup", etag="1"), document_record(P, ATTESTORS, "dup")]
    async with store.session() as s:
        with pytest.raises(DuplicateKey):
            await s.documents.put_many([document_record(P, ATTESTORS, "first"), *twice])
    async with store.session() as s:
        assert await s.documents.get_many(P, ATTESTORS, ["first", "dup"]) == {}
