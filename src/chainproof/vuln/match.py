"""Matching installed packages against an index of OSV advisories.

:class:`AdvisoryIndex` holds advisories by ``(ecosystem, normalised name)`` — the key an SBOM
package and an ``affected[].package`` meet on — and answers :meth:`AdvisoryIndex.match` for a
list of :class:`~chainproof.vuln.packages.Package`. Each ``affected[]`` entry is compiled for
its ecosystem's order the first time a package asks about it, and verdicts are remembered
per ``(ecosystem, name, version)`` until an advisory touching that key changes; so is each
package's whole result (its findings and undecided reasons), so an image whose packages were
seen before costs a dictionary lookup per package. Images built on the same base share most
packages, so a fleet's SBOMs cost about as much as their distinct packages.

A :class:`MatchReport` has three parts, and nothing is dropped between them:

- ``findings``: one per (package, advisory) that is affected, with the fixed version when the
  record names one;
- ``unknown``: a package that cannot be decided — no ecosystem, a version its ecosystem's
  order cannot read, a record whose ranges cannot be compared — with the reason;
- ``scanned``: how many packages were looked at.

Withdrawn advisories are never indexed (:meth:`AdvisoryIndex.put` of a withdrawn record
removes the older copy). Which images a change touches is the caller's business: the index
only says which ``(ecosystem, name)`` keys an advisory covers (:func:`keys_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chainproof.vuln import ecosystems
from chainproof.vuln.osv import Advisory
from chainproof.vuln.packages import Package
from chainproof.vuln.ranges import CompiledAffected, Verdict, compile_affected
from chainproof.vuln.versions import IncomparableVersion, VersionOrder, semver

Key = tuple[str, str]  # (OSV base ecosystem, normalised package name)
#: Distinct packages whose results are remembered at most (then they are all forgotten).
MAX_REMEMBERED = 500_000


@dataclass(frozen=True, slots=True)
class Finding:
    advisory_id: str
    package: Package
    ecosystem: str
    #: The name and version that matched: the source package's, when the record names it.
    matched_name: str
    matched_version: str
    verdict: Verdict

    @property
    def fixed_version(self) -> str | None:
        return self.verdict.fixed_version


@dataclass(frozen=True, slots=True)
class Undecided:
    package: Package
    reason: str
    advisory_id: str | None = None


@dataclass(slots=True)
class MatchReport:
    findings: list[Finding] = field(default_factory=list)
    unknown: list[Undecided] = field(default_factory=list)
    scanned: int = 0


@dataclass(slots=True)
class _Entry:
    advisory_id: str
    affected_index: int
    release: str | None
    compiled: CompiledAffected | None = None


def keys_of(advisory: Advisory) -> set[Key]:
    """The ``(ecosystem, normalised name)`` keys an advisory's affected packages cover."""
    out: set[Key] = set()
    for entry in advisory.affected:
        if entry.package is None:
            continue
        base, _ = ecosystems.split_ecosystem(entry.package.ecosystem)
        eco = ecosystems.lookup(base)
        name = eco.normalize(entry.package.name) if eco else entry.package.name
        out.add((eco.name if eco else base, name))
    return out


