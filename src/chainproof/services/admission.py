"""Reviewing a workload at deploy time: the judge's verdict, turned into an admission answer.

Owns what happens around the evaluation: the time budget (a review that cannot finish in time
denies, unless failure mode is open), internal errors (denied the same way, fail closed),
breakglass (admits, always recorded and logged as a warning), dry-run enforcement (admits with
warnings), the decision log entry for every review, and a DEPLOYMENT occurrence for each
admitted image so the scribe knows what runs where. Wire formats (AdmissionReview,
ImageReview) live in api.webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import structlog

from chainproof.config import AdmissionSettings
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.workloads import Workload
from chainproof.errors import AlreadyExists, ChainproofError, InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.services.grafeas import Clock, GrafeasService, utc_now
from chainproof.services.judge import DecisionEntry, DecisionLog, Judge

log = structlog.get_logger("chainproof.admission")

DEPLOYMENT_NOTE_ID = "chainproof-admission"
#: Kubernetes keeps each warning to 256 characters and all of them to 4096.
_WARNING_MAX = 256
_MESSAGE_MAX = 4000


@dataclass(frozen=True, slots=True)
class ReviewResult:
    allowed: bool
    outcome: str  # allowed, denied, dry-run-would-deny, breakglass, error
    message: str
    warnings: tuple[str, ...]
    decision: Decision


def _error_decision(workload: Workload, reason: str, now: datetime) -> Decision:
    images = tuple(
        ImageDecision(
            image=i.image,
            reference=None,
            rule=RuleSelection("error", None, None, None, "the review could not be completed"),
            requirements=(RequirementResult("review", "the review", False, reason),),
            outcome=Outcome.DENIED,
        )
        for i in workload.images
    )
    return Decision(images, Outcome.DENIED, now)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def denial_message(decision: Decision) -> str:
    reasons = list(dict.fromkeys(decision.denial_reasons())) or ["the policy denies it"]
    head = "chainproof denied the workload: "
    text = head + " | ".join(reasons)
    if len(text) > _MESSAGE_MAX:
        shown: list[str] = []
        for r in reasons:
            if len(head) + sum(len(s) + 3 for s in shown) + len(r) > _MESSAGE_MAX - 80:
                break
            shown.append(r)
        rest = len(reasons) - len(shown)
        text = head + " | ".join(shown) + f" | … and {rest} more: see `chainproof decisions list`"
    return _trim(text, _MESSAGE_MAX)


class AdmissionService:
    def __init__(
        self,
        judge: Judge,
        decisions: DecisionLog,
        grafeas: GrafeasService,
        settings: AdmissionSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._judge = judge
        self._decisions = decisions
        self._grafeas = grafeas
        self._settings = settings
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

    async def review(
        self, workload: Workload, *, uid: str = "", operation: str = "CREATE", dry_run: bool = False
    ) -> ReviewResult:
        s = self._settings
        request = AdmissionRequest(
            images=tuple(i.image for i in workload.images),
            cluster=s.cluster or None,
            namespace=workload.namespace,
            service_account=workload.service_account,
        )
        warnings: list[str] = []
        try:
            decision = await asyncio.wait_for(
                self._judge.evaluate(s.project, request), timeout=s.deadline_seconds
            )
        except (TimeoutError, ChainproofError, Exception) as exc:  # fail closed on anything
            if isinstance(exc, TimeoutError):
                reason = (
                    f"chainproof could not decide within {s.deadline_seconds:g}s "
                    "(the store may be slow or unreachable)"
                )
            elif isinstance(exc, ChainproofError):
                reason = f"chainproof could not decide: {exc.message}"
            else:
                reason = "chainproof could not decide: internal error (see the server log)"
                log.exception("review failed", uid=uid)
            decision = _error_decision(workload, reason, self._clock())
            allowed = s.failure_mode == "open"
            if allowed:
                warnings.append(_trim(f"admitted because failure mode is open: {reason}", 256))
            result = ReviewResult(allowed, "error", reason, tuple(warnings), decision)
            await self._record(workload, uid, operation, result)
            return result

        if decision.outcome is Outcome.DENIED and workload.breakglass:
            if s.breakglass_enabled:
                log.warning(
                    "breakglass admission",
                    uid=uid,
                    namespace=workload.namespace,
                    workload=f"{workload.kind}/{workload.name}",
                    reasons=list(decision.denial_reasons()),
                )
                warnings.append(
                    "breakglass: admitted although the policy denies it; this is recorded"
                )
                warnings += [_trim(r, _WARNING_MAX) for r in decision.denial_reasons()][:10]
                result = ReviewResult(True, "breakglass", "", tuple(warnings), decision)
                await self._after(workload, uid, operation, result, dry_run)
                return result
            warnings.append("breakglass annotations are ignored: breakglass is disabled")

        if decision.outcome is Outcome.DRY_RUN_WOULD_DENY:
            warnings.append("dry run: the policy would deny this workload")
            warnings += [_trim(r, _WARNING_MAX) for r in decision.denial_reasons()][:10]
        allowed = decision.allowed
        message = "" if allowed else denial_message(decision)
        result = ReviewResult(allowed, decision.outcome.value, message, tuple(warnings), decision)
        await self._after(workload, uid, operation, result, dry_run)
        return result

    async def _after(
        self, workload: Workload, uid: str, operation: str, result: ReviewResult, dry_run: bool
    ) -> None:
        await self._record(workload, uid, operation, result)
        if result.allowed and not dry_run:
            task = asyncio.get_running_loop().create_task(
                self._record_deployments(workload, result.decision)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _record(
        self, workload: Workload, uid: str, operation: str, result: ReviewResult
    ) -> None:
        try:
            await self._decisions.record(
                DecisionEntry(
                    project=self._settings.project,
                    decision=result.decision,
                    request_uid=uid,
                    cluster=self._settings.cluster,
                    namespace=workload.namespace,
                    workload=f"{workload.kind}/{workload.name}",
                    operation=operation,
                    outcome=result.outcome,
                    message=result.message,
                    breakglass=result.outcome == "breakglass",
                )
            )
        except Exception:  # the answer still goes out; the failure is loud in the log
            log.exception("could not record decision", uid=uid)

    async def _record_deployments(self, workload: Workload, decision: Decision) -> None:
        project = self._settings.project
        refs = []
        for image in decision.images:
            with contextlib.suppress(InvalidArgument):
                ref = parse_image_reference(image.reference or image.image)
                if ref.digest:
                    refs.append(ref.canonical)
        if not refs:
            return
        now = self._clock()
        note_name = f"projects/{project}/notes/{DEPLOYMENT_NOTE_ID}"
        try:
            with contextlib.suppress(AlreadyExists):
                await self._grafeas.create_note(
                    f"projects/{project}",
                    DEPLOYMENT_NOTE_ID,
                    note_from_json(
                        {
                            "shortDescription": "Deployments admitted by chainproof",
                            "deployment": {"resourceUri": ["k8s://admission"]},
                        }
                    ),
                )
            address = self._settings.cluster or "kubernetes"
            await self._grafeas.batch_create_occurrences(
                f"projects/{project}",
                [
                    occurrence_from_json(
                        {
                            "resourceUri": ref,
                            "noteName": note_name,
                            "deployment": {
                                "deployTime": now.isoformat().replace("+00:00", "Z"),
                                "config": f"{workload.kind}/{workload.namespace}/{workload.name}",
                                "address": address,
                                "resourceUri": [ref],
                                "platform": "CUSTOM",
                            },
                        }
                    )
                    for ref in dict.fromkeys(refs)
                ],
            )
        except Exception:
            log.exception("could not record deployment occurrences", images=refs)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
