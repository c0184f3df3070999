"""The ``vulnerabilities`` check: severity thresholds for fixable and unfixable findings,
allowed and blocked CVEs, after the image's VEX ``not_affected``/``fixed`` statements.

Also owns :class:`Threshold` and the comparison of a finding with a pair of thresholds, which
Kritis' ImageSecurityPolicy (:mod:`chainproof.policy.kritis`) reuses with its own defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from chainproof.domain.images import ImageReference
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.attested_evidence import KEY, read_attested_by, scoped, signed_phrase
from chainproof.policy.checks.base import CheckContext, cve_id
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import (
    ImageEvidence,
    Severity,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
)


class Threshold(StrEnum):
    """The highest severity a rule tolerates, or one of Kritis' two special values."""

    ALLOW_ALL = "ALLOW_ALL"
    BLOCK_ALL = "BLOCK_ALL"
    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    def permits(self, severity: Severity) -> bool:
        if self is Threshold.ALLOW_ALL:
            return True
        if self is Threshold.BLOCK_ALL:
            return False
        return severity <= Severity[self.value]


def resolving_statement(
    evidence: ImageEvidence, finding: VulnerabilityFinding, image: ImageReference
) -> VexStatement | None:
    """The not_affected/fixed VEX statement that resolves ``finding`` on ``image``, if any.

    Scoped: a statement resolves only the finding, product and subcomponent it names (see
    :class:`chainproof.policy.evidence.VexStatement`), never every finding with its CVE id.
    """
    for v in evidence.vex:
        if v.status in (VexStatus.NOT_AFFECTED, VexStatus.FIXED) and v.resolves(finding, image):
            return v
    return None


@dataclass(frozen=True, slots=True)
class VulnerabilityCheck:
    key: ClassVar[str] = "vulnerabilities"
    maximum_fixable: Threshold = Threshold.ALLOW_ALL
    maximum_unfixable: Threshold = Threshold.ALLOW_ALL
    allowed_cves: frozenset[str] = frozenset()
    blocked_cves: frozenset[str] = frozenset()
    # Without a scan, "no findings" means "never looked"; failing closed is the safe reading.
    require_scan: bool = True
    attested_by: tuple[str, ...] = ()

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        path = checks.at(cls.key)
        r = FieldReader(
            checks.problems,
            path,
            checks.raw(cls.key),
            (
                "maximumFixableSeverity",
                "maximumUnfixableSeverity",
                "allowedCves",
                "blockedCves",
                "requireScan",
                KEY,
            ),
        )
        check = cls(
            maximum_fixable=r.enum(
                "maximumFixableSeverity", Threshold, default=Threshold.ALLOW_ALL
            ),
            maximum_unfixable=r.enum(
                "maximumUnfixableSeverity", Threshold, default=Threshold.ALLOW_ALL
            ),
            allowed_cves=frozenset(cve_id(c) for c in r.string_list("allowedCves")),
            blocked_cves=frozenset(cve_id(c) for c in r.string_list("blockedCves")),
            require_scan=r.boolean("requireScan", default=True),
            attested_by=read_attested_by(r),
        )
        both = check.allowed_cves & check.blocked_cves
        if both:
            checks.problems.add(path, f"CVEs both allowed and blocked: {', '.join(sorted(both))}")
        return check

    def to_dict(self) -> Any:
        out: dict[str, Any] = {
            "maximumFixableSeverity": self.maximum_fixable.value,
            "maximumUnfixableSeverity": self.maximum_unfixable.value,
        }
        if self.allowed_cves:
            out["allowedCves"] = sorted(self.allowed_cves)
        if self.blocked_cves:
            out["blockedCves"] = sorted(self.blocked_cves)
        if not self.require_scan:
            out["requireScan"] = False
        if self.attested_by:
            out[KEY] = list(self.attested_by)
        return out

    @property
    def attestors(self) -> frozenset[str]:
        return frozenset(self.attested_by)

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [self._judge(scoped(ctx, self.attested_by))]

    def _judge(self, ctx: CheckContext) -> RequirementResult:
        image = ctx.image.canonical
        signed = signed_phrase(self.attested_by)
        name = (
            f"vulnerability thresholds (evidence{signed})"
            if signed
            else ("vulnerability thresholds")
        )
        occurrences = tuple(
            f.occurrence for f in ctx.evidence.vulnerabilities if f.occurrence is not None
        )
        if self.require_scan and not ctx.evidence.scans:
            return RequirementResult(
                "vulnerabilities",
                name,
                False,
                f"no vulnerability scan{signed} is recorded for {image}, so an empty list of "
                "findings proves nothing: scan the image and upload the result"
                + (" signed by that attestor" if signed else ""),
                occurrences,
            )
        suppressed = allowed = 0
        violations: list[str] = []
        for finding in ctx.evidence.vulnerabilities:
            cve = cve_id(finding.cve)
            ids = {cve, *(cve_id(a) for a in finding.aliases)}
            if resolving_statement(ctx.evidence, finding, ctx.image) is not None:
                suppressed += 1
                continue
            if ids & self.blocked_cves:
                violations.append(f"{cve}{_in_package(finding)} is blocked by the policy")
                continue
            if ids & self.allowed_cves:
                allowed += 1
                continue
            violation = self._threshold_violation(finding)
            if violation:
                violations.append(violation)
        total = len(ctx.evidence.vulnerabilities)
        summary = f"{total} findings, {suppressed} resolved by VEX, {allowed} allowed by the policy"
        if violations:
            return RequirementResult(
                "vulnerabilities",
                name,
                False,
                f"{len(violations)} vulnerabilities in {image} exceed the policy: "
                f"{'; '.join(violations)}; upgrade the affected packages and rebuild, or record "
                "a VEX not_affected statement if the image is not affected",
                occurrences,
            )
        return RequirementResult(
            "vulnerabilities", name, True, f"{summary}, none above the thresholds", occurrences
        )

    def _threshold_violation(self, f: VulnerabilityFinding) -> str | None:
        # An unrated finding cannot be shown to be below a threshold: treat it as CRITICAL.
        unrated = f.severity is Severity.SEVERITY_UNSPECIFIED
        severity = Severity.CRITICAL if unrated else f.severity
        rated = "unrated" if unrated else f.severity.name
        cve = cve_id(f.cve)
        threshold = exceeded(f, severity, self.maximum_fixable, self.maximum_unfixable)
        if threshold is None:
            return None
        if f.fix_available:
            return (
                f"{cve}{_in_package(f)} ({rated}, fix available) exceeds maximumFixableSeverity "
                f"{threshold.value}"
            )
        return (
            f"{cve}{_in_package(f)} ({rated}, no fix) exceeds maximumUnfixableSeverity "
            f"{threshold.value}"
        )


def exceeded(
    finding: VulnerabilityFinding,
    severity: Severity,
    fixable: Threshold,
    unfixable: Threshold,
) -> Threshold | None:
    """The threshold ``finding`` (rated ``severity``) breaks, if any: a fixable finding is held
    to ``fixable``, one without a fix to ``unfixable``."""
    threshold = fixable if finding.fix_available else unfixable
    return None if threshold.permits(severity) else threshold


def _in_package(f: VulnerabilityFinding) -> str:
    return f" in {f.package}" if f.package else ""
