"""The judge's answer: per image, which rule applied, what was required, and why it failed.

A :class:`Decision` is data. It says, for each image of a request, the rule that was selected
and why, every requirement with pass or fail, the occurrences and key IDs consulted, and for
each failure one sentence a person can act on. :meth:`Decision.explain` renders that as text
for the CLI and for admission responses; :meth:`Decision.to_dict` gives JSON for the REST API
and the audit log. Recording and breakglass live in the admission service
(:mod:`chainproof.services.judge.admission`), the webhook's response format in
:mod:`chainproof.api.webhook`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    # The rule failed but is in DRYRUN_AUDIT_LOG_ONLY: the image is admitted and the would-be
    # denial is reported for the audit log.
    DRY_RUN_WOULD_DENY = "dry-run-would-deny"

    @property
    def admits(self) -> bool:
        return self is not Outcome.DENIED


@dataclass(frozen=True, slots=True)
class RuleSelection:
    """Which rule judged an image. ``scope`` is one of ``allowlist``, ``system-policy``,
    ``service-account``, ``namespace``, ``cluster``, ``default``, ``kritis``, ``invalid-image``."""

    scope: str
    key: str | None
    evaluation_mode: str | None
    enforcement_mode: str | None
    why: str
    #: The attestors whose signed evidence the rule's checks accepted (besides unsigned
    #: Grafeas facts): those the rule names, and no other.
    evidence_from: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "key": self.key,
            "evaluationMode": self.evaluation_mode,
            "enforcementMode": self.enforcement_mode,
            "why": self.why,
            "evidenceFrom": list(self.evidence_from),
        }


@dataclass(frozen=True, slots=True)
class RequirementResult:
    """One thing the rule required, and whether the evidence met it.

    ``kind`` is a stable machine name (``attestation``, ``vulnerabilities``,
    ``predicate``, ``freshness``, ``trusted-builder``, ``trusted-source``,
    ``trusted-repository``, ``cel``, ``digest``, ``evaluation-mode``, ``kritis-…``);
    ``name`` says which one for people; ``reason`` is the actionable sentence on failure and a
    short summary on success.
    """

    kind: str
    name: str
    passed: bool
    reason: str
    occurrences: tuple[str, ...] = ()
    key_ids: tuple[str, ...] = ()
    #: When a result that passed stops holding with the same evidence (a scan ageing past
    #: its freshness limit); None: it holds until the evidence changes. The re-judging
    #: worker schedules the next judgement by it.
    valid_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "occurrences": list(self.occurrences),
            "keyIds": list(self.key_ids),
        }


@dataclass(frozen=True, slots=True)
class ImageDecision:
    image: str  # as written in the workload
    reference: str | None  # canonical reference, or None when the text did not parse
    rule: RuleSelection
    requirements: tuple[RequirementResult, ...]
    outcome: Outcome

    @property
    def failures(self) -> tuple[RequirementResult, ...]:
        return tuple(r for r in self.requirements if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "reference": self.reference,
            "outcome": self.outcome.value,
            "rule": self.rule.to_dict(),
            "requirements": [r.to_dict() for r in self.requirements],
        }


@dataclass(frozen=True, slots=True)
class Decision:
    images: tuple[ImageDecision, ...]
    outcome: Outcome
    evaluated_at: datetime
    policy: str = ""  # the policy's name, or a summary of the Kritis resources consulted
    policy_etag: str = ""

    @classmethod
    def deny_all(
        cls,
        images: Sequence[str],
        rule: RuleSelection,
        requirement: RequirementResult,
        now: datetime,
        policy: str = "",
    ) -> Decision:
        """Every image denied for one reason that is not about the image (no policy, a
        review that failed): the same ``rule`` and failed ``requirement`` for each."""
        decided = tuple(
            ImageDecision(
                image=text,
                reference=canonical_or_none(text),
                rule=rule,
                requirements=(requirement,),
                outcome=Outcome.DENIED,
            )
            for text in images
        )
        return cls(decided, Outcome.DENIED, now, policy, "")

    @property
    def allowed(self) -> bool:
        """Whether the workload may run (a dry-run denial still admits)."""
        return self.outcome.admits

    @staticmethod
    def combine(images: tuple[ImageDecision, ...]) -> Outcome:
        # The workload is as strong as its weakest image.
        if any(i.outcome is Outcome.DENIED for i in images):
            return Outcome.DENIED
        if any(i.outcome is Outcome.DRY_RUN_WOULD_DENY for i in images):
            return Outcome.DRY_RUN_WOULD_DENY
        return Outcome.ALLOWED

    def explain(self) -> str:
        """The decision as text a person reads: a verdict, then one block per image."""
        verdicts = {
            Outcome.ALLOWED: "ALLOWED",
            Outcome.DENIED: "DENIED",
            Outcome.DRY_RUN_WOULD_DENY: "ALLOWED (dry run: the policy would deny)",
        }
        head = verdicts[self.outcome]
        if self.policy:
            head += f" by {self.policy}"
        lines = [head]
        for image in self.images:
            lines.append(f"- {image.reference or image.image}: {image.outcome.value}")
            lines.append(f"  rule: {image.rule.why}")
            if image.rule.evidence_from:
                lines.append(
                    "  evidence counted from: "
                    + ", ".join(image.rule.evidence_from)
                    + " (and unsigned Grafeas facts)"
                )
            for req in image.requirements:
                mark = "ok  " if req.passed else "FAIL"
                lines.append(f"  [{mark}] {req.name}: {req.reason}")
        return "\n".join(lines)

    def denial_reasons(self) -> tuple[str, ...]:
        """One sentence per failed requirement, for a short admission message."""
        return tuple(
            f.reason
            for image in self.images
            if image.outcome is not Outcome.ALLOWED
            for f in image.failures
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "allowed": self.allowed,
            "evaluatedAt": self.evaluated_at.isoformat(),
            "policy": self.policy,
            "policyEtag": self.policy_etag,
            "images": [i.to_dict() for i in self.images],
        }


def canonical_or_none(text: str) -> str | None:
    """The canonical reference of an image, when it parses (for the decision log's index)."""
    try:
        return parse_image_reference(text).canonical
    except InvalidArgument:
        return None
