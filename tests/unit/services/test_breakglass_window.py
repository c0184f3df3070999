"""Time-boxed breakglass at admission: a justification and an expiry are recorded, an
expired or unreadable expiry no longer admits, an expiry past the operator's maximum is cut
back (a forged far-future annotation buys no more than the maximum), and each use becomes a
``breakglass.used`` outbox event beside ``decision.made``; at runtime the window is counted
from the pod's creation, so editing the annotations of a running pod cannot stretch it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from chainproof.domain.breakglass import EXPIRES_ANNOTATION, JUSTIFICATION_ANNOTATION
from chainproof.domain.events import EventType
from chainproof.domain.inventory import WorkloadRef, observe_pod
from chainproof.domain.timestamps import rfc3339
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.services.judge.decision_log import decision_record
from chainproof.services.outbox import decision_events
from unit.services.test_admission import BAD, NOW, System

GLASS = {"kritis.grafeas.io/breakglass": "true"}


def glass(**annotations: str) -> Workload:
    return Workload(
        kind="Pod",
        name="hotfix",
        namespace="prod",
        service_account="default",
        images=(ContainerImage("containers[0] (app)", BAD),),
        annotations={**GLASS, **annotations},
    )


async def test_breakglass_records_justification_and_expiry() -> None:
    sys = System()
    until = NOW + timedelta(hours=2)
    result = await sys.service.review(
        glass(**{JUSTIFICATION_ANNOTATION: "INC-42 outage", EXPIRES_ANNOTATION: rfc3339(until)})
    )
    assert (result.allowed, result.outcome) == (True, "breakglass")
    assert rfc3339(until) in result.warnings[0]
    [entry] = sys.log.entries
    assert (entry.breakglass_justification, entry.breakglass_expires) == (
        "INC-42 outage",
        rfc3339(until),
    )


async def test_an_expired_breakglass_no_longer_admits() -> None:
    sys = System()
    result = await sys.service.review(glass(**{EXPIRES_ANNOTATION: rfc3339(NOW)}))
    assert not result.allowed and result.outcome == "denied"
    assert "breakglass expired" in result.message
    assert sys.log.entries[0].breakglass is False


async def test_an_unreadable_expiry_fails_closed() -> None:
    sys = System()
    result = await sys.service.review(glass(**{EXPIRES_ANNOTATION: "tomorrow"}))
    assert not result.allowed
    assert "not an RFC 3339 time" in result.message


async def test_a_forged_far_expiry_is_cut_back_to_the_maximum() -> None:
    sys = System(breakglass_max_hours=4)
    forged = NOW + timedelta(days=3650)
    result = await sys.service.review(glass(**{EXPIRES_ANNOTATION: rfc3339(forged)}))
    assert result.allowed
    assert sys.log.entries[0].breakglass_expires == rfc3339(NOW + timedelta(hours=4))
    assert any("later than this server allows" in w for w in result.warnings)


async def test_a_justification_can_be_required() -> None:
    sys = System(breakglass_require_justification=True)
    result = await sys.service.review(glass())
    assert not result.allowed
    assert JUSTIFICATION_ANNOTATION in result.message


async def test_every_breakglass_use_is_an_outbox_event() -> None:
    sys = System()
    await sys.service.review(glass(**{JUSTIFICATION_ANNOTATION: "INC-42"}))
    [entry] = sys.log.entries
    events = decision_events([decision_record(entry, NOW)])
    assert [e.type for e in events] == [EventType.DECISION_MADE, EventType.BREAKGLASS_USED]
    used = events[1].data
    assert used["justification"] == "INC-42"
    assert used["expires"] == rfc3339(NOW + timedelta(hours=24))
    # A dry run creates nothing, so no breakglass was used.
    dry = replace(entry, dry_run=True)
    assert [e.type for e in decision_events([decision_record(dry, NOW)])] == [
        EventType.DECISION_MADE
    ]


def pod(annotations: dict[str, str], created: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "hotfix",
            "namespace": "prod",
            "uid": "u1",
            "creationTimestamp": rfc3339(created),
            "annotations": annotations,
        },
        "spec": {"containers": [{"name": "app", "image": BAD}]},
        "status": {"phase": "Running"},
    }


def test_running_pods_window_counts_from_creation_and_cannot_be_stretched() -> None:
    created = NOW - timedelta(hours=3)
    later = NOW + timedelta(days=30)
    [row] = observe_pod(
        "prod-eu",
        pod({**GLASS, EXPIRES_ANNOTATION: rfc3339(later)}, created),
        WorkloadRef("Pod", "hotfix"),
        NOW,
        breakglass_max=timedelta(hours=4),
    )
    assert row.breakglass_until == created + timedelta(hours=4)
    [plain] = observe_pod("prod-eu", pod({}, created), WorkloadRef("Pod", "hotfix"), NOW)
    assert plain.breakglass_until is None
    # A creation time in the future (never from a real API server) starts the window now.
    [future] = observe_pod(
        "prod-eu",
        pod(GLASS, NOW + timedelta(days=1)),
        WorkloadRef("Pod", "hotfix"),
        NOW,
        breakglass_max=timedelta(hours=1),
    )
    assert future.breakglass_until == NOW + timedelta(hours=1)
