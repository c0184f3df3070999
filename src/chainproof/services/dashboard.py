"""The dashboard's read model: what the web UI shows, computed from the store and the judge.

The UI owns no data. Images are the canonical resources that occurrences of any project
describe; their summaries (attestations per note, worst open severity after VEX, scan age, last
decision) are folded from the stored occurrences and the decision log. Occurrences of every
Grafeas kind are handled generically (kind, note, resource, the message as JSON), with a few
fields lifted out for the kinds a person asks about first (ATTESTATION, BUILD, PACKAGE,
VULNERABILITY, DISCOVERY).

Reads are bounded: a scan that reaches ``max_occurrences`` stops and says so (the page shows
that its figures are partial) instead of running without end. Time is a parameter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Or
from chainproof.domain.images import canonical_resource
from chainproof.domain.messages import to_json
from chainproof.errors import InvalidArgument
from chainproof.store.port import DecisionQuery, DecisionRecord, MetadataStore, OccurrenceRecord

#: Severity names in increasing order (Grafeas' Severity enum, UNSPECIFIED first).
SEVERITIES = ("SEVERITY_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_RANK = {name: i for i, name in enumerate(SEVERITIES)}
#: VEX states that close a finding: the image is not exposed to it.
_CLOSED_VEX = frozenset({"NOT_AFFECTED", "FIXED"})
_PAGE = 1000


def enum_name(msg: Any, name: str) -> str:
    """An enum field's value name; "" for a number the proto does not define (stored data is
    not trusted to be valid)."""
    descriptor = msg.DESCRIPTOR.fields_by_name[name].enum_type
    value = descriptor.values_by_number.get(getattr(msg, name))
    return "" if value is None else str(value.name)


@dataclass(frozen=True, slots=True)
class Finding:
    """One VULNERABILITY occurrence, as the UI lists it."""

    name: str
    cve: str
    severity: str
    vex_state: str  # "" when no VEX assessment is attached
    vex_details: str
    packages: tuple[str, ...]
    fix_available: bool

    @property
    def open(self) -> bool:
        return self.vex_state not in _CLOSED_VEX


def finding_of(record: OccurrenceRecord) -> Finding:
    v = record.occurrence.vulnerability
    severity = enum_name(v, "effective_severity")
    if severity in ("", "SEVERITY_UNSPECIFIED"):
        severity = enum_name(v, "severity") or "SEVERITY_UNSPECIFIED"
    vex_state = vex_details = ""
    cve = record.note_id
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
    return Finding(record.occurrence.name, cve, severity, vex_state, vex_details, packages, fix)


@dataclass(frozen=True, slots=True)
class PackageRow:
    name: str
    version: str
    purl: str
    occurrence: str


def _purl_of(record: OccurrenceRecord) -> str:
    p = record.occurrence.package
    # Grafeas v1 has no purl field. The ingestion contract (services/scribe/scanning.py) puts it in
    # a location's cpeUri, or the package's cpeUri; the note ID is a last resort.
    candidates = [str(loc.cpe_uri) for loc in p.location]
    candidates += [str(p.cpe_uri), record.note_id]
    return next((c for c in candidates if c.startswith("pkg:")), "")


def package_row(record: OccurrenceRecord) -> PackageRow:
    p = record.occurrence.package
    version = p.version
    text = str(version.full_name or version.name)
    if version.revision and not version.full_name:
        text = f"{text}-{version.revision}"
    return PackageRow(str(p.name), text, _purl_of(record), record.occurrence.name)


@dataclass
class ImageSummary:
    resource: str
    kinds: Counter[str] = field(default_factory=Counter)
    #: "projects/P/notes/N" of every ATTESTATION occurrence about the image.
    attestation_notes: set[str] = field(default_factory=set)
    worst_open: str = ""
    last_scan: datetime | None = None
    last_decision: DecisionRecord | None = None

    @property
    def last_outcome(self) -> str:
        return self.last_decision.outcome if self.last_decision is not None else ""


@dataclass(frozen=True, slots=True)
class Catalogue:
    images: dict[str, ImageSummary]
    open_by_severity: Counter[str]
    #: The scan stopped at the bound: the figures cover only the first occurrences read.
    partial: bool
    occurrences_read: int


@dataclass(frozen=True, slots=True)
class Overview:
    catalogue: Catalogue
    decisions_24h: Counter[str]
    breakglass_24h: int
    #: Decisions per hour over the last 24 h, oldest first: (hour start, outcome counts).
    hourly: list[tuple[datetime, Counter[str]]]
    decisions_partial: bool


def _worse(a: str, b: str) -> str:
    return a if _RANK.get(a, -1) >= _RANK.get(b, -1) else b


def note_name(record: OccurrenceRecord) -> str:
    return f"projects/{record.note_project}/notes/{record.note_id}"


def _occurrence_time(record: OccurrenceRecord) -> datetime | None:
    occ = record.occurrence
    stamp = occ.update_time if occ.HasField("update_time") else occ.create_time
    if not stamp.seconds and not stamp.nanos:
        return None
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


class Dashboard:
    """Reads for the web UI pages; see the module docstring for what is bounded and how."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        max_occurrences: int = 200_000,
        max_decisions: int = 20_000,
    ) -> None:
        self._store = store
        self.max_occurrences = max_occurrences
        self.max_decisions = max_decisions

    # ------------------------------------------------------------------ raw reads

    async def projects(self) -> list[str]:
        out: list[str] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                page = await s.projects.page(after, _PAGE)
                out.extend(page)
                if len(page) < _PAGE:
                    return out
                after = page[-1]

    async def _occurrences(
        self, where: Expr | None = None, projects: Sequence[str] | None = None
    ) -> tuple[list[OccurrenceRecord], bool]:
        """Occurrences of ``projects`` (every project when None) matching ``where``, up to
        the bound."""
        out: list[OccurrenceRecord] = []
        for project in await self.projects() if projects is None else projects:
            after: str | None = None
            async with self._store.session(readonly=True) as s:
                while True:
                    left = self.max_occurrences - len(out)
                    if left <= 0:
                        return out, True
                    page = await s.occurrences.page(project, where, after, min(_PAGE, left))
                    out.extend(page)
                    if len(page) < min(_PAGE, left):
                        break
                    after = page[-1].occurrence_id
        return out, False

    async def decisions(
        self, query: DecisionQuery, limit: int
    ) -> tuple[list[DecisionRecord], bool]:
        """The newest ``limit`` decisions matching ``query`` (newest first), and whether more
        matched than the bound lets the UI read."""
        rows: list[DecisionRecord] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                page = await s.decisions.page(query, after, _PAGE)
                rows.extend(page)
                if len(page) < _PAGE:
                    break
                if len(rows) >= self.max_decisions:
                    rows.sort(key=lambda r: r.decision_id, reverse=True)
                    return rows[:limit], True
                after = page[-1].decision_id
        rows.sort(key=lambda r: r.decision_id, reverse=True)
        return rows[:limit], len(rows) > limit

    async def decision(self, project: str, decision_id: str) -> DecisionRecord | None:
        # The log has no get-by-ID; IDs start with their time, so a window around it is exact.
        try:
            micros = int(decision_id.split("-", 1)[0], 16)
        except ValueError:
            raise InvalidArgument(f"{decision_id!r} is not a decision ID") from None
        try:
            at = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidArgument(f"{decision_id!r} is not a decision ID") from None
        window = DecisionQuery(
            project=project, since=at - timedelta(seconds=1), until=at + timedelta(seconds=1)
        )
        rows, _ = await self.decisions(window, self.max_decisions)
        return next((r for r in rows if r.decision_id == decision_id), None)

    # ------------------------------------------------------------------ pages

    async def catalogue(self, project: str, projects: Sequence[str] | None = None) -> Catalogue:
        records, partial = await self._occurrences(projects=projects)
        images: dict[str, ImageSummary] = {}
        open_by_severity: Counter[str] = Counter()
        for r in records:
            if not r.resource:
                continue
            summary = images.get(r.resource)
            if summary is None:
                summary = images[r.resource] = ImageSummary(r.resource)
            summary.kinds[r.kind] += 1
            if r.kind == "ATTESTATION":
                summary.attestation_notes.add(note_name(r))
            elif r.kind == "VULNERABILITY":
                f = finding_of(r)
                if f.open:
                    open_by_severity[f.severity] += 1
                    summary.worst_open = _worse(f.severity, summary.worst_open)
            if r.kind in ("VULNERABILITY", "DISCOVERY"):
                t = _occurrence_time(r)
                if t is not None and (summary.last_scan is None or t > summary.last_scan):
                    summary.last_scan = t
        recent, _ = await self.decisions(DecisionQuery(project=project), self.max_decisions)
        for d in reversed(recent):  # oldest first, so the newest wins
            for image in d.images:
                if image in images:
                    images[image].last_decision = d
        return Catalogue(images, open_by_severity, partial, len(records))

    async def overview(
        self, project: str, now: datetime, projects: Sequence[str] | None = None
    ) -> Overview:
        catalogue = await self.catalogue(project, projects)
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        rows, partial = await self.decisions(
            DecisionQuery(project=project, since=start), self.max_decisions
        )
        day: Counter[str] = Counter()
        hourly = [(start + timedelta(hours=h), Counter[str]()) for h in range(24)]
        breakglass = 0
        for d in rows:
            hour = int((d.time - start).total_seconds() // 3600)
            if 0 <= hour < 24:
                hourly[hour][1][d.outcome] += 1
            if d.time >= now - timedelta(hours=24):
                day[d.outcome] += 1
                if d.data.get("breakglass"):
                    breakglass += 1
        return Overview(catalogue, day, breakglass, hourly, partial)

    async def image(
        self, text: str, projects: Sequence[str] | None = None
    ) -> tuple[str, list[OccurrenceRecord], bool]:
        """The canonical resource of ``text`` and every occurrence about it."""
        resource = canonical_resource(text)
        records, partial = await self._occurrences(
            Compare(FilterColumn.RESOURCE, resource), projects
        )
        records.sort(key=lambda r: (r.kind, r.note_project, r.note_id, r.occurrence_id))
        return resource, records, partial

    async def affected(
        self, query: str, projects: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, str, str]], bool]:
        """Images a vulnerability ID or a package (name, purl or purl prefix) affects:
        (image, kind, what matched).

        A vulnerability ID (CVE-…, GHSA-…) is looked up by note ID, the Grafeas convention
        for scan findings, through the store's index; package queries read every PACKAGE and
        VULNERABILITY occurrence (bounded)."""
        q = query.strip()
        if not q:
            return [], False
        if _VULN_ID.match(q):
            return await self._affected_by_id(q, projects)
        needle = q.lower()
        out: set[tuple[str, str, str]] = set()
        for kind in ("VULNERABILITY", "PACKAGE"):
            records, partial = await self._occurrences(Compare(FilterColumn.KIND, kind), projects)
            for r in records:
                if kind == "VULNERABILITY":
                    f = finding_of(r)
                    if any(p.lower().startswith(needle) for p in f.packages):
                        out.add((r.resource, kind, _finding_text(f)))
                else:
                    p = package_row(r)
                    if needle == p.name.lower() or (
                        needle.startswith("pkg:") and p.purl.lower().startswith(needle)
                    ):
                        out.add((r.resource, kind, f"{p.name} {p.version} {p.purl}".strip()))
            if partial:
                return sorted(out), True
        return sorted(out), False

    async def _affected_by_id(
        self, vuln_id: str, projects: Sequence[str] | None
    ) -> tuple[list[tuple[str, str, str]], bool]:
        where = And(
            (
                Compare(FilterColumn.KIND, "VULNERABILITY"),
                Or(
                    (
                        Compare(FilterColumn.NOTE_ID, vuln_id),
                        Compare(FilterColumn.NOTE_ID, vuln_id.upper()),
                    )
                ),
            )
        )
        records, partial = await self._occurrences(where, projects)
        out = {(r.resource, r.kind, _finding_text(finding_of(r))) for r in records}
        return sorted(out), partial


