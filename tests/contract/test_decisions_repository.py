"""The decision log repository (``uow.decisions``), on memory, SQLite and PostgreSQL.

Expected decision lists come from a predicate written out here from the port's definition of
DecisionQuery, not from any adapter, so all three adapters are held to the same independent
reference.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chainproof.store.port import DecisionQuery, DecisionRecord, MetadataStore
from contract.store_samples import MINUS_5, PLUS_2, T0, decision_record, image

P = "proj"
MICRO = timedelta(microseconds=1)


def decision_ids(records: list[DecisionRecord]) -> list[str]:
    return [r.decision_id for r in records]


async def insert_decisions(store: MetadataStore, records: list[DecisionRecord]) -> None:
    async with store.session() as s:
        for r in records:
            await s.decisions.insert([r])


def assert_aware(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() is not None


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
        got = await s.decisions.page(DecisionQuery(P), None, 10)
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
            got = await s.decisions.page(query, None, 100)
            assert got == expected, query
            tried += 1
            matched += bool(expected)
        # Unknown projects have nothing.
        assert await s.decisions.page(DecisionQuery("nobody"), None, 100) == []
        assert await s.decisions.page(DecisionQuery(P), None, 0) == []
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
                await s.decisions.page(DecisionQuery(P, since=since, until=until), None, 10)
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
            return await s.decisions.page(DecisionQuery(P, image=img), None, 10)

        assert await by(IMAGES[0]) == [both]
        # Listed once even though it judged the image twice.
        assert await by(IMAGES[1]) == [both, repeated]
        assert await by(IMAGES[2]) == [repeated]
        assert await by(IMAGES[3]) == []
        # Exact match only: no prefix, no case folding, no wildcard.
        assert await by(IMAGES[0][:-1]) == []
        assert await by(IMAGES[0].upper()) == []
        assert await by("%") == []
        other = await s.decisions.page(DecisionQuery("other", image=IMAGES[1]), None, 10)
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
                    chunk = await s.decisions.page(query, after, page)
                assert len(chunk) <= page
                seen.extend(chunk)
                if len(chunk) < page:
                    break
                after = chunk[-1].decision_id
            assert seen == expected, (query, page)
        async with store.session() as s:
            # ``after`` is exclusive and need not be an existing ID.
            middle = expected[len(expected) // 2].decision_id
            got = await s.decisions.page(query, middle, 100)
            assert got == _expected(records, query, middle)
            got = await s.decisions.page(query, middle + "!", 100)
            assert got == _expected(records, query, middle + "!")
            assert await s.decisions.page(query, expected[-1].decision_id, 10) == []


async def test_newest_first_pages_walk_the_log_backwards(store: MetadataStore) -> None:
    """``newest_first``: the same decisions in the reverse order, ``after`` the ID a page
    goes back from (exclusive); and the overview's three columns of the same decisions."""
    records = _decision_dataset()
    records[10] = replace(records[10], data={**records[10].data, "breakglass": True})
    await insert_decisions(store, records)
    queries = [
        DecisionQuery(P),
        DecisionQuery(P, image=IMAGES[2]),
        DecisionQuery(P, outcome="DENY", since=T0 + timedelta(minutes=30)),
    ]
    for query in queries:
        backwards = replace(query, newest_first=True)
        expected = _expected(records, query)[::-1]
        for page in (1, 3, 100):
            seen: list[DecisionRecord] = []
            after: str | None = None
            while True:
                async with store.session() as s:
                    chunk = await s.decisions.page(backwards, after, page)
                seen.extend(chunk)
                if len(chunk) < page:
                    break
                after = chunk[-1].decision_id
            assert seen == expected, (query, page)
        async with store.session() as s:
            middle = expected[len(expected) // 2].decision_id
            got = await s.decisions.page(backwards, middle, 100)
            assert got == [r for r in expected if r.decision_id < middle]
    async with store.session() as s:
        window = DecisionQuery(P, since=T0 + timedelta(minutes=30), newest_first=True)
        newest = sorted(
            (r for r in records if _matches(r, window, None)), key=lambda r: r.time, reverse=True
        )
        got = await s.decisions.outcomes(window, 5)
        assert [(o.time, o.outcome) for o in got] == [(r.time, r.outcome) for r in newest[:5]]
        every = await s.decisions.outcomes(window, 1000)
        assert sorted((o.time, o.outcome, o.breakglass) for o in every) == sorted(
            (r.time, r.outcome, bool(r.data.get("breakglass"))) for r in newest
        )
        assert any(o.breakglass for o in every)
        assert await s.decisions.outcomes(window, 0) == []
