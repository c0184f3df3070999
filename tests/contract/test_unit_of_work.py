"""The unit of work is the transaction: every repository's writes in one unit of work land
together when its block ends normally, and none of them when it raises. Runs on memory,
SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib

import pytest

from chainproof.iam.policy import IamPolicy
from chainproof.store.access import AuditEntry, AuditQuery
from chainproof.store.port import (
    DecisionQuery,
    DecisionRecord,
    DocumentRecord,
    MetadataStore,
    OccurrenceRecord,
    UnitOfWork,
)
from contract.store_samples import (
    T0,
    decision_record,
    document_record,
    image,
    note_record,
    occurrence_record,
)

P = "proj"
ATTESTORS = "attestors"
POLICIES = "policies"
IMAGES = [image("app"), image("web")]
POLICY = IamPolicy.of([("roles/chainproof.admin", ["user:a@x.io"])])


def ids(records: list[OccurrenceRecord]) -> list[str]:
    return [r.occurrence_id for r in records]


def decision_ids(records: list[DecisionRecord]) -> list[str]:
    return [r.decision_id for r in records]


def doc_ids(records: list[DocumentRecord]) -> list[str]:
    return [r.doc_id for r in records]


async def insert_decisions(store: MetadataStore, records: list[DecisionRecord]) -> None:
    async with store.session() as s:
        for r in records:
            await s.decisions.insert([r])


class Boom(Exception):
    pass


async def _write_everything_then_fail(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.projects.add("new-project")
        await s.projects.remove(P)
        assert await s.notes.insert([note_record(P, f"batch{i}") for i in range(5)]) == []
        await s.occurrences.insert([occurrence_record(P, f"o-batch{i}") for i in range(50)])
        await s.notes.replace(note_record(P, "kept", "BUILD", short="overwritten"))
        await s.occurrences.replace(occurrence_record(P, "o-kept", resource=image("x")))
        assert await s.notes.delete(P, "kept")
        assert await s.meta.get_or_set("other", "v") == "v"
        # Within the session its own writes are visible.
        assert await s.notes.get(P, "batch3") is not None
        raise Boom


async def test_failed_session_leaves_nothing(store: MetadataStore) -> None:
    before_note = note_record(P, "kept")
    before_occ = occurrence_record(P, "o-kept")
    async with store.session() as s:
        await s.projects.add(P)
        await s.notes.insert([before_note])
        await s.occurrences.insert([before_occ])
        await s.meta.get_or_set("secret", "original")
    with pytest.raises(Boom):
        await _write_everything_then_fail(store)
    async with store.session() as s:
        assert await s.projects.page(None, 10) == [P]
        assert [n.note_id for n in await s.notes.page(P, None, None, 10)] == ["kept"]
        assert await s.notes.get(P, "kept") == before_note
        assert await s.occurrences.get(P, "o-kept") == before_occ
        assert ids(await s.occurrences.page(P, None, None, 100)) == ["o-kept"]
        assert await s.meta.get_or_set("other", "second") == "second"
        assert await s.meta.get_or_set("secret", "x") == "original"


async def test_committed_session_is_visible_to_the_next(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.occurrences.insert([occurrence_record(P, f"o{i}") for i in range(1000)])
    async with store.session() as s:
        assert len(await s.occurrences.page(P, None, None, 1000)) == 1000


async def _write_judge_records_then_fail(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.decisions.insert([decision_record(P, "d1", images=(IMAGES[0], IMAGES[1]))])
        await s.documents.put(document_record(P, ATTESTORS, "new"))
        await s.documents.put(document_record(P, ATTESTORS, "kept", etag="kept-2", data={}))
        assert await s.documents.delete(P, POLICIES, "policy")
        # Within the session its own writes are visible.
        listed = await s.decisions.page(DecisionQuery(P), None, 10)
        assert decision_ids(listed) == ["d0", "d1"]
        assert await s.documents.get(P, ATTESTORS, "new") is not None
        raise Boom


async def test_failed_session_leaves_no_decision_and_no_document(store: MetadataStore) -> None:
    kept = document_record(P, ATTESTORS, "kept", etag="kept-1")
    policy = document_record(P, POLICIES, "policy", etag="policy-1")
    earlier = decision_record(P, "d0", images=(IMAGES[0],))
    async with store.session() as s:
        await s.documents.put(kept)
        await s.documents.put(policy)
        await s.decisions.insert([earlier])

    with pytest.raises(Boom):
        await _write_judge_records_then_fail(store)

    async with store.session() as s:
        assert await s.decisions.page(DecisionQuery(P), None, 10) == [earlier]
        assert await s.decisions.page(DecisionQuery(P, image=IMAGES[0]), None, 10) == [earlier]
        assert await s.decisions.page(DecisionQuery(P, image=IMAGES[1]), None, 10) == []
        assert await s.documents.get(P, ATTESTORS, "new") is None
        assert await s.documents.get(P, ATTESTORS, "kept") == kept
        assert await s.documents.get(P, POLICIES, "policy") == policy
        assert doc_ids(await s.documents.page(P, ATTESTORS, None, 10)) == ["kept"]
    # The rolled-back ID is free again.
    retried = decision_record(P, "d1", images=(IMAGES[1],))
    await insert_decisions(store, [retried])
    async with store.session() as s:
        assert await s.decisions.page(DecisionQuery(P, image=IMAGES[1]), None, 10) == [retried]


async def test_writes_to_every_repository_are_one_transaction(store: MetadataStore) -> None:
    # What a service relies on to write a change and the record announcing it together.
    audit = AuditEntry("e1", P, T0, "user:a@x.io", "notes.create", f"projects/{P}", "granted", {})

    async def write_all(s: UnitOfWork) -> None:
        await s.projects.add(P)
        assert await s.notes.insert([note_record(P, "n")]) == []
        await s.occurrences.insert([occurrence_record(P, "o", note=(P, "n"))])
        await s.documents.put(document_record(P, ATTESTORS, "a"))
        await s.decisions.insert([decision_record(P, "d", images=(IMAGES[0],))])
        await s.meta.get_or_set("k", "v")
        await s.access.set_policy(f"projects/{P}", P, POLICY, None, T0)
        await s.access.append_audit([audit])

    async def stored() -> list[bool]:
        found: list[bool] = []
        # get_or_set writes when the key is absent: probe in a unit of work that rolls back.
        with contextlib.suppress(Boom):
            async with store.session() as s:
                found = [
                    await s.projects.exists(P),
                    await s.notes.get(P, "n") is not None,
                    await s.occurrences.get(P, "o") is not None,
                    await s.documents.get(P, ATTESTORS, "a") is not None,
                    bool(await s.decisions.page(DecisionQuery(P), None, 10)),
                    await s.meta.get_or_set("k", "absent") == "v",
                    bool(await s.access.get_policies([f"projects/{P}"])),
                    bool(await s.access.list_audit(AuditQuery(P))),
                ]
                raise Boom
        return found

    async def write_all_then_fail() -> None:
        async with store.session() as s:
            await write_all(s)
            raise Boom

    with pytest.raises(Boom):
        await write_all_then_fail()
    assert await stored() == [False] * 8
    async with store.session() as s:
        await write_all(s)
    assert await stored() == [True] * 8


async def test_commit_keeps_what_came_before_it(store: MetadataStore) -> None:
    async def commit_then_fail() -> None:
        async with store.session() as s:
            await s.notes.insert([note_record(P, "before")])
            await s.access.append_audit(
                [AuditEntry("e1", P, T0, "user:a@x.io", "p", f"projects/{P}", "granted", {})]
            )
            await s.commit()
            # The unit of work goes on in a new transaction.
            await s.notes.insert([note_record(P, "after")])
            assert await s.notes.get(P, "before") is not None
            raise Boom

    with pytest.raises(Boom):
        await commit_then_fail()
    async with store.session(readonly=True) as s:
        assert [n.note_id for n in await s.notes.page(P, None, None, 10)] == ["before"]
        assert [e.entry_id for e in await s.access.list_audit(AuditQuery(P))] == ["e1"]


async def test_rollback_undoes_since_the_last_commit_and_goes_on(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.occurrences.insert([occurrence_record(P, "kept")])
        await s.commit()
        await s.occurrences.insert([occurrence_record(P, "undone")])
        await s.documents.put(document_record(P, ATTESTORS, "undone"))
        await s.rollback()
        assert await s.occurrences.get(P, "undone") is None
        # The rolled-back ID is free again in the next transaction of the same unit of work.
        await s.occurrences.insert([occurrence_record(P, "undone", resource=image("again"))])
        await s.occurrences.insert([occurrence_record(P, "later")])
    async with store.session(readonly=True) as s:
        assert ids(await s.occurrences.page(P, None, None, 10)) == ["kept", "later", "undone"]
        again = await s.occurrences.get(P, "undone")
        assert again is not None and again.resource == image("again")
        assert await s.documents.get(P, ATTESTORS, "undone") is None
