"""Instants as chainproof writes and compares them: RFC 3339 text and the tolerated clock skew.

Owns the one spelling of an instant on the wire (``2026-01-02T03:04:05Z``, what Grafeas and
Binary Authorization return) and the one allowance for clocks that disagree, used wherever a
signature, a scan or a certificate is dated by someone else's clock. Pure: no clock is read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: How far in the future (relative to ``now``) a time stamped by another machine may lie before
#: it is taken for a lie rather than for clocks that differ a little.
CLOCK_SKEW = timedelta(minutes=5)


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 text, UTC written ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")