_VULN_ID = re.compile(r"^(CVE|GHSA|OSV|PYSEC|GO|RUSTSEC|DSA|DLA|USN|ALAS)-", re.IGNORECASE)


def _finding_text(f: Finding) -> str:
    return f"{f.cve} {f.severity} ({f.vex_state or 'no VEX'}) {', '.join(f.packages)}".strip()


def occurrence_json(record: OccurrenceRecord) -> dict[str, Any]:
    return dict(record.document) if record.document is not None else to_json(record.occurrence)


@dataclass(frozen=True, slots=True)
class StoredSbom:
    """An SBOM ingestion stored, as an image's SBOM_REFERENCE occurrence points at it."""

    project: str
    digest: str  # sha256:<hex> of the document's bytes
    format: str  # the SBOM_REFERENCE's mimeType: cyclonedx-json, spdx-tag-value, …


_DIGEST_CHARS = frozenset("0123456789abcdef")


def stored_sbom(record: OccurrenceRecord) -> StoredSbom | None:
    """The stored document an SBOM_REFERENCE occurrence points at, or None when it points
    elsewhere (a reference someone wrote by hand names no document chainproof holds)."""
    predicate = (
        (occurrence_json(record).get("sbomReference") or {}).get("payload", {}).get("predicate")
    )
    if not isinstance(predicate, dict):
        return None
    location = str(predicate.get("location") or "")
    digest = str((predicate.get("digest") or {}).get("sha256") or "")
    if len(digest) != 64 or not set(digest) <= _DIGEST_CHARS:
        return None
    # Only our own document route in the occurrence's own project: a location is data, and
    # data does not choose which project's document the page links to.
    if location != f"/v1/projects/{record.project}/documents/sha256:{digest}":
        return None
    return StoredSbom(record.project, f"sha256:{digest}", str(predicate.get("mimeType") or ""))


