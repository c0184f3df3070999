"""What one occurrence says about its image, and the per-image summary folded from that.

The dashboard lists images by their summary: how many occurrences describe the image, which
attestation notes it has, its open findings per severity after VEX (and the worst), and when
it was last scanned. The store keeps those summaries on write (ADR 0122): each occurrence
written is reduced once to its :class:`Facts` (a narrow row beside it), and an image's
summary is :func:`fold` over the facts of that image's occurrences. Reverse impact (which
images does a CVE or a package affect) reads the :class:`Term` rows the same reduction
makes.

Pure: messages in, values out; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chainproof.domain.messages import Occurrence

#: Severity names in increasing order (Grafeas' Severity enum, UNSPECIFIED first).
SEVERITIES = ("SEVERITY_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
RANK = {name: i for i, name in enumerate(SEVERITIES)}
#: VEX states that close a finding: the image is not exposed to it.
CLOSED_VEX = frozenset({"NOT_AFFECTED", "FIXED"})
#: The kinds whose time says when the image was last scanned.
SCAN_KINDS = frozenset({"VULNERABILITY", "DISCOVERY"})

#: Term fields: a vulnerability ID (the note ID of a finding, lower case), a package name
#: (lower case), a purl (lower case), a package a finding names (lower case).
TERM_ID, TERM_NAME, TERM_PURL, TERM_AFFECTED = "id", "name", "purl", "affected"


def enum_name(msg: Any, name: str) -> str:
    """An enum field's value name; "" for a number the proto does not define (stored data is
    not trusted to be valid)."""
    descriptor = msg.DESCRIPTOR.fields_by_name[name].enum_type
    value = descriptor.values_by_number.get(getattr(msg, name))
    return "" if value is None else str(value.name)


@dataclass(frozen=True, slots=True)
class Finding:
    """One VULNERABILITY occurrence, as a person reads it."""

    name: str
    cve: str
    severity: str
    vex_state: str  # "" when no VEX assessment is attached
    vex_details: str
    packages: tuple[str, ...]
    fix_available: bool

    @property
    def open(self) -> bool:
        return self.vex_state not in CLOSED_VEX

    @property
    def text(self) -> str:
        vex = self.vex_state or "no VEX"
        return f"{self.cve} {self.severity} ({vex}) {', '.join(self.packages)}".strip()


def finding(occurrence: Occurrence, note_id: str) -> Finding:
    v = occurrence.vulnerability
    severity = enum_name(v, "effective_severity")
    if severity in ("", "SEVERITY_UNSPECIFIED"):
        severity = enum_name(v, "severity") or "SEVERITY_UNSPECIFIED"
    vex_state = vex_details = ""
    cve = note_id
    if v.HasField("vex_assessment"):
        a = v.vex_assessment
        vex_state = enum_name(a, "state")
        if vex_state == "STATE_UNSPECIFIED":
            vex_state = ""
        vex_details = str(a.justification.details) or "; ".join(str(i) for i in a.impacts)
        if a.vulnerability_id:
            cve = str(a.vulnerability_id)
    packages = tuple(
        str(p.affected_package or p.affected_cpe_uri) for p in v.package_issue if p is not None
    )
    fix = bool(v.fix_available) or any(p.fix_available for p in v.package_issue)
    return Finding(str(occurrence.name), cve, severity, vex_state, vex_details, packages, fix)


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    purl: str
    occurrence: str

    @property
    def text(self) -> str:
        return f"{self.name} {self.version} {self.purl}".strip()


def package(occurrence: Occurrence, note_id: str) -> Package:
    # Every write of a PACKAGE occurrence reduces it to its facts (an SBOM: 10,000 per
    # ingest), so each field is read once and the first purl found ends the search.
    p = occurrence.package
    version = p.version
    text: str = version.full_name
    if not text:
        text = version.name
        revision = version.revision
        if revision:
            text = f"{text}-{revision}"
    # Grafeas v1 has no purl field. The ingestion contract (services/scribe/scanning.py) puts
    # it in a location's cpeUri, or the package's cpeUri; the note ID is a last resort.
    purl = ""
    for loc in p.location:
        uri: str = loc.cpe_uri
        if uri.startswith("pkg:"):
            purl = uri
            break
    else:
        uri = p.cpe_uri
        if uri.startswith("pkg:"):
            purl = uri
        elif note_id.startswith("pkg:"):
            purl = note_id
    return Package(p.name, text, purl, occurrence.name)


def occurrence_time(occurrence: Occurrence) -> datetime | None:
    """When the occurrence was last written (its update time, else its create time)."""
    stamp = occurrence.update_time if occurrence.HasField("update_time") else occurrence.create_time
    if not stamp.seconds and not stamp.nanos:
        return None
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


@dataclass(frozen=True, slots=True)
class Term:
    """One thing a reverse-impact query may match an occurrence by."""

    field: str
    term: str  # lower case
    kind: str
    detail: str  # what the page shows as "what matched"


@dataclass(frozen=True, slots=True)
class Facts:
    """What one occurrence contributes to its image's summary."""

    #: ``projects/P/notes/N`` of an ATTESTATION occurrence, else "".
    attestation_note: str = ""
    #: The severity rank (index in SEVERITIES) of an open finding; -1 for anything else.
    open_rank: int = -1
    #: The time of a VULNERABILITY or DISCOVERY occurrence.
    scan_time: datetime | None = None
    terms: tuple[Term, ...] = ()


