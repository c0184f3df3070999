"""The ``packages`` check: the image contains no denied package (by purl) or licence.

``deniedPurls`` match as :func:`chainproof.ingest.purls.purl_matches` does: without a version
every version is denied, with qualifiers only those. ``deniedLicenses`` are SPDX identifiers,
matched against each identifier of a package's licence expression (so ``GPL-3.0-only`` denies
``MIT OR GPL-3.0-only`` too: either licence may be the one that applies). When the image has
more packages than were read, the check fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.ingest.purls import BadPurl, canonical_purl, purl_matches
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.attested_evidence import KEY, read_attested_by, scoped, signed_phrase
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult

_LICENSE_ID = re.compile(r"[A-Za-z0-9.+-]+")
_OPERATORS = frozenset({"AND", "OR", "WITH"})


@dataclass(frozen=True, slots=True)
class PackageRules:
    key: ClassVar[str] = "packages"
    denied_purls: tuple[str, ...] = ()
    denied_licenses: frozenset[str] = frozenset()
    attested_by: tuple[str, ...] = ()

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        f = FieldReader(
            checks.problems,
            checks.at(cls.key),
            checks.raw(cls.key),
            ("deniedPurls", "deniedLicenses", KEY),
        )
        purls: list[str] = []
        for i, text in enumerate(f.string_list("deniedPurls")):
            try:
                purls.append(canonical_purl(text))
            except BadPurl as exc:
                checks.problems.add(f"{f.at('deniedPurls')}[{i}]", str(exc))
        licenses = frozenset(x.upper() for x in f.string_list("deniedLicenses"))
        if not purls and not licenses and f.ok:
            checks.problems.add(checks.at(cls.key), "must deny at least one purl or licence")
        return cls(tuple(purls), licenses, read_attested_by(f))

    def to_dict(self) -> Any:
        out: dict[str, Any] = {}
        if self.denied_purls:
            out["deniedPurls"] = list(self.denied_purls)
        if self.denied_licenses:
            out["deniedLicenses"] = sorted(self.denied_licenses)
        if self.attested_by:
            out[KEY] = list(self.attested_by)
        return out

    @property
    def attestors(self) -> frozenset[str]:
        return frozenset(self.attested_by)

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        ctx = scoped(ctx, self.attested_by)
        signed = signed_phrase(self.attested_by)
        name = (
            f"denied packages and licences (packages{signed})"
            if signed
            else ("denied packages and licences")
        )
        image = ctx.image.canonical
        # The same package may be both recorded (a PACKAGE occurrence) and signed (read from
        # an attested SBOM): judged, and counted, once.
        unique = {(p.name, p.version, p.purl, p.license): p for p in ctx.evidence.packages}
        packages = tuple(unique.values())
        consulted = tuple(p.occurrence for p in packages[:50] if p.occurrence)
        if ctx.evidence.packages_truncated:
            return [
                RequirementResult(
                    "packages",
                    name,
                    False,
                    f"{image} has more recorded packages than the judge reads, so denied "
                    "packages cannot be ruled out",
                    consulted,
                )
            ]
        if not packages:
            return [
                RequirementResult(
                    "packages",
                    name,
                    False,
                    f"no packages{signed} are recorded for {image}, so denied packages cannot "
                    "be ruled out: "
                    + (
                        "ingest the SBOM signed by that attestor (chainproof ingest --attestor)"
                        if signed
                        else "ingest an SBOM of the image"
                    ),
                )
            ]
        violations: list[str] = []
        for p in packages:
            for pattern in self.denied_purls:
                if p.purl and purl_matches(pattern, p.purl):
                    violations.append(f"{p.purl} is denied ({pattern})")
            ids = {t.upper() for t in _LICENSE_ID.findall(p.license)} - _OPERATORS
            for lic in sorted(ids & self.denied_licenses):
                violations.append(f"{p.name} {p.version} is licensed {lic}")
        if violations:
            shown = "; ".join(violations[:10])
            more = f" and {len(violations) - 10} more" if len(violations) > 10 else ""
            return [
                RequirementResult(
                    "packages",
                    name,
                    False,
                    f"{image} contains denied packages: {shown}{more}; remove or replace them",
                    consulted,
                )
            ]
        return [
            RequirementResult(
                "packages", name, True, f"none of {len(packages)} packages is denied", consulted
            )
        ]
