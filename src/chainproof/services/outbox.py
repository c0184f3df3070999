"""The outbox entries the scribe and the judge write beside their changes.

Owns the shape of each entry: its ID (a UUIDv7, time-ordered, kept across every delivery
attempt), its subject (the resource's name) and its data. Occurrence and note entries carry
what a Container Analysis Pub/Sub notice carries (``name``, ``kind``, ``notificationTime``).
Services call :func:`append` inside the unit of work that makes the change, so the entry
commits or rolls back with it (see store/runtime_port.py); nothing here opens a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from chainproof.domain.events import ChangeEvent, EventType, notice_at
from chainproof.domain.timestamps import rfc3339
from chainproof.store.port import DecisionRecord, UnitOfWork


def new_event_id() -> str:
    """A UUIDv7, made like occurrence IDs (imported here: the scribe imports this module)."""
    from chainproof.services.scribe.grafeas import new_occurrence_id

    return new_occurrence_id()


def new_event_ids(count: int) -> list[str]:
    """``count`` event IDs from one clock read and one draw of randomness (a 10,000-item
    ingest appends 20,000 entries)."""
    from chainproof.services.scribe.grafeas import new_occurrence_ids

    return new_occurrence_ids(count)


def occurrence_events(
    kind: EventType, occurrences: Iterable[tuple[str, str, str]], now: datetime
) -> list[ChangeEvent]:
    """One entry per ``(project, occurrence_id, kind)``."""
    items = list(occurrences)
    ids = new_event_ids(len(items))
    stamp = rfc3339(now)  # one instant for the batch, formatted once
    events = []
    for event_id, (project, occurrence_id, occurrence_kind) in zip(ids, items, strict=True):
        name = f"projects/{project}/occurrences/{occurrence_id}"
        notice = notice_at(name, occurrence_kind, stamp)
        events.append(ChangeEvent(event_id, project, kind, name, now, notice))
    return events


def note_events(notes: Iterable[tuple[str, str, str]], now: datetime) -> list[ChangeEvent]:
    """``note.changed`` per ``(project, note_id, kind)`` (created, updated or deleted)."""
    items = list(notes)
    ids = new_event_ids(len(items))
    stamp = rfc3339(now)
    events = []
    for event_id, (project, note_id, note_kind) in zip(ids, items, strict=True):
        name = f"projects/{project}/notes/{note_id}"
        notice = notice_at(name, note_kind, stamp)
        events.append(ChangeEvent(event_id, project, EventType.NOTE_CHANGED, name, now, notice))
    return events


def resource_event(
    kind: EventType, project: str, name: str, change: str, now: datetime
) -> ChangeEvent:
    """An attestor or policy change: ``change`` is created, updated or deleted."""
    data = {"name": name, "change": change, "notificationTime": rfc3339(now)}
    return ChangeEvent(new_event_id(), project, kind, name, now, data)


def decision_events(records: Sequence[DecisionRecord]) -> list[ChangeEvent]:
    """``decision.made`` per recorded admission decision (what was judged and the outcome;
    the full explanation stays in the decision log)."""
    events = []
    for r in records:
        name = f"projects/{r.project}/decisions/{r.decision_id}"
        data: dict[str, Any] = {
            "name": name,
            "outcome": r.outcome,
            "cluster": r.data.get("cluster", ""),
            "namespace": r.namespace,
            "workload": r.data.get("workload", ""),
            "operation": r.data.get("operation", ""),
            "images": list(r.images),
            "decisionTime": rfc3339(r.time),
        }
        events.append(
            ChangeEvent(new_event_id(), r.project, EventType.DECISION_MADE, name, r.time, data)
        )
    return events


async def append(uow: UnitOfWork, events: Sequence[ChangeEvent]) -> None:
    """Append to the outbox of ``uow`` (the caller's transaction)."""
    if events:
        await uow.outbox.append(events)
