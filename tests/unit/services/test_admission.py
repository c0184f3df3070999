"""AdmissionService and the webhook's wire limits, with fakes for the judge and the log.

The fakes implement what the service calls (``Judge.evaluate``, ``DecisionLog.record``);
deployment occurrences go to a real GrafeasService on a MemoryStore.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from chainproof.api.webhook import api_server_deadline, fit_message, fit_warnings
from chainproof.config import AdmissionSettings
from chainproof.domain.pagination import PageTokenCodec
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.errors import NotFound, Unavailable
from chainproof.policy import (
    AdmissionRequest,
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.services.judge.admission import (
    BREAKGLASS_DISABLED_NOTE,
    DEPLOYMENT_NOTE_ID,
    AdmissionService,
    denial_message,
)
from chainproof.services.judge.decision_log import DecisionEntry
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.memory import MemoryStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = "gcr.io/acme/app@sha256:" + "a" * 64
BAD = "gcr.io/acme/bad@sha256:" + "b" * 64
RULE = RuleSelection("default", None, "REQUIRE_ATTESTATION", "ENFORCED", "default rule")


def image_decision(image: str, outcome: Outcome) -> ImageDecision:
    passed = outcome is Outcome.ALLOWED
    reason = "attested" if passed else f"no attestation by projects/p/attestors/qa for {image}"
    return ImageDecision(
        image=image,
        reference=image,
        rule=RULE,
        requirements=(RequirementResult("attestation", "qa", passed, reason),),
        outcome=outcome,
    )


def decision_for(request: AdmissionRequest, bad: set[str], dry_run: bool = False) -> Decision:
    failing = Outcome.DRY_RUN_WOULD_DENY if dry_run else Outcome.DENIED
    images = tuple(
        image_decision(i, failing if i in bad else Outcome.ALLOWED) for i in request.images
    )
    return Decision(images, Decision.combine(images), NOW, "projects/p/policy", "etag1")


class FakeJudge:
    def __init__(self) -> None:
        self.bad: set[str] = {BAD}
        self.dry_run = False
        self.error: Exception | None = None
        self.delay = 0.0

    async def evaluate(self, project: str, request: AdmissionRequest) -> Decision:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return decision_for(request, self.bad, self.dry_run)


class FakeLog:
    def __init__(self) -> None:
        self.entries: list[DecisionEntry] = []

    async def record(self, entry: DecisionEntry) -> None:
        self.entries.append(entry)


def workload(*images: str, breakglass: bool = False, name: str = "web") -> Workload:
    return Workload(
        kind="Deployment",
        name=name,
        namespace="prod",
        service_account="default",
        images=tuple(
            ContainerImage(f"containers[{i}] (c{i})", img) for i, img in enumerate(images)
        ),
        annotations={"kritis.grafeas.io/breakglass": "true"} if breakglass else {},
    )


class System:
    def __init__(self, **settings: Any) -> None:
        self.store = MemoryStore()
        self.grafeas = GrafeasService(self.store, PageTokenCodec(b"k" * 32))
        self.judge = FakeJudge()
        self.log = FakeLog()
        self.service = AdmissionService(
            self.judge,  # type: ignore[arg-type]
            self.log,  # type: ignore[arg-type]
            self.grafeas,
            AdmissionSettings(project="p", **settings),
            clock=lambda: NOW,
        )

    async def deployments(self) -> list[str]:
        await self.service.close()
        try:
            page = await self.grafeas.list_note_occurrences(
                f"projects/p/notes/{DEPLOYMENT_NOTE_ID}", "", 100, ""
            )
        except NotFound:  # nothing was ever deployed
            return []
        return [o.resource_uri for o in page.items]


async def test_allowed_workload_is_recorded_and_deployed() -> None:
    sys = System()
    result = await sys.service.review(workload(GOOD), uid="u1")
    assert (result.allowed, result.outcome, result.message) == (True, "allowed", "")
    [entry] = sys.log.entries
    assert (entry.request_uid, entry.outcome, entry.workload) == ("u1", "allowed", "Deployment/web")
    assert await sys.deployments() == [GOOD]


async def test_denial_names_the_container_and_is_not_deployed() -> None:
    sys = System()
    result = await sys.service.review(workload(GOOD, BAD), uid="u2")
    assert not result.allowed
    assert result.message.startswith("chainproof denied Deployment prod/web: containers[1] (c1):")
    assert BAD in result.message and "containers[0]" not in result.message
    assert sys.log.entries[0].outcome == "denied"
    assert await sys.deployments() == []


async def test_dry_run_requests_are_recorded_but_never_deployed() -> None:
    sys = System()
    result = await sys.service.review(workload(GOOD), dry_run=True)
    assert result.allowed
    assert sys.log.entries[0].dry_run is True
    assert await sys.deployments() == []


async def test_the_same_workload_is_deployed_once_per_window() -> None:
    sys = System()
    for _ in range(3):
        await sys.service.review(workload(GOOD, name="rs-1"))
    await sys.service.review(workload(GOOD, name="rs-2"))
    assert sorted(await sys.deployments()) == [GOOD, GOOD]
    assert len(sys.log.entries) == 4  # every review is still in the decision log


async def test_breakglass_admits_and_records() -> None:
    sys = System()
    result = await sys.service.review(workload(BAD, breakglass=True))
    assert (result.allowed, result.outcome) == (True, "breakglass")
    assert result.warnings[0].startswith("breakglass:")
    assert any(BAD in w for w in result.warnings)
    assert sys.log.entries[0].breakglass is True
    assert result.decision.outcome is Outcome.DENIED


async def test_breakglass_disabled_denies_with_a_note() -> None:
    sys = System(breakglass_enabled=False)
    result = await sys.service.review(workload(BAD, breakglass=True))
    assert not result.allowed and result.outcome == "denied"
    assert BREAKGLASS_DISABLED_NOTE in result.message
    assert BREAKGLASS_DISABLED_NOTE in result.warnings


async def test_breakglass_does_not_override_an_error() -> None:
    sys = System()
    sys.judge.error = Unavailable("database down")
    result = await sys.service.review(workload(GOOD, breakglass=True))
    assert not result.allowed and result.outcome == "error"


async def test_dry_run_enforcement_admits_with_warnings() -> None:
    sys = System()
    sys.judge.dry_run = True
    result = await sys.service.review(workload(GOOD, BAD))
    assert result.allowed and result.outcome == "dry-run-would-deny"
    assert result.warnings[0].startswith("dry run:")
    assert any("containers[1] (c1)" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Unavailable("database down"), "chainproof could not decide: database down"),
        (KeyError("boom"), "internal error (KeyError"),
    ],
)
async def test_errors_fail_closed(error: Exception, expected: str) -> None:
    sys = System()
    sys.judge.error = error
    result = await sys.service.review(workload(GOOD))
    assert not result.allowed and result.outcome == "error"
    assert expected in result.message and "failure mode is closed" in result.message
    entry = sys.log.entries[0]
    assert entry.outcome == "error"
    # The error decision still names the images, so the log is searchable by image.
    assert [i.reference for i in entry.decision.images] == [GOOD]
    assert await sys.deployments() == []


async def test_errors_admit_with_a_warning_when_open() -> None:
    sys = System(failure_mode="open")
    sys.judge.error = Unavailable("database down")
    result = await sys.service.review(workload(GOOD))
    assert result.allowed and result.outcome == "error"
    assert "failure mode is open" in result.warnings[0]


async def test_deadline() -> None:
    sys = System(deadline_seconds=0.1)
    sys.judge.delay = 5
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await sys.service.review(workload(GOOD))
    assert loop.time() - started < 1
    assert not result.allowed and "deadline of 0.1s" in result.message
    # A shorter budget from the API server wins; a longer one does not.
    started = loop.time()
    result = await sys.service.review(workload(GOOD), deadline_seconds=0.05)
    assert "deadline of 0.05s" in result.message
    result = await sys.service.review(workload(GOOD), deadline_seconds=10)
    assert "deadline of 0.1s" in result.message


async def test_unreadable_workload_is_denied_and_recorded() -> None:
    sys = System()
    result = await sys.service.refuse_unreadable(
        "Pod", {"metadata": {"generateName": "web-"}}, "prod", "containers[0].image is missing"
    )
    assert not result.allowed and result.outcome == "error"
    assert result.message == (
        "chainproof cannot read the images of Pod prod/web-: containers[0].image is missing"
    )
    assert sys.log.entries[0].workload == "Pod/web-"


def test_denial_message_without_reasons() -> None:
    empty = Decision((), Outcome.DENIED, NOW)
    assert denial_message(workload(GOOD), empty).endswith("the policy denies it")


# ----------------------------------------------------------------------------- wire limits


def test_fit_warnings() -> None:
    warnings = fit_warnings(["x" * 1000, "two\nlines", "", *(["y" * 300] * 30)])
    assert warnings[0] == "x" * 255 + "…"
    assert warnings[1] == "two lines"
    assert all(len(w) <= 256 for w in warnings)
    assert sum(len(w) for w in warnings) <= 4096
    assert len(warnings) == 16


def test_fit_message() -> None:
    assert fit_message("short") == "short"
    long = fit_message("z" * 10_000)
    assert len(long) == 4000 and long.endswith("`chainproof decisions list`)")


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("10s", 9.5),
        ("30s", 29.5),
        ("1s", 0.5),
        ("500ms", 0.25),
        ("1m", 59.5),
        ("", None),
        (None, None),
        ("ten", None),
        ("0s", None),
    ],
)
def test_api_server_deadline(timeout: str | None, expected: float | None) -> None:
    assert api_server_deadline(timeout) == expected
