"""Continuous-validation violations: a running pod that the policy would now deny.

Owns the model of a violation and its life (open → closed), shaped after Binary
Authorization's continuous-validation ``pod_event``: the pod and its namespace, when it was
deployed, the verdict, and per image the result, a description and every check's verdict
with its explanation. ``pod_verdict`` turns a judge Decision about a pod's running images
into that shape; ``transition`` says whether a violation opens, stays, or closes. Pure:
times and IDs are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chainproof.policy.decision import Decision, Outcome

VIOLATES_POLICY = "VIOLATES_POLICY"
CONFORMANT = "CONFORMANT"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    kind: str
    verdict: str  # CONFORMANT or NON_CONFORMANT
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkName": self.check,
            "checkType": self.kind,
            "verdict": self.verdict,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class ImageResult:
    image: str
    container: str
    result: str  # ALLOW or DENY
    description: str
    checks: tuple[CheckResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "container": self.container,
            "result": self.result,
            "description": self.description,
            "checkResults": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class PodVerdict:
    """The judge's view of one running pod now."""

    cluster: str
    namespace: str
    pod: str
    workload_kind: str
    workload_name: str
    verdict: str
    images: tuple[ImageResult, ...]
    policy_etag: str = ""

    @property
    def violates(self) -> bool:
        return self.verdict == VIOLATES_POLICY

    @property
    def explanation(self) -> str:
        denied = [i for i in self.images if i.result == "DENY"]
        if not denied:
            return "every running image conforms to the policy"
        return "; ".join(f"{i.image}: {i.description}" for i in denied)


def pod_verdict(
    cluster: str,
    namespace: str,
    pod: str,
    workload: tuple[str, str],
    containers: dict[str, str],
    decision: Decision,
) -> PodVerdict:
    """``containers`` maps each judged canonical image to its container names (joined),
    in the order the decision judged them. A dry-run denial is not a violation: the policy
    says to only log it, and the decision's own record does."""
    images: list[ImageResult] = []
    for image in decision.images:
        ref = image.reference or image.image
        denied = image.outcome is Outcome.DENIED
        checks = tuple(
            CheckResult(
                check=req.name,
                kind=req.kind,
                verdict=CONFORMANT if req.passed else "NON_CONFORMANT",
                explanation=req.reason,
            )
            for req in image.requirements
        )
        failures = [c.explanation for c in checks if c.verdict != CONFORMANT]
        description = "; ".join(failures) if failures else image.rule.why
        images.append(
            ImageResult(
                ref, containers.get(ref, ""), "DENY" if denied else "ALLOW", description, checks
            )
        )
    verdict = VIOLATES_POLICY if any(i.result == "DENY" for i in images) else CONFORMANT
    return PodVerdict(
        cluster,
        namespace,
        pod,
        workload[0],
        workload[1],
        verdict,
        tuple(images),
        decision.policy_etag,
    )


@dataclass(frozen=True, slots=True)
class ViolationAction:
    """Something chainproof did about a violation: ``event`` (a Kubernetes Event on the
    pod), ``annotate``, ``evict``; ``result`` is ``done``, or ``failed: …`` / ``refused: …``
    (an eviction a PodDisruptionBudget forbade) saying what the API server answered, with
    ``, retrying in Ns`` when another attempt follows. ``attempt`` counts from 1."""

    action: str
    time: datetime
    result: str
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "time": self.time.isoformat(),
            "result": self.result,
            "attempt": self.attempt,
        }


@dataclass(frozen=True, slots=True)
class Violation:
    violation_id: str
    project: str
    cluster: str
    namespace: str
    pod: str
    workload_kind: str
    workload_name: str
    images: tuple[ImageResult, ...]
    explanation: str
    #: What made chainproof re-judge (``occurrence …``, ``policy changed``, ``sweep``, …).
    cause: str
    opened: datetime
    closed: datetime | None = None
    close_reason: str = ""
    actions: tuple[ViolationAction, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.closed is None

    @property
    def name(self) -> str:
        return f"projects/{self.project}/violations/{self.violation_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.violation_id,
            "project": self.project,
            "cluster": self.cluster,
            "state": "OPEN" if self.is_open else "CLOSED",
            "cause": self.cause,
            "openTime": self.opened.isoformat(),
            "closeTime": self.closed.isoformat() if self.closed else None,
            "closeReason": self.close_reason,
            "actions": [a.to_dict() for a in self.actions],
            "podEvent": {
                "podNamespace": self.namespace,
                "pod": self.pod,
                "workload": {"kind": self.workload_kind, "name": self.workload_name},
                "verdict": VIOLATES_POLICY,
                "explanation": self.explanation,
                "images": [i.to_dict() for i in self.images],
            },
        }


@dataclass(frozen=True, slots=True)
class ViolationChange:
    """``opened`` / ``closed`` / ``updated`` carry the row to write; all None: nothing to do."""

    opened: Violation | None = None
    updated: Violation | None = None
    closed: Violation | None = None


def transition(
    current: Violation | None,
    verdict: PodVerdict,
    *,
    project: str,
    cause: str,
    now: datetime,
    new_id: str,
) -> ViolationChange:
    """What a fresh verdict does to a pod's open violation (None when it has none)."""
    if verdict.violates:
        if current is None:
            return ViolationChange(
                opened=Violation(
                    new_id,
                    project,
                    verdict.cluster,
                    verdict.namespace,
                    verdict.pod,
                    verdict.workload_kind,
                    verdict.workload_name,
                    verdict.images,
                    verdict.explanation,
                    cause,
                    now,
                )
            )
        if current.images != verdict.images:
            # Still violating, for other reasons now: keep the open time, say why today.
            return ViolationChange(
                updated=replace(current, images=verdict.images, explanation=verdict.explanation)
            )
        return ViolationChange()
    if current is not None:
        return ViolationChange(closed=replace(current, closed=now, close_reason=cause))
    return ViolationChange()


#: The close reason of a violation whose pod no longer runs.
GONE_REASON = "the pod no longer runs"


def close_for_gone_pod(current: Violation, now: datetime) -> Violation:
    return replace(current, closed=now, close_reason=GONE_REASON)
