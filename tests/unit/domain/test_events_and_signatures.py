"""Change events as CloudEvents, subscription filters, webhook signatures, retry timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat

from chainproof.domain import webhook_signature as ws
from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.events import (
    ChangeEvent,
    EventType,
    SubscriptionFilter,
    occurrence_notice,
    structured_body,
)
from chainproof.errors import InvalidArgument

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(t: EventType = EventType.OCCURRENCE_CREATED) -> ChangeEvent:
    name = "projects/p/occurrences/0190-aaaa"
    return ChangeEvent(
        "0190aaaa-0000-7000-8000-000000000001",
        "p",
        t,
        name,
        T0,
        occurrence_notice(name, "VULNERABILITY", T0),
        sequence=7,
    )


def test_structured_body_is_a_cloudevent_the_sdk_reads_back() -> None:
    body = structured_body(_event(), "//chainproof.example/eu")
    back = from_structured(
        HTTPMessage({"content-type": "application/cloudevents+json"}, body), JSONFormat()
    )
    assert back.get_id() == "0190aaaa-0000-7000-8000-000000000001"
    assert back.get_type() == "dev.chainproof.occurrence.created"
    assert back.get_subject() == "projects/p/occurrences/0190-aaaa"
    assert back.get_specversion() == "1.0"
    assert back.get_data() == {
        "name": "projects/p/occurrences/0190-aaaa",
        "kind": "VULNERABILITY",
        "notificationTime": "2026-12-01T12:00:00Z",
    }
    raw = orjson.loads(body)
    assert raw["chainproofproject"] == "p" and raw["chainproofsequence"] == 7


def test_filters_by_kind_and_type() -> None:
    f = SubscriptionFilter.build(["violation"], [])
    assert f.matches(_event(EventType.VIOLATION_OPENED))
    assert not f.matches(_event())
    g = SubscriptionFilter.build([], ["occurrence.created"])
    assert g.matches(_event()) and not g.matches(_event(EventType.OCCURRENCE_DELETED))
    assert SubscriptionFilter().matches(_event())
    with pytest.raises(InvalidArgument, match="unknown event kind"):
        SubscriptionFilter.build(["pods"], [])
    with pytest.raises(InvalidArgument, match="unknown event type"):
        SubscriptionFilter.build([], ["occurrence.exploded"])


def test_signature_verifies_and_refuses_tampering_replay_and_wrong_secret() -> None:
    secret = ws.new_secret()
    body = b'{"id":"1"}'
    headers = ws.signed_headers(secret, "evt-1", T0, body)
    assert headers["webhook-signature"].startswith("v1,")
    assert ws.verify(secret, headers, body, T0 + timedelta(seconds=10))
    assert not ws.verify(secret, headers, body + b" ", T0)
    assert not ws.verify(secret, {**headers, "webhook-id": "evt-2"}, body, T0)
    assert not ws.verify(secret, headers, body, T0 + timedelta(minutes=10))  # replayed late
    assert not ws.verify(ws.new_secret(), headers, body, T0)
    # During rotation several signatures may be sent; one valid one suffices.
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert ws.verify(secret, rotated, body, T0)


def test_secret_format_is_checked() -> None:
    for bad in ("plain", "whsec_!!!", "whsec_AAAA"):
        with pytest.raises(InvalidArgument):
            ws.signature(bad, "id", 0, b"")


def test_retry_backs_off_with_a_cap_then_dead_letters() -> None:
    policy = RetryPolicy(base_s=1, cap_s=60, max_attempts=5)
    assert policy.next_attempt(1, T0, 0.0) == T0 + timedelta(seconds=1)
    assert policy.next_attempt(3, T0, 0.0) == T0 + timedelta(seconds=4)
    assert policy.next_attempt(4, T0, 0.5) == T0 + timedelta(seconds=6)
    assert policy.delay(30, 0.0) == timedelta(seconds=60)
    assert policy.next_attempt(5, T0, 0.0) is None
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(base_s=0)
