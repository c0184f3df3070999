"""Time-boxed breakglass: who asked to bypass the policy, why, and until when.

A workload asks for breakglass with one of the breakglass annotations set to ``"true"``
(:data:`~chainproof.domain.workloads.BREAKGLASS_ANNOTATIONS`); it may say why
(:data:`JUSTIFICATION_ANNOTATION`) and until when (:data:`EXPIRES_ANNOTATION`, an RFC 3339
time). Whatever the annotation says, a breakglass never lasts longer than the operator's
maximum counted from the moment the pod came to be (``start``: the review's time at
admission, the pod's ``creationTimestamp`` at runtime, both set by servers, never by the
annotation). Annotations on a running pod can be edited, so a later edit can shorten the
window but never push it past ``start + maximum``.

Pure: times are parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import InvalidArgument

EXPIRES_ANNOTATION = "chainproof.dev/breakglass-expires"
JUSTIFICATION_ANNOTATION = "chainproof.dev/breakglass-justification"
#: The operator's maximum when none is configured (admission.breakglass_max_hours).
DEFAULT_MAXIMUM = timedelta(hours=24)
_MAX_JUSTIFICATION = 1024


@dataclass(frozen=True, slots=True)
class BreakglassWindow:
    """A breakglass request read from annotations. ``problem`` is set when the request
    cannot be honoured (expired, unreadable expiry, missing justification): the policy
    applies then, and the problem says why."""

    justification: str
    #: When the breakglass stops admitting (``start + maximum`` at the latest).
    expires: datetime
    #: The expiry the annotation asked for, when it asked for a later one than allowed.
    clamped_from: datetime | None = None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    def active_at(self, now: datetime) -> bool:
        return self.usable and now < self.expires


def read_window(
    annotations: Mapping[str, str],
    *,
    start: datetime,
    now: datetime,
    maximum: timedelta = DEFAULT_MAXIMUM,
    require_justification: bool = False,
) -> BreakglassWindow:
    """The breakglass window of a workload whose annotations ask for breakglass."""
    justification = annotations.get(JUSTIFICATION_ANNOTATION, "").strip()[:_MAX_JUSTIFICATION]
    latest = start + maximum
    raw = annotations.get(EXPIRES_ANNOTATION, "").strip()
    expires, clamped_from = latest, None
    if raw:
        try:
            asked = parse_rfc3339(raw)
        except (InvalidArgument, ValueError):
            return BreakglassWindow(
                justification,
                start,
                problem=(
                    f"the breakglass expiry {raw[:64]!r} ({EXPIRES_ANNOTATION}) is not an "
                    "RFC 3339 time such as 2026-12-02T18:00:00Z, so breakglass does not apply"
                ),
            )
        if asked > latest:
            clamped_from = asked
        else:
            expires = asked
    if require_justification and not justification:
        return BreakglassWindow(
            justification,
            expires,
            problem=(
                f"breakglass needs a justification on this server: set {JUSTIFICATION_ANNOTATION}"
            ),
        )
    if now >= expires:
        return BreakglassWindow(
            justification,
            expires,
            clamped_from,
            problem=f"the breakglass expired at {expires.isoformat()}, so the policy applies",
        )
    return BreakglassWindow(justification, expires, clamped_from)