def by_kind(records: Iterable[OccurrenceRecord]) -> dict[str, list[OccurrenceRecord]]:
    out: dict[str, list[OccurrenceRecord]] = {}
    for r in records:
        out.setdefault(r.kind, []).append(r)
    return out


def worst(severities: Sequence[str]) -> str:
    best = ""
    for s in severities:
        best = _worse(s, best)
    return best


def attestation_keys(record: OccurrenceRecord) -> tuple[str, str]:
    """(form, key IDs) of an ATTESTATION occurrence: the signature form and the key IDs its
    signatures name. Those IDs are hints from the signer; only verification proves them."""
    occ = record.occurrence
    keys = [str(s.public_key_id) for s in occ.attestation.signatures]
    form = "signed payload" if occ.attestation.serialized_payload else "unsigned"
    for envelope in (occ.envelope, occ.dsse_attestation.envelope):
        if envelope.payload or envelope.signatures:
            form = "DSSE"
            keys.extend(str(s.keyid) for s in envelope.signatures)
    return form, ", ".join(k for k in keys if k) or "—"


def build_summary(record: OccurrenceRecord) -> tuple[str, str]:
    """(builder, source) of a BUILD occurrence, from whichever provenance form it carries."""
    b = record.occurrence.build
    builder = (
        str(b.in_toto_slsa_provenance_v1.predicate.run_details.builder.id)
        or str(b.intoto_statement.slsa_provenance.builder.id)
        or str(b.intoto_statement.slsa_provenance_zero_two.builder.id)
        or str(b.provenance.builder_version)
        or str(b.provenance.creator)
    )
    source = _first_source(occurrence_json(record).get("build", {}))
    return builder or "—", source or "—"


_SOURCE_KEYS = ("repoUrl", "uri", "url", "repository")


def _first_source(data: Any, depth: int = 0) -> str:
    # Provenance forms put the source in different places (materials, resolvedDependencies,
    # sourceProvenance.context.git.url, configSource.uri): take the first URL-like value.
    if depth > 8:
        return ""
    if isinstance(data, dict):
        for key in _SOURCE_KEYS:
            value = data.get(key)
            if isinstance(value, str) and ("://" in value or value.startswith("git+")):
                return value
        for value in data.values():
            found = _first_source(value, depth + 1)
            if found:
                return found
    elif isinstance(data, list):
        for value in data[:50]:
            found = _first_source(value, depth + 1)
            if found:
                return found
    return ""
