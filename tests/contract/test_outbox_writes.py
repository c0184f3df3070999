"""The transactional outbox, on memory, SQLite and PostgreSQL: every change the scribe and
the judge make appends its event in the same transaction, and a change that does not commit
leaves no event behind.

Occurrence and note events carry what a Container Analysis Pub/Sub notice carries (name,
kind, notificationTime).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import InvalidArgument, NotFound
from chainproof.policy import Decision, Outcome
from chainproof.services.judge.decision_log import DecisionEntry, DecisionLog
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.ingestion import IngestService
from chainproof.store.port import MetadataStore, UnitOfWork

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMAGE = "registry.example/web@sha256:" + "a" * 64
TOKENS = PageTokenCodec(b"k" * 32)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


async def events(store: MetadataStore) -> list[ChangeEvent]:
    async with store.session(readonly=True) as s:
        return await s.outbox.unrouted(10_000)


def vulnerability(note: str = "projects/p/notes/cve-1") -> Any:
    return occurrence_from_json(
        {
            "resourceUri": IMAGE,
            "noteName": note,
            "vulnerability": {
                "severity": "CRITICAL",
                "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "zlib"}],
            },
        }
    )


@pytest.fixture
def scribe(store: MetadataStore) -> GrafeasService:
    return GrafeasService(store, TOKENS, clock=lambda: T0)


async def test_occurrence_changes_append_container_analysis_notices(
    store: MetadataStore, scribe: GrafeasService
) -> None:
    await scribe.create_note("projects/p", "cve-1", note_from_json({"vulnerability": {}}))
    created = await scribe.create_occurrence("projects/p", vulnerability())
    update = occurrence_from_json({"vulnerability": {"severity": "LOW"}})
    await scribe.update_occurrence(created.name, update, ["vulnerability.severity"])
    await scribe.delete_occurrence(created.name)
    got = await events(store)
    assert [e.type for e in got] == [
        EventType.NOTE_CHANGED,
        EventType.OCCURRENCE_CREATED,
        EventType.OCCURRENCE_UPDATED,
        EventType.OCCURRENCE_DELETED,
    ]
    notice = {
        "name": created.name,
        "kind": "VULNERABILITY",
        "notificationTime": "2026-12-01T12:00:00Z",
        # Beyond a Container Analysis notice: what the re-judging worker resolves it by.
        "resourceUri": created.resource_uri,
        "noteName": "projects/p/notes/cve-1",
    }
    for e in got[1:]:
        assert e.project == "p" and e.subject == created.name and e.time == T0
        assert dict(e.data) == notice
    assert dict(got[0].data) == {
        "name": "projects/p/notes/cve-1",
        "kind": "VULNERABILITY",
        "notificationTime": "2026-12-01T12:00:00Z",
    }
    assert len({e.event_id for e in got}) == 4
    assert [e.sequence for e in got] == sorted(e.sequence for e in got)


async def test_a_refused_batch_appends_nothing(
    store: MetadataStore, scribe: GrafeasService
) -> None:
    await scribe.create_note("projects/p", "cve-1", note_from_json({"vulnerability": {}}))
    before = await events(store)
    with pytest.raises(InvalidArgument):
        await scribe.batch_create_occurrences(
            "projects/p", [vulnerability(), vulnerability("projects/p/notes/missing")]
        )
    with pytest.raises(NotFound):
        await scribe.delete_occurrence("projects/p/occurrences/nobody")
    assert await events(store) == before


class CommitFailed(Exception):
    pass


class FailingCommit:
    """A store whose sessions fail as they end, after everything was written: the commit
    that would have made the change is the one that fails."""

    def __init__(self, inner: MetadataStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
        async with self._inner.session(readonly=readonly) as s:
            yield s
            if not readonly:
                raise CommitFailed


async def test_change_and_event_commit_together_or_not_at_all(
    store: MetadataStore, scribe: GrafeasService
) -> None:
    await scribe.create_note("projects/p", "cve-1", note_from_json({"vulnerability": {}}))
    failing = GrafeasService(FailingCommit(store), TOKENS, clock=lambda: T0)  # type: ignore[arg-type]
    with pytest.raises(CommitFailed):
        await failing.create_occurrence("projects/p", vulnerability())
    page = await scribe.list_occurrences("projects/p", "", None, "")
    assert page.items == []
    assert [e.type for e in await events(store)] == [EventType.NOTE_CHANGED]


async def test_note_changes_append_note_changed(
    store: MetadataStore, scribe: GrafeasService
) -> None:
    await scribe.batch_create_notes(
        "projects/p",
        {"a": note_from_json({"vulnerability": {}}), "b": note_from_json({"vulnerability": {}})},
    )
    await scribe.update_note(
        "projects/p/notes/a", note_from_json({"shortDescription": "x"}), ["short_description"]
    )
    await scribe.delete_note("projects/p/notes/b")
    got = await events(store)
    assert [(e.type, e.subject) for e in got] == [
        (EventType.NOTE_CHANGED, "projects/p/notes/a"),
        (EventType.NOTE_CHANGED, "projects/p/notes/b"),
        (EventType.NOTE_CHANGED, "projects/p/notes/a"),
        (EventType.NOTE_CHANGED, "projects/p/notes/b"),
    ]


async def test_policy_changes_and_decisions_append_events(store: MetadataStore) -> None:
    resources = JudgeResources(store, TOKENS, clock=lambda: T0)
    rule = {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
    await resources.put_policy("projects/p", {"defaultAdmissionRule": rule})
    await resources.put_policy("projects/p", {"defaultAdmissionRule": rule})
    log = DecisionLog(store, TOKENS, clock=lambda: T0)  # not started: writes inline
    decision = Decision((), Outcome.DENIED, T0)
    await log.record(
        DecisionEntry("p", decision, cluster="prod", namespace="shop", workload="Pod/web")
    )
    got = await events(store)
    assert [(e.type, e.data.get("change")) for e in got[:2]] == [
        (EventType.POLICY_CHANGED, "created"),
        (EventType.POLICY_CHANGED, "updated"),
    ]
    assert got[0].subject == "projects/p/policy"
    made = got[2]
    assert made.type is EventType.DECISION_MADE and made.project == "p"
    assert made.subject.startswith("projects/p/decisions/")
    assert made.data["outcome"] == "denied" and made.data["namespace"] == "shop"
    assert made.data["cluster"] == "prod" and made.data["name"] == made.subject


async def test_ingest_announces_created_superseded_and_assessed_occurrences(
    store: MetadataStore,
) -> None:
    import json

    ingest = IngestService(store, clock=lambda: T0)
    report = (FIXTURES / "scans/trivy/debian-buster.json").read_bytes()
    first = await ingest.ingest("projects/prod", report, resource_uri=IMAGE)
    got = await events(store)
    created = [e for e in got if e.type is EventType.OCCURRENCE_CREATED]
    assert len(created) == sum(first.created.values()) == 3
    assert {e.data["kind"] for e in created} == {"DISCOVERY", "VULNERABILITY"}
    assert any(e.type is EventType.NOTE_CHANGED for e in got)
    doc = json.loads(report)
    doc["CreatedAt"] = "2021-09-01T00:00:00Z"  # a later scan supersedes the first
    await ingest.ingest("projects/prod", json.dumps(doc).encode(), resource_uri=IMAGE)
    deleted = [e for e in await events(store) if e.type is EventType.OCCURRENCE_DELETED]
    assert {e.subject for e in deleted} == {e.subject for e in created}
    assert {e.data["kind"] for e in deleted} == {"DISCOVERY", "VULNERABILITY"}
