"""Reviewing a workload at deploy time: the judge's verdict, turned into an admission answer.

Owns what happens around the evaluation:

* the time budget: a review that cannot finish within its deadline is an error;
* errors (storage down, a bug, the deadline): denied with a message that says so (fail
  closed), or admitted with a warning when failure mode is ``open`` — except at the deadline,
  which always denies (slowness can be caused on purpose); an answer that arrives after the
  deadline is not used; breakglass overrides a policy, never a judge that could not decide;
* breakglass: admits a workload the policy denies, logged as a warning and recorded with the
  outcome ``breakglass`` (and a ``breakglass.used`` outbox event), for a time-boxed window
  (domain.breakglass: a justification, an expiry cut back to ``breakglass_max_hours``); an
  expired or unreadable window, or breakglass disabled, denies and says why;
* dry-run enforcement (``DRYRUN_AUDIT_LOG_ONLY``): admitted with warnings that say why the
  policy would deny;
* the decision log entry for every review, whatever the outcome;
* a DEPLOYMENT occurrence for each admitted image (never for a denial, never when the API
  server only asked for a dry run), so the scribe knows what runs where;
* an admitted Pod (same conditions) handed to the workload inventory (``admitted_pods``),
  which knows it from then on, before any watcher sees it.

Wire formats (AdmissionReview, ImageReview) and their size limits live in api.webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from chainproof.config import AdmissionSettings
from chainproof.domain.breakglass import BreakglassWindow, read_window
from chainproof.domain.image_patch import RESOLVED_ANNOTATION
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.timestamps import rfc3339
from chainproof.domain.workloads import Workload
from chainproof.errors import AlreadyExists, ChainproofError, InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.services.common import Clock, utc_now
from chainproof.services.judge.decision_log import DecisionEntry, DecisionLog
from chainproof.services.judge.judging import Judge
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.sources.registry.auth import REVIEW_PULL_SECRETS, PullSecretScope
from chainproof.sources.registry.client import REVIEW_DEADLINE, Deadline
from chainproof.sources.registry.errors import RegistryError

log = structlog.get_logger("chainproof.admission")

DEPLOYMENT_NOTE_ID = "chainproof-admission"
#: Reasons repeated as warnings, at most (the first ones; the decision log has them all).
_MAX_REASON_WARNINGS = 10
#: The same image admitted for the same workload again (every pod of a ReplicaSet) is
#: recorded once per this many seconds, not once per pod.
_DEPLOYMENT_DEDUP_SECONDS = 600.0
_DEPLOYMENT_DEDUP_ENTRIES = 10_000

BREAKGLASS_DISABLED_NOTE = (
    "a breakglass annotation was given but breakglass is disabled on this server "
    "(admission.breakglass_enabled=false), so the policy applies"
)


class Verdict:
    """The outcomes a review records (the decision log's ``outcome`` values)."""

    ALLOWED = Outcome.ALLOWED.value
    DENIED = Outcome.DENIED.value
    DRY_RUN_WOULD_DENY = Outcome.DRY_RUN_WOULD_DENY.value
    BREAKGLASS = "breakglass"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """The answer to one review; ``message`` is empty when admitted."""

    allowed: bool
    outcome: str  # one of Verdict
    message: str
    warnings: tuple[str, ...]
    decision: Decision


def error_decision(workload: Workload, reason: str, now: datetime) -> Decision:
    """A denial of every image because the review itself failed."""
    return Decision.deny_all(
        [i.image for i in workload.images],
        RuleSelection("error", None, None, None, "the review could not be completed"),
        RequirementResult("review", "the review", False, reason),
        now,
    )


def _locations(workload: Workload, decision: Decision) -> list[str]:
    """For each judged image, where it sits in the workload (``containers[1] (sidecar)``)."""
    if len(decision.images) == len(workload.images):
        return [c.location for c in workload.images]
    by_image: dict[str, list[str]] = {}
    for c in workload.images:
        by_image.setdefault(c.image, []).append(c.location)
    return [", ".join(by_image.get(i.image, [])) or i.image for i in decision.images]


def denial_reasons(workload: Workload, decision: Decision) -> list[str]:
    """One line per failed requirement, prefixed with the container(s) it concerns."""
    lines: list[str] = []
    for where, image in zip(_locations(workload, decision), decision.images, strict=True):
        if image.outcome is Outcome.ALLOWED:
            continue
        for failure in image.failures:
            lines.append(f"{where}: {failure.reason}")
    return list(dict.fromkeys(lines))


def denial_message(workload: Workload, decision: Decision, note: str = "") -> str:
    """What ``kubectl`` shows after 'admission webhook … denied the request:'."""
    reasons = denial_reasons(workload, decision) or ["the policy denies it"]
    what = f"{workload.kind} {workload.namespace}/{workload.name or '(generated name)'}"
    text = f"chainproof denied {what}: " + " | ".join(reasons)
    if note:
        text += f" ({note})"
    return text


def _tag_resolutions(workload: Workload) -> dict[str, str]:
    """What the mutating webhook resolved (its annotation), for the decision record.

    Informational only: the digest in the pod spec is what was judged, whoever wrote it."""
    raw = workload.annotations.get(RESOLVED_ANNOTATION)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k)[:200]: str(v)[:600] for k, v in list(parsed.items())[:64]}