class AdvisoryIndex:
    """Advisories by package key, compiled lazily, with verdicts cached per package version."""

    def __init__(self) -> None:
        self._entries: dict[Key, list[_Entry]] = {}
        self._advisories: dict[str, Advisory] = {}
        self._orders: dict[str, VersionOrder] = {}
        self._semver = semver()
        # (ecosystem, name) → version → the verdicts that are not "not affected".
        self._verdicts: dict[Key, dict[str, list[tuple[_Entry, Verdict]]]] = {}
        # A package's findings and undecided reasons, forgotten with the keys it looks up.
        self._results: dict[Package, tuple[list[Finding], list[Undecided]]] = {}
        self._results_by_key: dict[Key, list[Package]] = {}

    def __len__(self) -> int:
        return len(self._advisories)

    def __contains__(self, advisory_id: object) -> bool:
        return advisory_id in self._advisories

    def get(self, advisory_id: str) -> Advisory | None:
        return self._advisories.get(advisory_id)

    def put(self, advisory: Advisory) -> set[Key]:
        """Add or replace one advisory (a withdrawn one is removed); return the keys touched."""
        touched = self.remove(advisory.id)
        if advisory.is_withdrawn:
            return touched
        self._advisories[advisory.id] = advisory
        for i, entry in enumerate(advisory.affected):
            if entry.package is None:
                continue
            base, release = ecosystems.split_ecosystem(entry.package.ecosystem)
            eco = ecosystems.lookup(base)
            if eco is not None and not eco.suffix_is_release:
                release = None  # Maven/Packagist suffixes are repositories, not releases
            name = eco.normalize(entry.package.name) if eco else entry.package.name
            key = (eco.name if eco else base, name)
            self._entries.setdefault(key, []).append(_Entry(advisory.id, i, release))
            touched.add(key)
        self._forget(touched)
        return touched

    def remove(self, advisory_id: str) -> set[Key]:
        old = self._advisories.pop(advisory_id, None)
        if old is None:
            return set()
        touched = keys_of(old)
        for key in touched:
            kept = [e for e in self._entries.get(key, []) if e.advisory_id != advisory_id]
            if kept:
                self._entries[key] = kept
            else:
                self._entries.pop(key, None)
        self._forget(touched)
        return touched

    def match(self, packages: Iterable[Package]) -> MatchReport:
        report = MatchReport()
        results = self._results
        findings, unknown = report.findings, report.unknown
        for package in packages:
            report.scanned += 1
            result = results.get(package)
            if result is None:
                result = self._result_of(package)
            if result[0]:
                findings += result[0]
            if result[1]:
                unknown += result[1]
        return report

    def _result_of(self, package: Package) -> tuple[list[Finding], list[Undecided]]:
        one = MatchReport()
        self._match_one(package, one)
        if len(self._results) >= MAX_REMEMBERED:
            self._results.clear()
            self._results_by_key.clear()
        result = (one.findings, one.unknown)
        self._results[package] = result
        for eco_name, name, _ in package.lookups():
            self._results_by_key.setdefault((eco_name, name), []).append(package)
        return result

    def _match_one(self, package: Package, report: MatchReport) -> None:
        if package.unscannable:
            report.unknown.append(Undecided(package, package.unscannable))
            return
        lookups = package.lookups()
        if not lookups:
            report.unknown.append(
                Undecided(package, f"ecosystem {package.ecosystem!r} has no version order")
            )
            return
        order = self._order(lookups[0][0])
        if order is not None:
            # A version the ecosystem cannot read is reported even when no advisory names the
            # package today: tomorrow's advisory would not be able to judge it either.
            try:
                order.key(package.version)
            except IncomparableVersion as exc:
                report.unknown.append(Undecided(package, str(exc)))
                return
        seen: set[str] = set()
        for eco_name, name, version in lookups:
            for entry, verdict in self._verdicts_for(eco_name, name, version):
                if entry.advisory_id in seen:
                    continue
                if not ecosystems.same_release(entry.release, package.release):
                    continue
                if verdict.affected:
                    seen.add(entry.advisory_id)
                    report.findings.append(
                        Finding(entry.advisory_id, package, eco_name, name, version, verdict)
                    )
                elif verdict.status == "unknown":
                    seen.add(entry.advisory_id)
                    report.unknown.append(Undecided(package, verdict.reason, entry.advisory_id))

    def _verdicts_for(self, eco: str, name: str, version: str) -> list[tuple[_Entry, Verdict]]:
        key = (eco, name)
        by_version = self._verdicts.get(key)
        if by_version is None:
            by_version = self._verdicts[key] = {}
        cached = by_version.get(version)
        if cached is not None:
            return cached
        out: list[tuple[_Entry, Verdict]] = []
        for entry in self._entries.get(key, ()):
            compiled = entry.compiled
            if compiled is None:
                compiled = entry.compiled = self._compile(eco, entry)
            verdict = compiled.evaluate(version)
            if verdict.status != "not_affected":
                out.append((entry, verdict))
        by_version[version] = out
        return out

    def _compile(self, eco: str, entry: _Entry) -> CompiledAffected:
        affected = self._advisories[entry.advisory_id].affected[entry.affected_index]
        return compile_affected(affected, self._order(eco), self._semver, strip_v=(eco == "Go"))

    def _order(self, eco: str) -> VersionOrder | None:
        order = self._orders.get(eco)
        if order is None:
            known = ecosystems.lookup(eco)
            if known is None:
                return None
            order = self._orders[eco] = known.order_factory()
        return order

    def _forget(self, keys: set[Key]) -> None:
        for key in keys:
            self._verdicts.pop(key, None)
            for package in self._results_by_key.pop(key, ()):
                self._results.pop(package, None)
