"""The lookups reverse impact and policy replay read, on memory, SQLite and PostgreSQL:

* ``uow.occurrences.vulnerable_resources``: images with a finding filed under an ID or naming
  it among its aliases, case-insensitively, keyset-paged by resource, per project;
* ``uow.occurrences.note_resources``: the distinct images of one note's occurrences in one
  project;
* ``uow.decisions.admissions``: the replay view of recorded decisions, from the records'
  request fields, and from the decision for records written before those were kept.

Expected answers are written out here from the port's definitions, not taken from an adapter.
"""

from __future__ import annotations

from datetime import timedelta

from chainproof.store.port import DecisionQuery, MetadataStore
from contract.store_samples import T0, decision_record, image, occurrence_record

P = "proj"
OTHER = "other-proj"


def finding(
    project: str, oid: str, resource: str, note_id: str, extra: str = "", note_project: str = "osv"
):  # type: ignore[no-untyped-def]
    record = occurrence_record(
        project, oid, resource=resource, note=(note_project, note_id), kind="VULNERABILITY"
    )
    record.occurrence.vulnerability.extra_details = extra
    return record


async def _findings(store: MetadataStore) -> None:
    async with store.session() as s:
        await s.occurrences.insert(
            [
                # Filed under the GHSA, naming the CVE as an alias (the scanner's way).
                finding(
                    P,
                    "o1",
                    image("a"),
                    "GHSA-aaaa-bbbb-cccc",
                    "osv=x;aliases=CVE-2024-1,CVE-2024-9",
                ),
                # Filed under the CVE itself (an ingested Trivy report), lower case on purpose.
                finding(P, "o2", image("b"), "cve-2024-1", "purl=pkg:npm/x@1", note_project=P),
                # Two findings of one image: one answer.
                finding(P, "o3", image("c"), "CVE-2024-1"),
                finding(P, "o4", image("c"), "GHSA-zzzz", "aliases=CVE-2024-1"),
                # A longer ID that merely starts with the one asked for, and a purl key that
                # holds the ID text: neither matches.
                finding(P, "o5", image("d"), "CVE-2024-10", "aliases=CVE-2024-11;purl=CVE-2024-1"),
                # The same CVE in another project: never listed for this one.
                finding(OTHER, "o6", image("e"), "CVE-2024-1"),
                # Not a finding (an attestation whose note happens to carry the ID).
                occurrence_record(P, "o7", resource=image("f"), note=(P, "CVE-2024-1")),
                # An ID with LIKE wildcards is taken literally.
                finding(P, "o8", image("g"), "X_1%", "aliases=Y-1"),
            ]
        )


async def test_vulnerable_resources_by_id_and_alias(store: MetadataStore) -> None:
    await _findings(store)
    async with store.session(readonly=True) as s:
        got = await s.occurrences.vulnerable_resources(P, ["CVE-2024-1"], None, 100)
        by_ghsa = await s.occurrences.vulnerable_resources(P, ["ghsa-aaaa-bbbb-cccc"], None, 100)
        other = await s.occurrences.vulnerable_resources(OTHER, ["CVE-2024-1"], None, 100)
        two = await s.occurrences.vulnerable_resources(P, ["CVE-2024-9", "CVE-2024-11"], None, 10)
        wild = await s.occurrences.vulnerable_resources(P, ["X_1%"], None, 10)
        no_wild = await s.occurrences.vulnerable_resources(P, ["XA1B"], None, 10)
        none = await s.occurrences.vulnerable_resources(P, [], None, 10)
    assert got == [image("a"), image("b"), image("c")]
    assert by_ghsa == [image("a")]
    assert other == [image("e")]
    assert two == [image("a"), image("d")]
    assert wild == [image("g")]
    assert no_wild == []
    assert none == []


async def test_vulnerable_resources_pages_by_resource(store: MetadataStore) -> None:
    await _findings(store)
    seen: list[str] = []
    after: str | None = None
    async with store.session(readonly=True) as s:
        while True:
            page = await s.occurrences.vulnerable_resources(P, ["CVE-2024-1"], after, 2)
            assert len(page) <= 2
            seen += page
            if len(page) < 2:
                break
            after = page[-1]
    assert seen == [image("a"), image("b"), image("c")]


async def test_note_resources_are_distinct_and_per_project(store: MetadataStore) -> None:
    note = ("att-proj", "attestor-note")
    async with store.session() as s:
        await s.occurrences.insert(
            [
                occurrence_record(P, "n1", resource=image("b"), note=note),
                occurrence_record(P, "n2", resource=image("a"), note=note),
                occurrence_record(P, "n3", resource=image("a"), note=note),
                occurrence_record(OTHER, "n4", resource=image("z"), note=note),
                occurrence_record(P, "n5", resource=image("c"), note=("att-proj", "another")),
            ]
        )
    async with store.session(readonly=True) as s:
        everything = await s.occurrences.note_resources(P, *note, None, 10)
        first = await s.occurrences.note_resources(P, *note, None, 1)
        rest = await s.occurrences.note_resources(P, *note, image("a"), 10)
        other = await s.occurrences.note_resources(OTHER, *note, None, 10)
    assert everything == [image("a"), image("b")]
    assert first == [image("a")]
    assert rest == [image("b")]
    assert other == [image("z")]


async def test_admissions_read_the_request_back(store: MetadataStore) -> None:
    written = "registry.example.com/app:1@sha256:" + "ab" * 32
    new = decision_record(
        P,
        "d1",
        time=T0,
        outcome="denied",
        namespace="prod",
        images=(image("app"),),
        data={
            "cluster": "prod-eu",
            "namespace": "prod",
            "serviceAccount": "builder",
            "workload": "Deployment/web",
            "dryRun": False,
            "requestImages": [written, "not a reference"],
            "decision": {"images": [{"image": "ignored when requestImages is there"}]},
        },
    )
    old = decision_record(
        P,
        "d2",
        time=T0 + timedelta(minutes=1),
        outcome="allowed",
        namespace="dev",
        data={
            "cluster": "",
            "namespace": "dev",
            "workload": "Pod/x",
            "decision": {"images": [{"image": "nginx:1"}, {"image": "redis@sha256:" + "cd" * 32}]},
        },
    )
    elsewhere = decision_record(OTHER, "d3", time=T0, data={"requestImages": ["x"]})
    async with store.session() as s:
        await s.decisions.insert([new, old, elsewhere])
    async with store.session(readonly=True) as s:
        got = await s.decisions.admissions(DecisionQuery(project=P), None, 10)
        later = await s.decisions.admissions(
            DecisionQuery(project=P, since=T0 + timedelta(seconds=30)), None, 10
        )
        after = await s.decisions.admissions(DecisionQuery(project=P), "d1", 10)
        nothing = await s.decisions.admissions(DecisionQuery(project=P), None, 0)
    assert [a.decision_id for a in got] == ["d1", "d2"]
    first, second = got
    assert (first.cluster, first.namespace, first.service_account, first.workload) == (
        "prod-eu",
        "prod",
        "builder",
        "Deployment/web",
    )
    assert first.images == (written, "not a reference")
    assert first.outcome == "denied" and first.time == T0 and not first.dry_run
    assert second.images == ("nginx:1", "redis@sha256:" + "cd" * 32)
    assert (second.namespace, second.service_account, second.workload) == ("dev", "", "Pod/x")
    assert [a.decision_id for a in later] == ["d2"]
    assert [a.decision_id for a in after] == ["d2"]
    assert nothing == []
