"""The shared rules (store/rules.py), kept alike by every adapter because they are applied
above the adapters: distinct keys in a batch and the error a repeat raises, empty work, and
pages of no size. Runs on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from chainproof.iam.policy import IamPolicy
from chainproof.store.access import AuditEntry, AuditQuery
from chainproof.store.port import DecisionQuery, DuplicateKey, MetadataStore
from contract.store_samples import (
    T0,
    decision_record,
    document_record,
    image,
    note_record,
    occurrence_record,
)

P = "rules"


async def test_a_note_twice_in_a_batch_is_taken_and_nothing_is_inserted(
    store: MetadataStore,
) -> None:
    async with store.session() as s:
        batch = [note_record(P, "a"), note_record(P, "b"), note_record(P, "a")]
        assert await s.notes.insert(batch) == ["a"]
        assert await s.notes.insert([*batch, note_record(P, "b")]) == ["a", "b"]
        # The same ID in two projects is two notes.
        assert await s.notes.insert([note_record(P, "c"), note_record("elsewhere", "c")]) == []
    async with store.session(readonly=True) as s:
        assert [n.note_id for n in await s.notes.page(P, None, None, 10)] == ["c"]


async def test_an_occurrence_twice_in_a_batch_raises_and_writes_nothing(
    store: MetadataStore,
) -> None:
    batch = [occurrence_record(P, f"o{i}") for i in range(20)] + [occurrence_record(P, "o3")]

    async def insert() -> None:
        async with store.session() as s:
            await s.occurrences.insert(batch)

    with pytest.raises(DuplicateKey, match="occurrence o3 appears twice in one batch"):
        await insert()
    async with store.session(readonly=True) as s:
        assert await s.occurrences.page(P, None, None, 100) == []


async def test_a_decision_twice_in_a_batch_raises_and_writes_nothing(store: MetadataStore) -> None:
    batch = [decision_record(P, "d1", images=(image("app"),)), decision_record(P, "d2")]
    batch.append(decision_record("other", "d1"))  # decision IDs are unique across projects

    async def insert() -> None:
        async with store.session() as s:
            await s.decisions.insert(batch)

    with pytest.raises(DuplicateKey, match="decision d1 appears twice in one batch"):
        await insert()
    async with store.session(readonly=True) as s:
        assert await s.decisions.page(DecisionQuery(P), None, 10) == []
        assert await s.decisions.page(DecisionQuery(P, image=image("app")), None, 10) == []


def test_a_repeated_key_is_an_internal_error_not_a_user_error() -> None:
    # The server makes these IDs: a repeat is a bug and must not read as a 4xx.
    assert issubclass(DuplicateKey, RuntimeError)


async def test_empty_batches_and_lookups_do_nothing(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.notes.insert([]) == []
        await s.occurrences.insert([])
        await s.decisions.insert([])
        await s.access.append_audit([])
        assert await s.notes.get_many([]) == {}
        assert await s.access.get_policies([]) == {}
    async with store.session(readonly=True) as s:
        assert await s.access.list_audit(AuditQuery(P)) == []


async def test_batch_lookups_answer_each_key_once(store: MetadataStore) -> None:
    policy = IamPolicy.of([("roles/chainproof.admin", ["user:a@x.io"])])
    async with store.session() as s:
        await s.notes.insert([note_record(P, "a")])
        await s.access.set_policy(f"projects/{P}", P, policy, None, T0)
    async with store.session(readonly=True) as s:
        got = await s.notes.get_many([(P, "a"), (P, "a"), (P, "missing"), (P, "a")])
        assert list(got) == [(P, "a")]
        policies = await s.access.get_policies([f"projects/{P}"] * 3)
        assert policies == {f"projects/{P}": policy}


@pytest.mark.parametrize("limit", [0, -1, -1000])
async def test_a_page_of_no_size_is_empty_whatever_is_stored(
    store: MetadataStore, limit: int
) -> None:
    note = (P, "n")
    async with store.session() as s:
        await s.projects.add(P)
        await s.notes.insert([note_record(P, "n"), note_record(P, "m")])
        await s.occurrences.insert([occurrence_record(P, f"o{i}", note=note) for i in range(3)])
        await s.documents.put(document_record(P, "attestors", "a"))
        await s.documents.put(document_record(P, "attestors", "b"))
        await s.decisions.insert([decision_record(P, "d1"), decision_record(P, "d2")])
        await s.access.append_audit(
            [
                AuditEntry(f"e{i}", P, T0, "user:a@x.io", "p", f"projects/{P}", "granted", {})
                for i in range(3)
            ]
        )
    async with store.session(readonly=True) as s:
        assert await s.projects.page(None, limit) == []
        assert await s.notes.page(P, None, None, limit) == []
        assert await s.occurrences.page(P, None, None, limit) == []
        assert await s.occurrences.page_of_note(*note, None, None, limit) == []
        assert await s.documents.page(P, "attestors", None, limit) == []
        assert await s.decisions.page(DecisionQuery(P), None, limit) == []
        assert await s.access.list_audit(AuditQuery(P, limit=limit)) == []
        # The same data is there for a page of some size.
        assert len(await s.occurrences.page_of_note(*note, None, None, 10)) == 3
        assert len(await s.access.list_audit(AuditQuery(P, limit=10))) == 3