class AdmissionService:
    def __init__(
        self,
        judge: Judge,
        decisions: DecisionLog,
        grafeas: GrafeasService,
        settings: AdmissionSettings,
        clock: Clock = utc_now,
        *,
        admitted_pods: Callable[[Mapping[str, Any]], Awaitable[object]] | None = None,
    ) -> None:
        self._judge = judge
        self._decisions = decisions
        self._grafeas = grafeas
        self._settings = settings
        self._clock = clock
        self._admitted_pods = admitted_pods
        self._background: set[asyncio.Task[None]] = set()
        self._deployment_note_ready = False
        self._recent_deployments: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    @property
    def settings(self) -> AdmissionSettings:
        return self._settings

    async def review(
        self,
        workload: Workload,
        *,
        uid: str = "",
        operation: str = "CREATE",
        dry_run: bool = False,
        deadline_seconds: float | None = None,
        pod: Mapping[str, Any] | None = None,
    ) -> ReviewResult:
        """Judge ``workload``; never raises for a store or policy problem (see module doc).

        ``deadline_seconds`` may shorten (never lengthen) the configured deadline, e.g. to
        stay within the API server's own timeout. ``pod`` is the Pod object of a CREATE
        request, for the inventory once admitted.
        """
        s = self._settings
        budget = s.deadline_seconds
        if deadline_seconds is not None:
            budget = max(0.05, min(budget, deadline_seconds))
        request = AdmissionRequest(
            images=tuple(i.image for i in workload.images),
            cluster=s.cluster or None,
            namespace=workload.namespace,
            service_account=workload.service_account,
        )
        started = time.monotonic()
        # Registry reads deep in evidence gathering stop with the review (the task made by
        # wait_for copies this context), and carry this pod's pull secrets.
        token = REVIEW_DEADLINE.set(Deadline(budget))
        secrets = REVIEW_PULL_SECRETS.set(
            PullSecretScope(
                workload.namespace, workload.service_account, workload.image_pull_secrets
            )
        )
        try:
            decision = await asyncio.wait_for(
                self._judge.evaluate(s.project, request), timeout=budget
            )
            if time.monotonic() - started > budget:
                # Finished, but late (the loop was busy when the timer was due): the deadline
                # still wins, or slowness could be traded for an answer after it.
                raise TimeoutError
        except Exception as exc:  # fail closed on anything, including a bug
            result = self._failed(workload, uid, exc, budget)
            await self._record(workload, uid, operation, result, dry_run)
            return result
        finally:
            REVIEW_DEADLINE.reset(token)
            REVIEW_PULL_SECRETS.reset(secrets)

        warnings: list[str] = []
        note = ""
        if decision.outcome is Outcome.DENIED and workload.breakglass:
            now = self._clock()
            window = read_window(
                workload.annotations,
                start=now,
                now=now,
                maximum=timedelta(hours=s.breakglass_max_hours),
                require_justification=s.breakglass_require_justification,
            )
            if s.breakglass_enabled and window.usable:
                reasons = denial_reasons(workload, decision)
                log.warning(
                    "breakglass admission",
                    uid=uid,
                    namespace=workload.namespace,
                    workload=f"{workload.kind}/{workload.name}",
                    reasons=reasons,
                    justification=window.justification,
                    expires=rfc3339(window.expires),
                )
                warnings.append(
                    "breakglass: admitted although the policy denies it, until "
                    f"{rfc3339(window.expires)}; the decision is recorded for audit"
                )
                if window.clamped_from is not None:
                    warnings.append(
                        f"breakglass: the expiry asked for ({rfc3339(window.clamped_from)}) is "
                        f"later than this server allows ({s.breakglass_max_hours:g} h), so it "
                        f"ends at {rfc3339(window.expires)}"
                    )
                warnings += reasons[:_MAX_REASON_WARNINGS]
                result = ReviewResult(True, Verdict.BREAKGLASS, "", tuple(warnings), decision)
                await self._after(workload, uid, operation, result, dry_run, pod, window)
                return result
            note = BREAKGLASS_DISABLED_NOTE if not s.breakglass_enabled else window.problem
            warnings.append(note)

        if decision.outcome is Outcome.DRY_RUN_WOULD_DENY:
            warnings.append("dry run: the policy would deny this workload; it is admitted")
            warnings += denial_reasons(workload, decision)[:_MAX_REASON_WARNINGS]
        allowed = decision.allowed
        message = "" if allowed else denial_message(workload, decision, note)
        result = ReviewResult(allowed, decision.outcome.value, message, tuple(warnings), decision)
        await self._after(workload, uid, operation, result, dry_run, pod)
        return result

    async def refuse_unreadable(
        self,
        kind: str,
        obj: Mapping[str, Any],
        namespace: str,
        problem: str,
        *,
        uid: str = "",
        operation: str = "CREATE",
        dry_run: bool = False,
    ) -> ReviewResult:
        """Deny (and record) a workload whose images cannot be read: nothing to judge."""
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        workload = Workload(
            kind=kind,
            name=str(meta.get("name") or meta.get("generateName") or ""),
            namespace=str(meta.get("namespace") or namespace or "default"),
            service_account="",
            images=(),
        )
        message = (
            f"chainproof cannot read the images of {kind} {workload.namespace}/"
            f"{workload.name or '(generated name)'}: {problem}"
        )
        decision = Decision((), Outcome.DENIED, self._clock())
        result = ReviewResult(False, Verdict.ERROR, message, (), decision)
        await self._record(workload, uid, operation, result, dry_run)
        return result

    def _failed(self, workload: Workload, uid: str, exc: Exception, budget: float) -> ReviewResult:
        if isinstance(exc, TimeoutError):
            reason = (
                f"chainproof could not decide within its deadline of {budget:g}s (the store "
                "may be slow or unreachable)"
            )
            log.error("review deadline exceeded", uid=uid, deadline=budget)
        elif isinstance(exc, ChainproofError):
            reason = f"chainproof could not decide: {exc.message}"
            log.error("review failed", uid=uid, error=exc.message)
        else:
            reason = (
                "chainproof could not decide: internal error "
                f"({type(exc).__name__}; see the server log)"
            )
            log.error("review failed", uid=uid, exc_info=exc)
        decision = error_decision(workload, reason, self._clock())
        # Failure mode open never applies to the deadline (a review can be made slow on
        # purpose, and that must not buy an admission) nor to a misbehaving registry
        # (evidence that could not be read, not an outage of chainproof).
        if self._settings.failure_mode == "open" and not isinstance(
            exc, TimeoutError | RegistryError
        ):
            warning = f"admitted without judgement because failure mode is open: {reason}"
            return ReviewResult(True, Verdict.ERROR, "", (warning,), decision)
        message = f"{reason}; failure mode is closed, so the workload is denied"
        return ReviewResult(False, Verdict.ERROR, message, (), decision)

    async def _after(
        self,
        workload: Workload,
        uid: str,
        operation: str,
        result: ReviewResult,
        dry_run: bool,
        pod: Mapping[str, Any] | None = None,
        breakglass: BreakglassWindow | None = None,
    ) -> None:
        await self._record(workload, uid, operation, result, dry_run, breakglass)
        if result.allowed and not dry_run:
            self._in_background(self._record_deployments(workload, result.decision))
            if pod is not None and self._admitted_pods is not None:
                self._in_background(self._record_pod(pod, uid))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        # Off the review's path: the answer never waits for these writes.
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_pod(self, pod: Mapping[str, Any], uid: str) -> None:
        assert self._admitted_pods is not None
        try:
            await self._admitted_pods(pod)
        except Exception:  # a watcher will still see the pod; the miss is only earlier news
            log.warning("could not add the admitted pod to the inventory", uid=uid, exc_info=True)

    async def _record(
        self,
        workload: Workload,
        uid: str,
        operation: str,
        result: ReviewResult,
        dry_run: bool,
        breakglass: BreakglassWindow | None = None,
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
                    service_account=workload.service_account,
                    operation=operation,
                    outcome=result.outcome,
                    message=result.message,
                    breakglass=result.outcome == Verdict.BREAKGLASS,
                    breakglass_justification=breakglass.justification if breakglass else "",
                    breakglass_expires=rfc3339(breakglass.expires) if breakglass else "",
                    dry_run=dry_run,
                    tag_resolutions=_tag_resolutions(workload),
                )
            )
        except Exception:  # the answer still goes out; the failure is loud in the log
            log.exception("could not record decision", uid=uid)

    def _new_deployments(self, workload: Workload, refs: Sequence[str]) -> list[str]:
        """The references not recorded for this workload in the last few minutes."""
        now = time.monotonic()
        config = f"{workload.kind}/{workload.namespace}/{workload.name}"
        fresh: list[str] = []
        for ref in dict.fromkeys(refs):
            key = (ref, config, self._settings.cluster)
            seen = self._recent_deployments.get(key)
            if seen is not None and now - seen < _DEPLOYMENT_DEDUP_SECONDS:
                continue
            self._recent_deployments[key] = now
            self._recent_deployments.move_to_end(key)
            fresh.append(ref)
        while len(self._recent_deployments) > _DEPLOYMENT_DEDUP_ENTRIES:
            self._recent_deployments.popitem(last=False)
        return fresh

    def _forget_deployments(self, workload: Workload, refs: Sequence[str]) -> None:
        config = f"{workload.kind}/{workload.namespace}/{workload.name}"
        for ref in refs:
            self._recent_deployments.pop((ref, config, self._settings.cluster), None)

    async def _ensure_deployment_note(self, project: str) -> None:
        if self._deployment_note_ready:
            return
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
        self._deployment_note_ready = True

    async def _record_deployments(self, workload: Workload, decision: Decision) -> None:
        project = self._settings.project
        refs: list[str] = []
        for image in decision.images:
            with contextlib.suppress(InvalidArgument):
                ref = parse_image_reference(image.reference or image.image)
                if ref.digest:
                    refs.append(ref.canonical)
        fresh = self._new_deployments(workload, refs)
        if not fresh:
            return
        now = self._clock()
        try:
            await self._ensure_deployment_note(project)
            await self._grafeas.batch_create_occurrences(
                f"projects/{project}",
                [
                    occurrence_from_json(
                        {
                            "resourceUri": ref,
                            "noteName": f"projects/{project}/notes/{DEPLOYMENT_NOTE_ID}",
                            "deployment": {
                                "deployTime": rfc3339(now),
                                "config": f"{workload.kind}/{workload.namespace}/{workload.name}",
                                "address": self._settings.cluster or "kubernetes",
                                "resourceUri": [ref],
                                "platform": "CUSTOM",
                            },
                        }
                    )
                    for ref in fresh
                ],
            )
        except Exception:
            # Not recorded: let the next admission of the same workload try again.
            self._forget_deployments(workload, fresh)
            self._deployment_note_ready = False
            log.exception("could not record deployment occurrences", images=fresh)

    async def close(self) -> None:
        """Wait for deployment occurrences still being written."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
