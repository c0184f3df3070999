"""The store contract for the judge: documents (attestors, policies) and the decision log.

Every test runs on memory, SQLite and PostgreSQL (the ``store`` fixture). Expected decision
lists come from a predicate written out here from the port's definition of DecisionQuery,
not from any adapter, so all three adapters are held to the same independent reference.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from chainproof.store.port import DecisionQuery, DecisionRecord, DocumentRecord, MetadataStore
from contract.store_samples import (
    MINUS_5,
    PLUS_2,
    T0,
    decision_record,
    document_data,
    document_record,
    image,
)

P = "proj"
ATTESTORS = "attestors"
POLICIES = "policies"
MICRO = timedelta(microseconds=1)


def doc_ids(records: list[DocumentRecord]) -> list[str]:
    return [r.doc_id for r in records]


def decision_ids(records: list[DecisionRecord]) -> list[str]:
    return [r.decision_id for r in records]


async def put_documents(store: MetadataStore, records: list[DocumentRecord]) -> None:
    async with store.session() as s:
        for r in records:
            await s.put_document(r)


async def insert_decisions(store: MetadataStore, records: list[DecisionRecord]) -> None:
    async with store.session() as s:
        for r in records:
            await s.insert_decisions([r])


def assert_aware(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() is not None


# documents --------------------------------------------------------------------------------


async def test_document_put_get_round_trip(store: MetadataStore) -> None:
    record = document_record(
        P, ATTESTORS, "built-by-ci", created=T0.astimezone(PLUS_2), updated=T0 + MICRO
    )
    async with store.session() as s:
        assert await s.get_document(P, ATTESTORS, "built-by-ci") is None
        await s.put_document(record)
        # A session sees its own write.
        assert await s.get_document(P, ATTESTORS, "built-by-ci") == record
    async with store.session() as s:
        got = await s.get_document(P, ATTESTORS, "built-by-ci")
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
        assert await s.get_document(P, ATTESTORS, "missing") is None
        assert await s.get_document(P, POLICIES, "built-by-ci") is None
        assert await s.get_document("other", ATTESTORS, "built-by-ci") is None


async def test_document_data_may_be_any_mapping(store: MetadataStore) -> None:
    record = document_record(P, POLICIES, "policy", data=MappingProxyType({"rule": "ALLOW"}))
    async with store.session() as s:
        await s.put_document(record)
    async with store.session() as s:
        got = await s.get_document(P, POLICIES, "policy")
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
        await s.put_document(second)
    async with store.session() as s:
        got = await s.get_document(P, ATTESTORS, "a")
        assert got == second
        assert got is not None
        # Replaced, not merged: keys of the first version are gone.
        assert set(got.data) == {"only"}
        assert got.create_time == T0
        assert got.etag == "e2"
        assert doc_ids(await s.list_documents(P, ATTESTORS, None, 10)) == ["a"]
    # The store stores the create_time it is given, even a changed one.
    third = document_record(P, ATTESTORS, "a", etag="e3", created=T0 - timedelta(days=3))
    async with store.session() as s:
        await s.put_document(third)
    async with store.session() as s:
        assert await s.get_document(P, ATTESTORS, "a") == third


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
        assert await s.delete_document(P, ATTESTORS, "a") is True
        assert await s.delete_document(P, ATTESTORS, "a") is False
        assert await s.delete_document(P, ATTESTORS, "never") is False
        assert await s.get_document(P, ATTESTORS, "a") is None
    async with store.session() as s:
        assert await s.get_document(P, ATTESTORS, "a") is None
        # Only that one document went.
        assert doc_ids(await s.list_documents(P, ATTESTORS, None, 10)) == ["b"]
        assert await s.get_document(P, POLICIES, "a") is not None
        assert await s.get_document("other", ATTESTORS, "a") is not None
    # Deleted, then put again: a new document.
    again = document_record(P, ATTESTORS, "a", etag="new")
    await put_documents(store, [again])
    async with store.session() as s:
        assert await s.get_document(P, ATTESTORS, "a") == again


async def test_documents_are_separated_by_project_and_collection(store: MetadataStore) -> None:
    places = [(P, ATTESTORS), (P, POLICIES), ("other", ATTESTORS), ("other", POLICIES)]
    records = {
        place: document_record(*place, "same-id", etag=f"{place[0]}:{place[1]}") for place in places
    }
    await put_documents(store, list(records.values()))
    async with store.session() as s:
        for place, record in records.items():
            assert await s.get_document(*place, "same-id") == record
            assert await s.list_documents(*place, None, 10) == [record]
        assert await s.list_documents(P, "unknown", None, 10) == []
        assert await s.list_documents("unknown", ATTESTORS, None, 10) == []


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
                chunk = await s.list_documents(P, ATTESTORS, after, page)
            assert len(chunk) <= page
            seen.extend(chunk)
            if len(chunk) < page:
                break
            after = chunk[-1].doc_id
        assert doc_ids(seen) == expected
        assert seen == sorted(records, key=lambda r: r.doc_id)
    async with store.session() as s:
        # ``after`` is exclusive and need not exist.
        assert doc_ids(await s.list_documents(P, ATTESTORS, "att-03", 2)) == ["att-04", "att-05"]
        assert doc_ids(await s.list_documents(P, ATTESTORS, "att-03!", 1)) == ["att-04"]
        assert await s.list_documents(P, ATTESTORS, expected[-1], 5) == []
        assert await s.list_documents(P, ATTESTORS, None, 0) == []


# decisions --------------------------------------------------------------------------------

IMAGES = [
    image("app"),
    image("web"),
    image("db", "sha256:" + "cd" * 32),
    "registry.example.com/ünï/☃@sha256:" + "01" * 32,
]
OUTCOMES = ["ALLOW", "DENY", "BREAKGLASS"]
NAMESPACES = ["default", "prod", "ß-ns"]
ZONES = [UTC, PLUS_2, MINUS_5]


def _decision_dataset() -> list[DecisionRecord]:
    records = []
    for i in range(40):
        # Images: every subset of the pool in turn, some judged twice within one decision.
        chosen = tuple(img for bit, img in enumerate(IMAGES) if i & (1 << bit))
        if i % 7 == 0 and chosen:
            chosen = (*chosen, chosen[0])
        records.append(
            decision_record(
                P,
                # IDs deliberately out of time order, so sorting by time would show.
                f"d{(i * 17) % 40:02d}",
                time=(T0 + timedelta(minutes=7 * i, microseconds=i)).astimezone(ZONES[i % 3]),
                outcome=OUTCOMES[i % 3],
                namespace=NAMESPACES[(i // 2) % 3],
                images=chosen,
            )
        )
    # Another project with the same images, namespaces and times: never listed for P.
    records.extend(
        decision_record(
            "other",
            f"x{i:02d}",
            time=T0 + timedelta(minutes=7 * i),
            outcome=OUTCOMES[i % 3],
            namespace=NAMESPACES[i % 3],
            images=tuple(IMAGES),
        )
        for i in range(10)
    )
    return records


def _matches(record: DecisionRecord, query: DecisionQuery, after: str | None) -> bool:
    """DecisionQuery as the port defines it, written out independently of any adapter."""
    checks = [
        record.project == query.project,
        after is None or record.decision_id > after,
        query.image is None or query.image in record.images,
        query.namespace is None or record.namespace == query.namespace,
        query.outcome is None or record.outcome == query.outcome,
        query.since is None or record.time >= query.since,
        query.until is None or record.time < query.until,
    ]
    return all(checks)


def _expected(
    records: list[DecisionRecord], query: DecisionQuery, after: str | None = None
) -> list[DecisionRecord]:
    return sorted((r for r in records if _matches(r, query, after)), key=lambda r: r.decision_id)


async def test_decision_round_trip(store: MetadataStore) -> None:
    record = decision_record(
        P,
        "20240310T233015Z-0001",
        time=T0.astimezone(MINUS_5),
        outcome="DENY",
        namespace="prod",
        images=(IMAGES[1], IMAGES[0], IMAGES[1]),
        data={
            "mode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "images": [{"image": IMAGES[1], "reasons": ["no attestation by “ci” ✗"]}],
            "score": 9.8,
            "breakglass": None,
        },
    )
    bare = decision_record(P, "20240310T233016Z-0002", time=T0 + MICRO, images=(), data={})
    await insert_decisions(store, [record, bare])
    async with store.session() as s:
        got = await s.list_decisions(DecisionQuery(P), None, 10)
    assert got == [record, bare]
    # Images come back in the order given, repeats included.
    assert got[0].images == (IMAGES[1], IMAGES[0], IMAGES[1])
    assert got[1].images == ()
    assert got[0].time == T0
    assert_aware(got[0].time)
    assert_aware(got[1].time)


async def test_list_decisions_every_criterion_alone_and_combined(store: MetadataStore) -> None:
    records = _decision_dataset()
    await insert_decisions(store, records)
    times = sorted(r.time for r in records if r.project == P)
    images: list[str | None] = [None, *IMAGES, "registry.example.com/never@sha256:" + "0" * 64]
    namespaces: list[str | None] = [None, *NAMESPACES[:2], "absent"]
    outcomes: list[str | None] = [None, *OUTCOMES[1:]]
    # Bounds sit exactly on stored times, in other zones than the stored ones.
    sinces = [None, times[9].astimezone(PLUS_2), times[30]]
    untils = [None, times[9], times[31].astimezone(MINUS_5)]
    tried = matched = 0
    async with store.session() as s:
        for img, ns, outcome, since, until in itertools.product(
            images, namespaces, outcomes, sinces, untils
        ):
            query = DecisionQuery(P, img, ns, outcome, since, until)
            expected = _expected(records, query)
            got = await s.list_decisions(query, None, 100)
            assert got == expected, query
            tried += 1
            matched += bool(expected)
        # Unknown projects have nothing.
        assert await s.list_decisions(DecisionQuery("nobody"), None, 100) == []
        assert await s.list_decisions(DecisionQuery(P), None, 0) == []
    # Some combinations are empty by construction (an absent value, since after until); the
    # dataset still gives the rest enough matches for a wrong filter to show.
    assert matched > tried // 4


async def test_list_decisions_time_bounds(store: MetadataStore) -> None:
    # A bound at t: since includes t and excludes t - 1 µs; until excludes t. The stored times
    # use other zones, and cross midnight in their local wall time, so that comparing wall
    # clocks instead of instants would give different answers.
    t = datetime(2024, 3, 11, 0, 0, 0, tzinfo=UTC)
    records = [
        decision_record(P, "a-before", time=(t - MICRO).astimezone(PLUS_2)),
        decision_record(P, "b-at", time=t.astimezone(MINUS_5)),
        decision_record(P, "c-after", time=(t + MICRO).astimezone(PLUS_2)),
        # 23:30 on the 10th in New York is 04:30 on the 11th in UTC.
        decision_record(P, "d-late-west", time=datetime(2024, 3, 10, 23, 30, tzinfo=MINUS_5)),
        # 01:00 on the 11th in +02:00 is 23:00 on the 10th in UTC.
        decision_record(P, "e-early-east", time=datetime(2024, 3, 11, 1, 0, tzinfo=PLUS_2)),
    ]
    await insert_decisions(store, records)

    async def listed(since: datetime | None, until: datetime | None) -> list[str]:
        async with store.session() as s:
            return decision_ids(
                await s.list_decisions(DecisionQuery(P, since=since, until=until), None, 10)
            )

    for bound in (t, t.astimezone(PLUS_2), t.astimezone(MINUS_5)):
        assert await listed(bound, None) == ["b-at", "c-after", "d-late-west"]
        assert await listed(None, bound) == ["a-before", "e-early-east"]
        assert await listed(bound, bound) == []
        assert await listed(bound, bound + MICRO) == ["b-at"]
        assert await listed(bound - MICRO, bound) == ["a-before"]
        assert await listed(bound + MICRO, None) == ["c-after", "d-late-west"]
    assert await listed(None, None) == decision_ids(records)


async def test_list_decisions_by_image_with_several_images(store: MetadataStore) -> None:
    both = decision_record(P, "d1", images=(IMAGES[0], IMAGES[1]))
    repeated = decision_record(P, "d2", images=(IMAGES[1], IMAGES[1], IMAGES[2]))
    none = decision_record(P, "d3", images=())
    elsewhere = decision_record("other", "d4", images=(IMAGES[0], IMAGES[1]))
    await insert_decisions(store, [both, repeated, none, elsewhere])
    async with store.session() as s:

        async def by(img: str) -> list[DecisionRecord]:
            return await s.list_decisions(DecisionQuery(P, image=img), None, 10)

        assert await by(IMAGES[0]) == [both]
        # Listed once even though it judged the image twice.
        assert await by(IMAGES[1]) == [both, repeated]
        assert await by(IMAGES[2]) == [repeated]
        assert await by(IMAGES[3]) == []
        # Exact match only: no prefix, no case folding, no wildcard.
        assert await by(IMAGES[0][:-1]) == []
        assert await by(IMAGES[0].upper()) == []
        assert await by("%") == []
        other = await s.list_decisions(DecisionQuery("other", image=IMAGES[1]), None, 10)
        assert other == [elsewhere]


async def test_list_decisions_keyset_pages(store: MetadataStore) -> None:
    records = _decision_dataset()
    await insert_decisions(store, records)
    queries = [
        DecisionQuery(P),
        DecisionQuery(P, image=IMAGES[2]),
        DecisionQuery(P, outcome="DENY", since=T0 + timedelta(minutes=30)),
        DecisionQuery(P, namespace="prod", image=IMAGES[0], until=T0 + timedelta(hours=4)),
    ]
    for query in queries:
        expected = _expected(records, query)
        assert expected
        for page in (1, 3, len(expected), 100):
            seen: list[DecisionRecord] = []
            after: str | None = None
            while True:
                async with store.session() as s:
                    chunk = await s.list_decisions(query, after, page)
                assert len(chunk) <= page
                seen.extend(chunk)
                if len(chunk) < page:
                    break
                after = chunk[-1].decision_id
            assert seen == expected, (query, page)
        async with store.session() as s:
            # ``after`` is exclusive and need not be an existing ID.
            middle = expected[len(expected) // 2].decision_id
            got = await s.list_decisions(query, middle, 100)
            assert got == _expected(records, query, middle)
            got = await s.list_decisions(query, middle + "!", 100)
            assert got == _expected(records, query, middle + "!")
            assert await s.list_decisions(query, expected[-1].decision_id, 10) == []


# transactions -----------------------------------------------------------------------------


class Boom(Exception):
    pass


async def _write_judge_records_then_fail(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.insert_decisions([decision_record(P, "d1", images=(IMAGES[0], IMAGES[1]))])
        await s.put_document(document_record(P, ATTESTORS, "new"))
        await s.put_document(document_record(P, ATTESTORS, "kept", etag="kept-2", data={}))
        assert await s.delete_document(P, POLICIES, "policy")
        # Within the session its own writes are visible.
        listed = await s.list_decisions(DecisionQuery(P), None, 10)
        assert decision_ids(listed) == ["d0", "d1"]
        assert await s.get_document(P, ATTESTORS, "new") is not None
        raise Boom


async def test_failed_session_leaves_no_decision_and_no_document(store: MetadataStore) -> None:
    kept = document_record(P, ATTESTORS, "kept", etag="kept-1")
    policy = document_record(P, POLICIES, "policy", etag="policy-1")
    earlier = decision_record(P, "d0", images=(IMAGES[0],))
    async with store.session() as s:
        await s.put_document(kept)
        await s.put_document(policy)
        await s.insert_decisions([earlier])

    with pytest.raises(Boom):
        await _write_judge_records_then_fail(store)

    async with store.session() as s:
        assert await s.list_decisions(DecisionQuery(P), None, 10) == [earlier]
        assert await s.list_decisions(DecisionQuery(P, image=IMAGES[0]), None, 10) == [earlier]
        assert await s.list_decisions(DecisionQuery(P, image=IMAGES[1]), None, 10) == []
        assert await s.get_document(P, ATTESTORS, "new") is None
        assert await s.get_document(P, ATTESTORS, "kept") == kept
        assert await s.get_document(P, POLICIES, "policy") == policy
        assert doc_ids(await s.list_documents(P, ATTESTORS, None, 10)) == ["kept"]
    # The rolled-back ID is free again.
    retried = decision_record(P, "d1", images=(IMAGES[1],))
    await insert_decisions(store, [retried])
    async with store.session() as s:
        assert await s.list_decisions(DecisionQuery(P, image=IMAGES[1]), None, 10) == [retried]


async def test_documents_keep_their_data_out_of_reach_of_callers(store: MetadataStore) -> None:
    data = document_data("a")
    await put_documents(store, [document_record(P, ATTESTORS, "a", data=data)])
    data["threshold"] = 99  # the caller's dict changes after the put
    async with store.session() as s:
        got = await s.get_document(P, ATTESTORS, "a")
    assert got is not None
    assert got.data["threshold"] == 2
