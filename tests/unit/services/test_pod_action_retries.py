"""The retry policy of Kubernetes actions, on an injected clock and sleeper (no waiting):
what is tried again and what is not, the backoff and Retry-After, every attempt recorded,
and nothing past the batch's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from chainproof.services.judge.pod_actions import (
    ActionRetryPolicy,
    ActionRunner,
    backoff,
    is_transient,
)
from chainproof.sources.kubernetes.port import PodActionFailed

WALL = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only sleeping (or a slow attempt) moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(
    *outcomes: BaseException | None, clock: FakeTime | None = None, cost: float = 0.0
) -> tuple[Callable[[], Awaitable[None]], list[int]]:
    """Work whose n-th call raises the n-th outcome (None: succeeds); each call takes
    ``cost`` seconds of the fake clock."""
    calls: list[int] = []

    def work() -> Awaitable[None]:
        async def once() -> None:
            calls.append(len(calls) + 1)
            if clock is not None:
                clock.now += cost
            outcome = outcomes[min(len(calls), len(outcomes)) - 1]
            if outcome is not None:
                raise outcome

        return once()

    return work, calls


def runner(clock: FakeTime, policy: ActionRetryPolicy, deadline: float = 60.0) -> ActionRunner:
    return ActionRunner(
        policy,
        deadline=deadline,
        now=lambda: WALL,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
    )


def http(status: int, retry_after: float | None = None) -> PodActionFailed:
    return PodActionFailed(f"answered {status}", status=status, retry_after=retry_after)


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        (http(429), True),
        (http(408), True),
        (http(500), True),
        (http(503), True),
        (PodActionFailed("refused", status=None), True),  # connection refused, reset
        (PodActionFailed("slow", status=None, timed_out=True), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (http(400), False),
        (http(401), False),
        (http(403), False),
        (http(404), False),
        (http(409), False),
        (http(422), False),
        (ValueError("a bug, not the cluster"), False),
    ],
)
def test_what_is_transient(failure: BaseException, transient: bool) -> None:
    assert is_transient(failure) is transient


def test_backoff_doubles_up_to_its_cap_and_honours_retry_after() -> None:
    p = ActionRetryPolicy(attempts=10, first_delay=0.5, max_delay=3.0)
    assert [backoff(p, n, None, 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff(p, 2, None, 0.5) == 0.5  # jitter shortens, never lengthens
    assert backoff(p, 1, 7.0, 1.0) == 7.0  # the server's word, even above the cap


def test_policy_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        ActionRetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="first_delay"):
        ActionRetryPolicy(first_delay=5, max_delay=1)
    with pytest.raises(ValueError, match="timeout"):
        ActionRetryPolicy(attempt_timeout=0)


async def test_transient_failures_are_retried_with_backoff_each_attempt_recorded() -> None:
    clock = FakeTime()
    work, calls = failing(http(503), PodActionFailed("reset", status=None), None)
    done = await runner(clock, ActionRetryPolicy(attempts=4, first_delay=0.5)).run("event", work)
    assert calls == [1, 2, 3]
    assert clock.slept == [0.5, 1.0]
    assert [(a.action, a.attempt) for a in done] == [("event", 1), ("event", 2), ("event", 3)]
    assert done[0].result == "failed, retrying in 0.50s: HTTP 503: answered 503"
    assert done[1].result == "failed, retrying in 1.00s: unreachable: reset"
    assert done[2].result == "done"


async def test_retry_after_is_honoured() -> None:
    clock = FakeTime()
    work, calls = failing(http(429, retry_after=4.0), None)
    done = await runner(clock, ActionRetryPolicy(first_delay=0.1)).run("annotate", work)
    assert calls == [1, 2] and clock.slept == [4.0]
    assert [a.result for a in done][1] == "done"


@pytest.mark.parametrize("status", [403, 404, 422])
async def test_permanent_failures_are_recorded_once_and_not_retried(status: int) -> None:
    clock = FakeTime()
    work, calls = failing(http(status), None)
    [only] = await runner(clock, ActionRetryPolicy(attempts=5)).run("evict", work)
    assert calls == [1] and clock.slept == []
    assert only.result == f"failed: HTTP {status}: answered {status}" and only.attempt == 1


async def test_attempts_are_bounded_and_a_refused_eviction_says_refused() -> None:
    clock = FakeTime()
    work, calls = failing(http(429))
    done = await runner(clock, ActionRetryPolicy(attempts=3, first_delay=1.0)).run("evict", work)
    assert calls == [1, 2, 3] and clock.slept == [1.0, 2.0]
    assert [a.result.split(":")[0] for a in done] == [
        "refused, retrying in 1.00s",
        "refused, retrying in 2.00s",
        "refused",
    ]
    # The same 429 on an Event is throttling, not a budget: "failed".
    work, _ = failing(http(429))
    [*_, last] = await runner(FakeTime(), ActionRetryPolicy(attempts=2)).run("event", work)
    assert last.result == "failed: HTTP 429: answered 429"


async def test_no_wait_ends_past_the_deadline() -> None:
    """A Retry-After (or backoff) reaching past the batch's deadline is not waited for: the
    failure is final, and the worker is free."""
    clock = FakeTime()
    work, calls = failing(http(503, retry_after=30.0), None)
    done = await runner(clock, ActionRetryPolicy(attempts=5), deadline=10.0).run("event", work)
    assert calls == [1] and clock.slept == []
    assert [a.result for a in done] == ["failed: HTTP 503: answered 503"]


async def test_slow_attempts_use_up_the_deadline_and_later_actions_are_not_attempted() -> None:
    clock = FakeTime()
    shared = runner(clock, ActionRetryPolicy(attempts=10, first_delay=1.0), deadline=20.0)
    work, calls = failing(
        PodActionFailed("slow", status=None, timed_out=True), clock=clock, cost=5.0
    )
    done = await shared.run("event", work)
    # 5 s, wait 1, 5 s, wait 2, 5 s (17 s): a wait of 4 s would end past 20 s.
    assert calls == [1, 2, 3] and clock.slept == [1.0, 2.0]
    assert done[-1].result == "failed: timed out: slow"
    clock.now = 25.0
    untried, calls = failing(None)
    [skipped] = await shared.run("evict", untried)
    assert calls == []
    assert skipped.result == "failed: not attempted, the time for acting on this batch ran out"


async def test_an_attempt_that_hangs_is_cut_at_its_timeout() -> None:
    """A real hang (the loop's own timeout, a few milliseconds here) becomes a timed-out
    failure and is retried, not awaited for ever."""
    clock = FakeTime()
    hung = asyncio.Event()
    calls: list[int] = []

    def work() -> Awaitable[None]:
        async def once() -> None:
            calls.append(1)
            if len(calls) == 1:
                await hung.wait()  # never set

        return once()

    policy = ActionRetryPolicy(attempts=2, first_delay=0.0, max_delay=0.0, attempt_timeout=0.01)
    done = await runner(clock, policy).run("annotate", work)
    assert [a.result for a in done] == [
        "failed, retrying in 0.00s: timed out: the attempt did not finish in time",
        "done",
    ]
