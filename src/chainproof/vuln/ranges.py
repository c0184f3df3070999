"""The OSV evaluation algorithm: is version *v* of a package inside an ``affected[]`` entry?

This follows the schema's pseudocode (osv-schema, "Evaluation"), written once:

1. *v* is affected when it is listed in ``versions`` (exact string), or
2. when, for any ``SEMVER`` / ``ECOSYSTEM`` range, *v* is before one of the range's ``limit``
   events (no limit means an implicit ``"*"``, infinity) and the walk over the range's events
   sorted by version ends "vulnerable": ``introduced <= v`` sets it, ``fixed <= v`` clears it,
   ``last_affected < v`` clears it. ``introduced: "0"`` sorts before every version.

``GIT`` ranges need the repository's commit graph, which chainproof does not hold; the schema
says such entries must also list ``versions``, and those are what is checked. An entry with
only ``GIT`` ranges and no ``versions`` cannot be decided.

Every answer is a :class:`Verdict`: ``affected`` (with the first fixed version above *v*
when the range names one), ``not_affected``, or ``unknown`` with the reason — a version that
the ecosystem's order cannot read is never treated as "not affected". An entry is compiled
once (:func:`compile_affected`: event versions parsed and sorted) and then asked about many
versions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from chainproof.vuln.osv import Affected, EventKind, Range
from chainproof.vuln.versions import Comparable, IncomparableVersion, VersionOrder

Status = Literal["affected", "not_affected", "unknown"]

# At equal versions the walk sees "introduced" first, so {introduced X, fixed X} affects
# nothing rather than everything from X on; "limit" is read apart from the walk.
_KIND_RANK: dict[EventKind, int] = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    #: affected: why ("listed in versions", "introduced 1.0, fixed 1.2"); unknown: what failed.
    reason: str = ""
    #: The first ``fixed`` event above the version, in the range that made it affected.
    fixed_version: str | None = None
    #: The ``introduced`` event that made it affected ("0" for "every version before").
    introduced: str | None = None
    #: The range's ``last_affected``, when it has one and no fix.
    last_affected: str | None = None

    @property
    def affected(self) -> bool:
        return self.status == "affected"


NOT_AFFECTED = Verdict("not_affected")


@dataclass(frozen=True, slots=True)
class _Point:
    kind: EventKind
    version: str
    key: Comparable | None  # None: the special "0" (below everything) or "*" (above)


@dataclass(frozen=True, slots=True)
class CompiledRange:
    """One range with its events parsed and sorted by version, ready to be walked."""

    type: str
    points: tuple[_Point, ...]
    limits: tuple[_Point, ...]
    order: VersionOrder

    def evaluate(self, version: str) -> Verdict:
        try:
            v = self.order.key(version)
        except IncomparableVersion as exc:
            return Verdict("unknown", reason=str(exc))
        if self.limits and not any(p.key is None or v < p.key for p in self.limits):
            return NOT_AFFECTED
        vulnerable = False
        introduced: str | None = None
        position = len(self.points)
        for i, p in enumerate(self.points):
            if p.kind == "introduced":
                if p.key is None or p.key <= v:
                    vulnerable, introduced = True, p.version
                    continue
            elif p.kind == "fixed":
                if p.key is not None and p.key <= v:
                    vulnerable = False
                    continue
            elif p.kind == "last_affected" and p.key is not None and p.key < v:
                vulnerable = False
                continue
            # Sorted: this event and every one after it lies above v, so nothing later can
            # change the walk's state; remember where to look for the fix.
            position = i
            break
        if not vulnerable:
            return NOT_AFFECTED
        fixed = next((p.version for p in self.points[position:] if p.kind == "fixed"), None)
        last = next((p.version for p in self.points[position:] if p.kind == "last_affected"), None)
        bounds = [f"introduced {introduced}"]
        if fixed:
            bounds.append(f"fixed {fixed}")
        elif last:
            bounds.append(f"last affected {last}")
        else:
            bounds.append("no fix")
        return Verdict(
            "affected",
            reason=f"{self.type} range: " + ", ".join(bounds),
            fixed_version=fixed,
            introduced=introduced,
            last_affected=last if not fixed else None,
        )


@dataclass(frozen=True, slots=True)
class CompiledAffected:
    """An ``affected[]`` entry compiled for one ecosystem's order."""

    versions: frozenset[str]
    ranges: tuple[CompiledRange, ...]
    #: Ranges that could not be compiled (a version the order cannot read), with why.
    broken: tuple[str, ...]
    #: Only GIT ranges and no versions list: nothing chainproof holds can decide it.
    undecidable: bool
    strip_v: bool = False

    def evaluate(self, version: str) -> Verdict:
        if version in self.versions or (
            self.strip_v and version[:1] == "v" and version[1:] in self.versions
        ):
            best = self._range_verdict(version)
            if best is not None and best.affected:
                return best
            return Verdict("affected", reason="listed in the record's versions")
        verdict = self._range_verdict(version)
        if verdict is not None and verdict.affected:
            return verdict
        problems = list(self.broken)
        if verdict is not None and verdict.status == "unknown":
            problems.append(verdict.reason)
        if self.undecidable:
            problems.append("only GIT ranges and no versions list: needs the repository's history")
        if problems:
            return Verdict("unknown", reason="; ".join(dict.fromkeys(problems)))
        return NOT_AFFECTED

    def _range_verdict(self, version: str) -> Verdict | None:
        unknown: Verdict | None = None
        for r in self.ranges:
            verdict = r.evaluate(version)
            if verdict.affected:
                return verdict
            if verdict.status == "unknown":
                unknown = verdict
        return unknown


