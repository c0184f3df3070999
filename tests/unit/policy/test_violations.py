"""Violations open on a denying verdict, update while still denied, close when it admits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chainproof.policy.decision import (
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.policy.violations import ViolationChange, pod_verdict, transition

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMG = "registry.example/web@sha256:" + "a" * 64


def _decision(passed: bool, outcome: Outcome, reason: str = "CVE-2026-1 is CRITICAL") -> Decision:
    rule = RuleSelection(
        "default", None, "REQUIRE_ATTESTATION", "ENFORCED_BLOCK_AND_AUDIT_LOG", "default rule"
    )
    req = RequirementResult(
        "vulnerabilities", "no CRITICAL findings", passed, reason if not passed else "none"
    )
    image = ImageDecision(IMG, IMG, rule, (req,), outcome)
    return Decision((image,), Decision.combine((image,)), T0, "policy", "etag-1")


def _verdict(decision: Decision):  # type: ignore[no-untyped-def]
    return pod_verdict("prod", "shop", "web-1", ("Deployment", "web"), {IMG: "app"}, decision)


def test_open_update_close() -> None:
    denied = _verdict(_decision(False, Outcome.DENIED))
    assert denied.violates and "CVE-2026-1" in denied.explanation
    assert denied.images[0].checks[0].verdict == "NON_CONFORMANT"
    opened = transition(None, denied, project="p", cause="occurrence x", now=T0, new_id="v1").opened
    assert opened is not None and opened.is_open and opened.images[0].container == "app"
    body = opened.to_dict()
    assert body["podEvent"]["verdict"] == "VIOLATES_POLICY" and body["state"] == "OPEN"
    # Same verdict again: nothing to write.
    assert (
        transition(opened, denied, project="p", cause="sweep", now=T0, new_id="v2")
        == ViolationChange()
    )
    # Denied for another reason: same violation, new explanation, same open time.
    other = _verdict(_decision(False, Outcome.DENIED, reason="scan older than 24h"))
    updated = transition(opened, other, project="p", cause="sweep", now=T0, new_id="v3").updated
    assert updated is not None and updated.opened == T0 and "24h" in updated.explanation
    # Admitted now (a VEX statement): closes with the cause.
    later = T0 + timedelta(minutes=3)
    ok = _verdict(_decision(True, Outcome.ALLOWED))
    closed = transition(updated, ok, project="p", cause="vex x", now=later, new_id="v4").closed
    assert closed is not None and closed.closed == later and closed.close_reason == "vex x"
    assert transition(None, ok, project="p", cause="c", now=later, new_id="v5").opened is None


def test_dry_run_denial_is_not_a_violation() -> None:
    dry = _verdict(_decision(False, Outcome.DRY_RUN_WOULD_DENY))
    assert not dry.violates
