"""The time one review may spend reading registries, and where deep code finds it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

__all__ = ["REVIEW_DEADLINE", "Deadline"]


class Deadline:
    """The time left for one review (monotonic clock); the deadline always wins."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


#: The deadline of the review being judged, set by the admission service, so that registry reads
#: deep in evidence gathering stop when the review must answer.
REVIEW_DEADLINE: ContextVar[Deadline | None] = ContextVar(
    "chainproof_review_deadline", default=None
)
