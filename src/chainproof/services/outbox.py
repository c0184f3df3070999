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
from chainproof.policy.violations import Violation
from chainproof.store.port import DecisionRecord, OccurrenceRecord, UnitOfWork


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
    kind: EventType, occurrences: Iterable[OccurrenceRecord], now: datetime
) -> list[ChangeEvent]:
    """One entry per occurrence. Beside what a Container Analysis notice carries, the data
    names the canonical ``resourceUri`` the occurrence is about and its ``noteName``, so the
    re-judging worker knows which image to judge again, and whose evidence it is, even after
    a deletion."""
    items = list(occurrences)
    ids = new_event_ids(len(items))
    stamp = rfc3339(now)  # one instant for the batch, formatted once
    events = []
    for event_id, r in zip(ids, items, strict=True):
        name = f"projects/{r.project}/occurrences/{r.occurrence_id}"
        data = notice_at(name, r.kind, stamp)
        data["resourceUri"] = r.resource
        data["noteName"] = f"projects/{r.note_project}/notes/{r.note_id}"
        events.append(ChangeEvent(event_id, r.project, kind, name, now, data))
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


def violation_event(kind: EventType, violation: Violation, now: datetime) -> ChangeEvent:
    """``violation.opened``, ``violation.closed`` or ``violation.acted``: the violation as
    the REST API shows it (the pod event, its open and close times, its actions)."""
    return ChangeEvent(
        new_event_id(), violation.project, kind, violation.name, now, violation.to_dict()
    )


def breakglass_expired_event(
    project: str, cluster: str, namespace: str, pod: str, expired: datetime, now: datetime
) -> ChangeEvent:
    """A running pod's breakglass window has passed: it is judged like any other now."""
    name = f"projects/{project}/clusters/{cluster}/namespaces/{namespace}/pods/{pod}"
    data = {
        "name": name,
        "cluster": cluster,
        "namespace": namespace,
        "pod": pod,
        "expired": rfc3339(expired),
        "notificationTime": rfc3339(now),
    }
    return ChangeEvent(new_event_id(), project, EventType.BREAKGLASS_EXPIRED, name, now, data)


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
        if r.data.get("breakglass") and not r.data.get("dryRun"):
            # Every breakglass use is announced on its own, with why and until when.
            used = {
                **data,
                "justification": str(r.data.get("breakglassJustification") or ""),
                "expires": str(r.data.get("breakglassExpires") or ""),
            }
            events.append(
                ChangeEvent(
                    new_event_id(), r.project, EventType.BREAKGLASS_USED, name, r.time, used
                )
            )
    return events


async def append(uow: UnitOfWork, events: Sequence[ChangeEvent]) -> None:
    """Append to the outbox of ``uow`` (the caller's transaction)."""
    if events:
        await uow.outbox.append(events)
