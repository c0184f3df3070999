"""Grafeas semantics, checked on the in-memory store with a fixed clock and IDs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.memory import MemoryStore

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(clock: Clock) -> GrafeasService:
    ids = (f"occ-{i:04d}" for i in itertools.count())
    return GrafeasService(MemoryStore(), PageTokenCodec(b"s" * 32), clock, lambda: next(ids))


def attestation_note() -> object:
    return note_from_json({"attestation": {"hint": {"humanReadableName": "qa"}}})


def attestation(resource: str, note: str = "projects/sec/notes/qa") -> object:
    return occurrence_from_json(
        {
            "resourceUri": resource,
            "noteName": note,
            "attestation": {
                "serializedPayload": "cGF5bG9hZA==",
                "signatures": [{"signature": "c2ln", "publicKeyId": "k1"}],
            },
        }
    )


async def test_create_note_sets_name_kind_and_times(svc: GrafeasService) -> None:
    note = await svc.create_note("projects/sec", "qa", attestation_note())
    assert note.name == "projects/sec/notes/qa"
    assert note.kind == 7  # ATTESTATION
    assert note.create_time.ToDatetime(UTC) == T0 == note.update_time.ToDatetime(UTC)
    assert await svc.get_note("projects/sec/notes/qa") == note
    assert await svc.get_project("projects/sec") == "projects/sec"  # recorded implicitly


async def test_note_ids_are_chosen_by_the_client_and_unique(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    with pytest.raises(AlreadyExists, match="projects/sec/notes/qa already exists"):
        await svc.create_note("projects/sec", "qa", attestation_note())
    with pytest.raises(InvalidArgument, match="noteId is required"):
        await svc.create_note("projects/sec", "", attestation_note())
    with pytest.raises(InvalidArgument, match="must not contain '/'"):
        await svc.create_note("projects/sec", "a/b", attestation_note())
    mismatched = note_from_json({"name": "projects/other/notes/qa", "attestation": {}})
    with pytest.raises(InvalidArgument, match="does not match"):
        await svc.create_note("projects/sec", "qa2", mismatched)


async def test_occurrences_get_server_ids_and_need_their_note(svc: GrafeasService) -> None:
    with pytest.raises(NotFound, match="note projects/sec/notes/qa does not exist"):
        await svc.create_occurrence("projects/app", attestation(f"gcr.io/x/a@{D1}"))
    await svc.create_note("projects/sec", "qa", attestation_note())
    sent = attestation(f"gcr.io/x/a@{D1}")
    sent.name = "projects/evil/occurrences/chosen"  # output-only: ignored
    occ = await svc.create_occurrence("projects/app", sent)
    assert occ.name == "projects/app/occurrences/occ-0000"
    assert occ.kind == 7


async def test_occurrence_kind_must_fit_its_note(svc: GrafeasService) -> None:
    await svc.create_note(
        "projects/sec", "build", note_from_json({"build": {"builderVersion": "1"}})
    )
    with pytest.raises(InvalidArgument, match="is kind ATTESTATION but its note .* is kind BUILD"):
        await svc.create_occurrence("projects/app", attestation("r", "projects/sec/notes/build"))


async def test_dsse_occurrences_may_attach_to_attestor_notes(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    dsse = occurrence_from_json(
        {
            "resourceUri": f"gcr.io/x/a@{D1}",
            "noteName": "projects/sec/notes/qa",
            "dsseAttestation": {
                "envelope": {
                    "payload": "e30=",
                    "payloadType": "application/vnd.in-toto+json",
                    "signatures": [{"sig": "c2ln", "keyid": "k"}],
                }
            },
        }
    )
    created = await svc.create_occurrence("projects/app", dsse)
    assert created.kind == 10


async def test_batch_is_atomic_and_names_the_failing_item(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    good = attestation(f"gcr.io/x/a@{D1}")
    bad = occurrence_from_json({"noteName": "projects/sec/notes/qa", "attestation": {}})
    missing_note = attestation(f"gcr.io/x/a@{D1}", "projects/sec/notes/nope")
    with pytest.raises(InvalidArgument) as info:
        await svc.batch_create_occurrences("projects/app", [good, bad, good])
    assert "1 of 3 occurrences are invalid; nothing was created" in info.value.message
    assert any(d.startswith("occurrences[1]: ") for d in info.value.details)
    with pytest.raises(InvalidArgument) as info:
        await svc.batch_create_occurrences("projects/app", [good, missing_note])
    assert "occurrences[1]: note projects/sec/notes/nope does not exist" in info.value.details[0]
    page = await svc.list_occurrences("projects/app", "", None, "")
    assert page.items == []


async def test_batch_limits(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    with pytest.raises(InvalidArgument, match="at least one"):
        await svc.batch_create_occurrences("projects/app", [])
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await svc.batch_create_occurrences("projects/app", [attestation("r")] * 1001)
    created = await svc.batch_create_occurrences("projects/app", [attestation("r")] * 1000)
    assert len({o.name for o in created}) == 1000


async def test_batch_notes_all_or_nothing(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "taken", attestation_note())
    with pytest.raises(AlreadyExists) as info:
        await svc.batch_create_notes(
            "projects/sec", {"fresh": attestation_note(), "taken": attestation_note()}
        )
    assert info.value.details == ("projects/sec/notes/taken",)
    with pytest.raises(NotFound):
        await svc.get_note("projects/sec/notes/fresh")


async def test_pagination_walks_every_item_once(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    await svc.batch_create_occurrences("projects/app", [attestation(f"gcr.io/x/a@{D1}")] * 45)
    await svc.batch_create_occurrences("projects/app", [attestation(f"gcr.io/x/b@{D2}")] * 5)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await svc.list_occurrences(
            "projects/app", f'resourceUrl="https://gcr.io/x/a@{D1}"', 20, token
        )
        seen += [o.name for o in page.items]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 45
    first = await svc.list_occurrences("projects/app", "", 10, "")
    with pytest.raises(InvalidArgument, match="not valid for this list"):
        await svc.list_occurrences("projects/app", 'kind="BUILD"', 10, first.next_page_token)


async def test_exact_page_boundary_gives_no_token(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    await svc.batch_create_occurrences("projects/app", [attestation("r")] * 20)
    page = await svc.list_occurrences("projects/app", "", 20, "")
    assert len(page.items) == 20 and page.next_page_token == ""


async def test_update_mask_changes_only_named_fields(svc: GrafeasService, clock: Clock) -> None:
    await svc.create_note(
        "projects/sec",
        "qa",
        note_from_json({"shortDescription": "a", "longDescription": "b", "attestation": {}}),
    )
    clock.now = T0 + timedelta(hours=1)
    patch = note_from_json({"shortDescription": "new", "longDescription": "not me"})
    updated = await svc.update_note("projects/sec/notes/qa", patch, ["shortDescription"])
    assert (updated.short_description, updated.long_description) == ("new", "b")
    assert updated.create_time.ToDatetime(UTC) == T0
    assert updated.update_time.ToDatetime(UTC) == clock.now
    with pytest.raises(InvalidArgument, match="createTime is set by the server"):
        await svc.update_note("projects/sec/notes/qa", patch, ["create_time"])
    with pytest.raises(InvalidArgument, match="names no field"):
        await svc.update_note("projects/sec/notes/qa", patch, ["bogus"])


async def test_update_without_mask_replaces_but_keeps_identity(svc: GrafeasService) -> None:
    await svc.create_note(
        "projects/sec", "qa", note_from_json({"shortDescription": "a", "attestation": {}})
    )
    replaced = await svc.update_note(
        "projects/sec/notes/qa", note_from_json({"longDescription": "only", "attestation": {}}), []
    )
    assert replaced.short_description == "" and replaced.long_description == "only"
    assert replaced.name == "projects/sec/notes/qa"
    with pytest.raises(InvalidArgument, match="kind cannot change"):
        await svc.update_note(
            "projects/sec/notes/qa", note_from_json({"build": {"builderVersion": "1"}}), []
        )


async def test_occurrences_cannot_move(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    await svc.create_note("projects/sec", "other", attestation_note())
    occ = await svc.create_occurrence("projects/app", attestation(f"gcr.io/x/a@{D1}"))
    # Through another project's name, the occurrence does not exist.
    other_name = occ.name.replace("projects/app/", "projects/evil/")
    for call in (
        svc.get_occurrence(other_name),
        svc.delete_occurrence(other_name),
        svc.update_occurrence(other_name, attestation("x"), []),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(InvalidArgument, match="resourceUri of occurrence .* is immutable"):
        await svc.update_occurrence(occ.name, attestation(f"gcr.io/x/b@{D2}"), [])
    with pytest.raises(InvalidArgument, match="noteName of occurrence .* is immutable"):
        await svc.update_occurrence(
            occ.name, attestation(f"gcr.io/x/a@{D1}", "projects/sec/notes/other"), ["note_name"]
        )
    moved = attestation(f"gcr.io/x/a@{D1}")
    moved.name = "projects/evil/occurrences/x"
    kept = await svc.update_occurrence(occ.name, moved, [])
    assert kept.name == occ.name


async def test_note_occurrences_span_projects(svc: GrafeasService) -> None:
    await svc.create_note("projects/sec", "qa", attestation_note())
    await svc.create_occurrence("projects/a", attestation(f"gcr.io/x/a@{D1}"))
    await svc.create_occurrence("projects/b", attestation(f"gcr.io/x/a@{D1}"))
    page = await svc.list_note_occurrences("projects/sec/notes/qa", "", None, "")
    assert sorted(o.name.split("/")[1] for o in page.items) == ["a", "b"]
    note = await svc.get_occurrence_note(page.items[0].name)
    assert note.name == "projects/sec/notes/qa"
    with pytest.raises(NotFound):
        await svc.list_note_occurrences("projects/sec/notes/nope", "", None, "")


async def test_projects(svc: GrafeasService) -> None:
    assert await svc.create_project("projects/p1") == "projects/p1"
    with pytest.raises(AlreadyExists):
        await svc.create_project("projects/p1")
    await svc.create_note("projects/p2", "n", attestation_note())
    listed = await svc.list_projects("", 1, "")
    assert listed.items == ["projects/p1"] and listed.next_page_token
    rest = await svc.list_projects("", 1, listed.next_page_token)
    assert rest.items == ["projects/p2"]
    with pytest.raises(FailedPrecondition, match="still holds"):
        await svc.delete_project("projects/p2")
    await svc.delete_project("projects/p1")
    with pytest.raises(NotFound):
        await svc.get_project("projects/p1")
    with pytest.raises(InvalidArgument, match="not supported"):
        await svc.list_projects('name="x"', None, "")


def test_occurrence_ids_are_uuid7_and_time_ordered() -> None:
    import time
    import uuid

    from chainproof.services.scribe.grafeas import new_occurrence_id

    first = new_occurrence_id()
    time.sleep(0.002)
    later = [new_occurrence_id() for _ in range(100)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in later)
    assert first < min(later)
    assert len(set(later)) == 100


def test_batch_occurrence_ids_are_the_same_uuid7_spelling() -> None:
    import time
    import uuid

    from chainproof.services.scribe.grafeas import new_occurrence_id, new_occurrence_ids

    first = new_occurrence_id()
    time.sleep(0.002)
    batch = new_occurrence_ids(500)
    for i in batch:
        parsed = uuid.UUID(i)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == i
    assert first < min(batch) and len(set(batch)) == 500


def test_batch_occurrence_ids_ascend_so_a_batch_appends_to_the_id_indexes() -> None:
    from chainproof.services.scribe.grafeas import new_occurrence_ids

    batch = new_occurrence_ids(2000)
    assert batch == sorted(batch) and len(set(batch)) == 2000
    # Text order is numeric order: the IDs' values ascend too.
    values = [int(i.replace("-", ""), 16) for i in batch]
    assert values == sorted(values)


def finding(resource: str, note: str = "projects/osv/notes/GO-1") -> object:
    return occurrence_from_json(
        {
            "resourceUri": resource,
            "noteName": note,
            "vulnerability": {
                "severity": "HIGH",
                "cvssScore": 7.5,
                "packageIssue": [
                    {
                        "affectedCpeUri": "pkg:golang/x@v1",
                        "affectedPackage": "x",
                        "affectedVersion": {"name": "v1", "kind": "NORMAL"},
                        "fixedVersion": {"kind": "MAXIMUM"},
                    }
                ],
            },
        }
    )


async def test_a_reconciliation_writes_updates_over_the_stored_occurrences(
    svc: GrafeasService, clock: Clock
) -> None:
    """``update``: the stored occurrence is written over under its own name, kind, note,
    resource and create time, dated now, announced and told to the outbox as an update; one
    gone meanwhile is skipped (not brought back); a kind change or an invalid occurrence is
    refused and nothing of the transaction is written."""
    from dataclasses import replace

    from chainproof.domain.events import EventType

    await svc.create_note("projects/sec", "qa", attestation_note())
    a, b = await svc.batch_create_occurrences(
        "projects/prod", [attestation(f"reg.example/a@{D1}"), attestation(f"reg.example/b@{D2}")]
    )
    async with svc._store.session(readonly=True) as s:
        stored = {r.occurrence_id: r for r in await s.occurrences.page("prod", None, None, 10)}
    ra, rb = (stored[o.name.rsplit("/", 1)[1]] for o in (a, b))
    await svc.delete_occurrence(b.name)
    heard: list[list[str]] = []
    svc.add_listener(lambda records: heard.append([r.occurrence_id for r in records]))
    clock.now = T0 + timedelta(hours=1)
    changed = ra.occurrence.__class__()
    changed.CopyFrom(ra.occurrence)
    changed.attestation.serialized_payload = b"again"
    changed.name = "projects/x/occurrences/forged"  # the key's name is kept, not this
    changed.resource_uri = "https://" + changed.resource_uri  # the same resource
    result = await svc.reconcile_occurrences(
        "projects/prod", [], [], [], [replace(ra, occurrence=changed), rb]
    )
    assert result.created == [] and result.deleted == 0
    [updated] = result.updated
    got = await svc.get_occurrence(a.name)
    assert got == updated.occurrence
    assert got.name == a.name and got.attestation.serialized_payload == b"again"
    assert got.create_time == a.create_time
    assert got.update_time.ToDatetime(UTC) == T0 + timedelta(hours=1)
    assert updated.resource == ra.resource
    with pytest.raises(NotFound):
        await svc.get_occurrence(b.name)
    assert heard == [[ra.occurrence_id]]
    async with svc._store.session(readonly=True) as s:
        events = await s.outbox.unrouted(100)
    assert [e.type for e in events if e.subject.endswith(ra.occurrence_id)] == [
        EventType.OCCURRENCE_CREATED,
        EventType.OCCURRENCE_UPDATED,
    ]

    vulnerability = occurrence_from_json(
        {
            "resourceUri": f"reg.example/a@{D1}",
            "noteName": "projects/sec/notes/qa",
            "vulnerability": {"severity": "HIGH"},
        }
    )
    bad = attestation(f"reg.example/a@{D1}")
    bad.attestation.Clear()  # type: ignore[attr-defined]
    moved = attestation(f"reg.example/b@{D2}")
    renoted = attestation(f"reg.example/a@{D1}", "projects/sec/notes/other")
    for occurrence, match in (
        (vulnerability, "kind cannot change"),
        (bad, "attestation"),
        (moved, "resourceUri .* is not the stored resource"),
        (renoted, "noteName .* is not the stored note"),
    ):
        with pytest.raises(InvalidArgument, match=match):
            await svc.reconcile_occurrences(
                "projects/prod",
                [attestation(f"reg.example/c@{D1}")],
                [],
                [],
                [replace(ra, occurrence=occurrence)],
            )
    assert (await svc.get_occurrence(a.name)).attestation.serialized_payload == b"again"
    page = await svc.list_occurrences("projects/prod", "", 100, "")
    assert [o.name for o in page.items] == [a.name]


async def test_copies_are_stored_as_the_occurrences_they_stand_for(
    svc: GrafeasService,
) -> None:
    """A template written on several resources: each copy is the occurrence one would get by
    creating it on its own (message and stored JSON, key order included), with its own name,
    resource and times, in the same transaction as the ordinary creates."""
    from chainproof.domain.messages import render_for_storage
    from chainproof.services.scribe.grafeas import Copies

    await svc.create_note("projects/osv", "GO-1", note_from_json({"vulnerability": {}}))
    uris = [f"https://reg.example/a@{D1}", f"reg.example/b@{D2}", f"https://reg.example/a@{D1}x"]
    created, deleted, _ = await svc.reconcile_occurrences(
        "projects/prod",
        [attestation(uris[0], "projects/osv/notes/GO-1")][:0],
        [],
        [Copies(finding("template-uri"), uris)],
    )
    assert deleted == 0 and len(created) == 3
    assert len({r.occurrence_id for r in created}) == 3
    for record, uri in zip(created, uris, strict=True):
        assert record.occurrence.resource_uri == uri
        assert record.occurrence.name == f"projects/prod/occurrences/{record.occurrence_id}"
        assert record.occurrence.create_time.ToDatetime(UTC) == T0
        assert record.kind == "VULNERABILITY" and record.note_id == "GO-1"
        rendered = render_for_storage(record.occurrence, "x")
        assert record.document == rendered and list(record.document or {}) == list(rendered)
        stored = await svc.get_occurrence(record.occurrence.name)
        assert stored == record.occurrence
        assert stored.vulnerability.cvss_score == pytest.approx(7.5)
    assert created[0].resource == f"reg.example/a@{D1}"  # canonical, as any occurrence's
    # A copy on a bad resource URI, or of a template whose note is missing, writes nothing.
    with pytest.raises(InvalidArgument, match="resourceUri"):
        await svc.reconcile_occurrences(
            "projects/prod", [], [], [Copies(finding("t"), [f"reg.example/c@{D1}", " "])]
        )
    with pytest.raises(InvalidArgument, match="does not exist"):
        await svc.reconcile_occurrences(
            "projects/prod", [], [], [Copies(finding("t", "projects/osv/notes/none"), ["r"])]
        )
    page = await svc.list_occurrences("projects/prod", "", 100, "")
    assert len(page.items) == 3
