"""Acting on a violating pod, with retries: which failures are tried again, how long to wait
between tries, and when to stop (ADR 0191).

Owns the retry policy of continuous validation's Kubernetes actions (Events, annotations,
evictions). A transient failure is tried again: HTTP 429 (a PodDisruptionBudget that forbids
an eviction now, or throttling), 408, any 5xx, a connection that failed or an attempt that
did not finish within ``attempt_timeout``. The wait is the server's ``Retry-After`` when it
gave one, else an exponential backoff from ``first_delay`` (doubling, at most ``max_delay``,
with jitter). A permanent failure (403, 404, 422, any other 4xx, an error that is not the
port's) is tried once. Every attempt is returned as a ``ViolationAction`` (numbered), so the
violation records each one; none is dropped.

Nothing runs past the deadline the caller sets for a whole batch: an attempt is cut at the
time left, a wait that would end past it is not taken (the last failure is then final), and
an action whose turn comes after it is recorded as not attempted. The worker therefore
never waits on a cluster for longer than that deadline, however many pods it acts on.

The clocks, the sleeper and the jitter are parameters: the rules are tested without waiting.
Who calls what on which pod is services.judge.continuous's; talking to the API server is
sources.kubernetes.actions'.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from chainproof.policy.violations import ViolationAction
from chainproof.sources.kubernetes.port import PodActionFailed

#: HTTP statuses worth trying again: the server may do it later.
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ActionRetryPolicy:
    """How often and how long to try one action."""

    #: Tries in all (1: never again).
    attempts: int = 4
    #: The wait after the first failure, in seconds; it doubles after each one.
    first_delay: float = 0.5
    #: The longest wait the backoff makes (a server's Retry-After may ask for more).
    max_delay: float = 8.0
    #: One attempt's own bound, in seconds.
    attempt_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy makes at least one attempt")
        if not (0 <= self.first_delay <= self.max_delay):
            raise ValueError("expected 0 <= first_delay <= max_delay")
        if self.attempt_timeout <= 0:
            raise ValueError("an attempt needs a positive timeout")


def is_transient(exc: BaseException) -> bool:
    """Whether trying again could succeed without anyone changing anything."""
    if isinstance(exc, PodActionFailed):
        if exc.status is None:
            return True  # unreachable or timed out
        return exc.status in TRANSIENT_STATUSES or exc.status >= 500
    return isinstance(exc, TimeoutError | OSError)


def backoff(
    policy: ActionRetryPolicy, failures: int, retry_after: float | None, jitter: float
) -> float:
    """The wait before the next attempt after ``failures`` failed ones. ``jitter`` (0.5-1)
    spreads pods that failed together; a server's ``retry_after`` is honoured as given."""
    if retry_after is not None and retry_after >= 0:
        return retry_after
    delay: float = min(policy.max_delay, policy.first_delay * 2.0 ** (failures - 1))
    return delay * jitter


def _describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, PodActionFailed) else f"{type(exc).__name__}: {exc}"
    return text[:400]


def _refused(action: str, exc: BaseException) -> bool:
    # The Eviction API answers 429 when a PodDisruptionBudget does not allow it now.
    return action == "evict" and isinstance(exc, PodActionFailed) and exc.status == 429


class ActionRunner:
    """Runs the actions of one batch under one policy and one deadline (a reading of
    ``monotonic``, which ``sleep`` advances)."""

    def __init__(
        self,
        policy: ActionRetryPolicy,
        *,
        deadline: float,
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),  # noqa: S311
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        self._now = now
        self._monotonic = monotonic
        self._sleep = sleep
        self._jitter = jitter

    def _left(self) -> float:
        return self.deadline - self._monotonic()

    async def run(self, action: str, work: Callable[[], Awaitable[None]]) -> list[ViolationAction]:
        """Try ``work`` (a new call each attempt) until it succeeds, fails for good, runs out
        of attempts, or the deadline comes; every attempt's result, in order."""
        p = self.policy
        done: list[ViolationAction] = []
        for attempt in range(1, p.attempts + 1):
            left = self._left()
            if left <= 0:
                if not done:
                    done.append(
                        ViolationAction(
                            action,
                            self._now(),
                            "failed: not attempted, the time for acting on this batch ran out",
                            attempt,
                        )
                    )
                return done
            try:
                await asyncio.wait_for(work(), timeout=min(p.attempt_timeout, left))
            except Exception as exc:  # recorded in the violation: nothing is lost
                failure: BaseException = exc
                if isinstance(exc, TimeoutError) and not isinstance(exc, PodActionFailed):
                    failure = PodActionFailed(
                        "the attempt did not finish in time", status=None, timed_out=True
                    )
                word = "refused" if _refused(action, failure) else "failed"
                retry_after = failure.retry_after if isinstance(failure, PodActionFailed) else None
                delay = backoff(p, attempt, retry_after, self._jitter())
                again = (
                    is_transient(failure)
                    and attempt < p.attempts
                    and self._monotonic() + delay < self.deadline
                )
                retrying = f", retrying in {delay:.2f}s" if again else ""
                result = f"{word}{retrying}: {_describe(failure)}"
                done.append(ViolationAction(action, self._now(), result[:500], attempt))
                if not again:
                    return done
                await self._sleep(delay)
                continue
            done.append(ViolationAction(action, self._now(), "done", attempt))
            return done
        return done
