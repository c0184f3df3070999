"""Instants as chainproof reads, writes and compares them: RFC 3339 text and the clock skew.

Owns the one spelling of an instant on the wire (``2026-01-02T03:04:05Z``, what Grafeas and
Binary Authorization return: :func:`rfc3339`), the one reader of such text
(:func:`parse_rfc3339`; callers word the error for their own field) and the one allowance for
clocks that disagree, used wherever a signature, a scan or a certificate is dated by someone
else's clock. Pure: no clock is read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: How far in the future (relative to ``now``) a time stamped by another machine may lie before
#: it is taken for a lie rather than for clocks that differ a little.
CLOCK_SKEW = timedelta(minutes=5)


class MissingTimeZone(ValueError):
    """The text names a wall-clock time but no zone (raised only when no default is wanted)."""


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 text in UTC, written ``Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_rfc3339(text: str, *, assume_utc: bool = True) -> datetime:
    """The instant ``text`` names, as an aware datetime (its offset kept as written).

    Takes what people and tools write: ``Z`` or ``z`` or an offset, any number of fraction
    digits (past microseconds they are dropped), and the shortened forms Python's ISO reader
    knows (``2026-11-22T10:00``). A time without a zone is UTC, or with ``assume_utc=False``
    refused with :class:`MissingTimeZone`. Anything else raises ValueError: the caller knows
    which field it was and says so.
    """
    value = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        if not assume_utc:
            raise MissingTimeZone(f"{text!r} names no time zone")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
