"""Change events: what the outbox records and subscribers receive, as CloudEvents 1.0.

Owns the vocabulary of events (``EventType``), the outbox entry (``ChangeEvent``) that a
service writes in the same transaction as the change it describes, subscription filters, and
the rendering of an entry into a CloudEvent in structured JSON mode (the PyPI ``cloudevents``
package checks the attributes). Delivery (HTTP, NATS) lives in ``sinks``; the outbox table in
the store.

Events about occurrences carry what a Container Analysis Pub/Sub notice carries (``name``,
``kind``, ``notificationTime``), so consumers written for that keep working. ``subject`` is
the resource the event is about; delivery keeps order per subject.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from chainproof.domain.timestamps import rfc3339
from chainproof.errors import InvalidArgument

_PREFIX = "dev.chainproof."
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"


class EventType(StrEnum):
    OCCURRENCE_CREATED = _PREFIX + "occurrence.created"
    OCCURRENCE_UPDATED = _PREFIX + "occurrence.updated"
    OCCURRENCE_DELETED = _PREFIX + "occurrence.deleted"
    NOTE_CHANGED = _PREFIX + "note.changed"
    ATTESTOR_CHANGED = _PREFIX + "attestor.changed"
    POLICY_CHANGED = _PREFIX + "policy.changed"
    DECISION_MADE = _PREFIX + "decision.made"
    VIOLATION_OPENED = _PREFIX + "violation.opened"
    VIOLATION_CLOSED = _PREFIX + "violation.closed"
    VIOLATION_ACTED = _PREFIX + "violation.acted"
    BREAKGLASS_USED = _PREFIX + "breakglass.used"
    BREAKGLASS_EXPIRED = _PREFIX + "breakglass.expired"

    @property
    def resource_kind(self) -> str:
        """``occurrence``, ``decision``, ``violation``, …: what subscriptions filter on."""
        return self.value[len(_PREFIX) :].split(".", 1)[0]

    @classmethod
    def parse(cls, text: str) -> EventType:
        for member in cls:
            if text in (member.value, member.value[len(_PREFIX) :]):
                return member
        raise InvalidArgument(
            f"unknown event type {text!r}: expected one of "
            + ", ".join(m.value[len(_PREFIX) :] for m in cls)
        )


RESOURCE_KINDS = frozenset(t.resource_kind for t in EventType)
#: Kinds of change that can alter a verdict; decisions, violations and breakglass events
#: are the judge's own output.
JUDGED_KINDS = frozenset({"occurrence", "note", "attestor", "policy"})
#: The event types of those kinds, worked out once (an ingest asks for 20,000 events).
_JUDGED_TYPES = frozenset(t for t in EventType if t.resource_kind in JUDGED_KINDS)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One outbox entry. ``event_id`` is a UUIDv7 made by the writer (time-ordered), and
    stays the same across every delivery attempt, so subscribers can drop duplicates."""

    event_id: str
    project: str
    type: EventType
    subject: str
    time: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    #: Position in the outbox (assigned by the store; 0 before it is written).
    sequence: int = 0

    @property
    def kind(self) -> str:
        return self.type.resource_kind

    @property
    def concerns_judgement(self) -> bool:
        """Whether the change can alter a running pod's verdict (evidence, keys, policy):
        only these are left for the re-judging worker to read (``outbox.unjudged``)."""
        return self.type in _JUDGED_TYPES


def occurrence_notice(name: str, kind: str, now: datetime) -> dict[str, Any]:
    """The body Container Analysis publishes for an occurrence change."""
    return notice_at(name, kind, rfc3339(now))


def notice_at(name: str, kind: str, notification_time: str) -> dict[str, Any]:
    """:func:`occurrence_notice` with the instant formatted already (once for a batch)."""
    return {"name": name, "kind": kind, "notificationTime": notification_time}


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """Which events a subscription wants: empty sets mean every kind / every type."""

    kinds: frozenset[str] = frozenset()
    types: frozenset[EventType] = frozenset()

    @classmethod
    def build(cls, kinds: Iterable[str], types: Iterable[str]) -> SubscriptionFilter:
        kind_set = frozenset(k.strip() for k in kinds if k.strip())
        unknown = kind_set - RESOURCE_KINDS
        if unknown:
            raise InvalidArgument(
                f"unknown event kind(s) {', '.join(sorted(unknown))}: expected some of "
                + ", ".join(sorted(RESOURCE_KINDS))
            )
        return cls(kind_set, frozenset(EventType.parse(t) for t in types if t.strip()))

    def matches(self, event: ChangeEvent) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        return not self.types or event.type in self.types


def to_cloudevent(event: ChangeEvent, source: str) -> CloudEvent:
    """The entry as a CloudEvent; ``source`` names this chainproof (a URI reference)."""
    return CloudEvent(
        {
            "id": event.event_id,
            "source": source,
            "type": event.type.value,
            "subject": event.subject,
            "time": event.time,
            "datacontenttype": "application/json",
            "chainproofproject": event.project,
            "chainproofsequence": event.sequence,
        },
        dict(event.data),
    )


def structured_body(event: ChangeEvent, source: str) -> bytes:
    """The CloudEvent in structured JSON mode: the same bytes go to HTTP and NATS, so an
    HMAC over them means the same everywhere."""
    message = to_structured(to_cloudevent(event, source), JSONFormat())
    body: bytes = message.body
    return body