def compile_range(r: Range, order: VersionOrder) -> CompiledRange:
    """Parse and sort a range's events; raises :class:`IncomparableVersion` on a bad one."""
    points: list[_Point] = []
    limits: list[_Point] = []
    for e in r.events:
        if (e.kind == "introduced" and e.version == "0") or (
            e.kind == "limit" and "*" in e.version
        ):
            point = _Point(e.kind, e.version, None)
        else:
            point = _Point(e.kind, e.version, order.key(e.version))
        (limits if e.kind == "limit" else points).append(point)
    points.sort(key=functools.cmp_to_key(_compare_points))
    return CompiledRange(type=r.type, points=tuple(points), limits=tuple(limits), order=order)


def compile_affected(
    affected: Affected,
    ecosystem_order: VersionOrder | None,
    semver_order: VersionOrder,
    *,
    strip_v: bool = False,
) -> CompiledAffected:
    """Compile an entry: ``SEMVER`` ranges use SemVer, ``ECOSYSTEM`` ranges the ecosystem's order.

    ``ecosystem_order`` is None for an ecosystem without a trusted order: its ECOSYSTEM ranges
    are then reported broken, and only its ``versions`` list can still decide.
    """
    compiled: list[CompiledRange] = []
    broken: list[str] = []
    git_only = bool(affected.ranges)
    for r in affected.ranges:
        if r.type == "GIT":
            continue
        git_only = False
        order = semver_order if r.type == "SEMVER" else ecosystem_order
        if order is None:
            broken.append("ECOSYSTEM range in an ecosystem chainproof has no version order for")
            continue
        try:
            compiled.append(compile_range(r, order))
        except IncomparableVersion as exc:
            broken.append(f"{r.type} range not comparable: {exc}")
    return CompiledAffected(
        versions=frozenset(affected.versions),
        ranges=tuple(compiled),
        broken=tuple(broken),
        undecidable=git_only and not affected.versions,
        strip_v=strip_v,
    )


def evaluate(
    version: str,
    affected: Affected,
    ecosystem_order: VersionOrder | None,
    semver_order: VersionOrder,
) -> Verdict:
    """One-shot form of :func:`compile_affected` + :meth:`CompiledAffected.evaluate`."""
    return compile_affected(affected, ecosystem_order, semver_order).evaluate(version)


def _compare_points(a: _Point, b: _Point) -> int:
    ka, kb = a.key, b.key
    if ka is None and kb is None:
        c = 0
    elif ka is None:
        c = -1  # "0" is below everything (limits with "*" are never sorted here)
    elif kb is None:
        c = 1
    elif ka < kb:
        c = -1
    elif kb < ka:
        c = 1
    else:
        c = 0
    return c or (_KIND_RANK[a.kind] - _KIND_RANK[b.kind])
