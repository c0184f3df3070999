"""Helpers every service shares: the injectable clock and the page of a list.

Services never read the clock themselves; they receive a :data:`Clock` so tests and the
offline CLI can fix time. :func:`utc_now` is the production clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

T = TypeVar("T")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current instant, always time-zone aware (UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the token that resumes it (empty on the last page)."""

    items: list[T]
    next_page_token: str
