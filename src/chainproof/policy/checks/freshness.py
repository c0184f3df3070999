"""The ``freshness`` check: the newest vulnerability scan of the image is at most N hours old.

A scan dated in the future beyond :data:`~chainproof.domain.timestamps.CLOCK_SKEW` is ignored:
otherwise a scanner could stamp a scan "next year" and keep it fresh for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Self

from chainproof.domain.timestamps import CLOCK_SKEW
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.attested_evidence import KEY, read_attested_by, scoped, signed_phrase
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult


@dataclass(frozen=True, slots=True)
class Freshness:
    key: ClassVar[str] = "freshness"
    maximum_scan_age_hours: float
    attested_by: tuple[str, ...] = ()

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        f = FieldReader(
            checks.problems,
            checks.at(cls.key),
            checks.raw(cls.key),
            ("maximumScanAgeHours", KEY),
        )
        hours = f.number("maximumScanAgeHours", required=True)
        if hours is not None and hours <= 0:
            checks.problems.add(
                f.at("maximumScanAgeHours"), f"must be greater than 0, got {hours:g}"
            )
            hours = None
        attested_by = read_attested_by(f)
        return None if hours is None else cls(hours, attested_by)

    def to_dict(self) -> Any:
        hours = self.maximum_scan_age_hours
        out: dict[str, Any] = {"maximumScanAgeHours": int(hours) if hours.is_integer() else hours}
        if self.attested_by:
            out[KEY] = list(self.attested_by)
        return out

    @property
    def attestors(self) -> frozenset[str]:
        return frozenset(self.attested_by)

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [self._judge(scoped(ctx, self.attested_by))]

    def _judge(self, ctx: CheckContext) -> RequirementResult:
        max_hours = self.maximum_scan_age_hours
        image = ctx.image.canonical
        signed = signed_phrase(self.attested_by)
        name = f"vulnerability scan{signed} at most {max_hours:g} h old"
        scans = [s for s in ctx.evidence.scans if s.scanned_at <= ctx.now + CLOCK_SKEW]
        consulted = tuple(s.occurrence for s in ctx.evidence.scans if s.occurrence)
        if not scans:
            future = len(ctx.evidence.scans)
            why = f" ({future} dated in the future were ignored)" if future else ""
            return RequirementResult(
                "freshness",
                name,
                False,
                f"no vulnerability scan{signed} is recorded for {image}{why}: scan the image "
                "and upload the result",
                consulted,
            )
        newest = max(scans, key=lambda s: s.scanned_at)
        age = ctx.now - newest.scanned_at
        hours = age.total_seconds() / 3600
        stamp = f"scanned {newest.scanned_at.isoformat()} by {newest.scanner}"
        # Exact boundary: a scan exactly max_hours old still passes.
        if age <= timedelta(hours=max_hours):
            return RequirementResult(
                "freshness",
                name,
                True,
                f"newest scan is {hours:.1f} h old ({stamp})",
                consulted,
                valid_until=newest.scanned_at + timedelta(hours=max_hours),
            )
        return RequirementResult(
            "freshness",
            name,
            False,
            f"the newest vulnerability scan of {image} is {hours:.1f} h old ({stamp}); the policy "
            f"allows at most {max_hours:g} h: rescan the image",
            consulted,
        )