def facts_of(kind: str, note_project: str, note_id: str, occurrence: Occurrence) -> Facts:
    if kind == "ATTESTATION":
        return Facts(attestation_note=f"projects/{note_project}/notes/{note_id}")
    scan_time = occurrence_time(occurrence) if kind in SCAN_KINDS else None
    if kind == "VULNERABILITY":
        f = finding(occurrence, note_id)
        terms = {(TERM_ID, note_id.lower())}
        terms |= {(TERM_AFFECTED, p.lower()) for p in f.packages if p}
        return Facts(
            open_rank=RANK.get(f.severity, 0) if f.open else -1,
            scan_time=scan_time,
            terms=tuple(Term(a, b, kind, f.text) for a, b in sorted(terms)),
        )
    if kind == "PACKAGE":
        p = package(occurrence, note_id)
        text = p.text
        # In field order (TERM_NAME sorts before TERM_PURL), as a sorted set of the pairs.
        name = (Term(TERM_NAME, p.name.lower(), kind, text),) if p.name else ()
        purl = (Term(TERM_PURL, p.purl.lower(), kind, text),) if p.purl else ()
        return Facts(terms=name + purl)
    return Facts(scan_time=scan_time)


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One image as the occurrences of a scope (one project, or every project) describe it."""

    resource: str
    occurrences: int = 0
    #: ``projects/P/notes/N`` of every attestation about the image, sorted.
    attestation_notes: tuple[str, ...] = ()
    #: Open findings per severity, in SEVERITIES order.
    open_counts: tuple[int, ...] = (0,) * len(SEVERITIES)
    last_scan: datetime | None = None

    @property
    def worst_open(self) -> str:
        """The worst severity with an open finding; "" when none is open."""
        for rank in range(len(SEVERITIES) - 1, -1, -1):
            if self.open_counts[rank]:
                return SEVERITIES[rank]
        return ""

    @property
    def worst_rank(self) -> int:
        return RANK[self.worst_open] if self.worst_open else -1


@dataclass(frozen=True, slots=True)
class FactGroup:
    """Facts of several occurrences of one image that agree: what a store groups by."""

    resource: str
    attestation_note: str
    open_rank: int
    count: int
    scan_time: datetime | None


@dataclass
class _Acc:
    occurrences: int = 0
    notes: set[str] = field(default_factory=set)
    counts: list[int] = field(default_factory=lambda: [0] * len(SEVERITIES))
    last_scan: datetime | None = None


def fold(groups: Iterable[FactGroup]) -> dict[str, ImageSummary]:
    """The summary of each image the groups are about (an image with no occurrence left has
    none)."""
    acc: dict[str, _Acc] = {}
    for g in groups:
        if g.count <= 0:
            continue
        a = acc.setdefault(g.resource, _Acc())
        a.occurrences += g.count
        if g.attestation_note:
            a.notes.add(g.attestation_note)
        if 0 <= g.open_rank < len(SEVERITIES):
            a.counts[g.open_rank] += g.count
        if g.scan_time is not None and (a.last_scan is None or g.scan_time > a.last_scan):
            a.last_scan = g.scan_time
    return {
        r: ImageSummary(r, a.occurrences, tuple(sorted(a.notes)), tuple(a.counts), a.last_scan)
        for r, a in acc.items()
    }
