"""When to try delivering an event again, and when to give up.

Pure rules for the notifier: exponential backoff with a cap and jitter (the jitter is a
parameter in [0, 1) so tests are deterministic), and dead-lettering after a number of
attempts. The notifier itself (reading the outbox, calling sinks) lives in services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 1.0
    cap_s: float = 300.0
    #: Attempts before an event is moved to the dead-letter list for that subscription.
    max_attempts: int = 12

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1:
            raise ValueError("retry policy needs 0 < base <= cap and at least one attempt")

    def delay(self, attempts: int, jitter: float) -> timedelta:
        """Wait after ``attempts`` failed tries: base·2^(n-1), capped, minus up to half of
        it at random so that many subscribers failing together do not retry in lock step."""
        raw = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return timedelta(seconds=raw * (1 - 0.5 * min(max(jitter, 0.0), 0.999)))

    def next_attempt(self, attempts: int, now: datetime, jitter: float) -> datetime | None:
        """When to try again after ``attempts`` failures; None: dead-letter it."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts, jitter)
