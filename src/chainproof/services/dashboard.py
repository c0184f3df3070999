"""The dashboard's read model: what the web UI shows, read from the store and the judge.

The UI owns no data. The lists and counts (overview, images, reverse impact) read the
per-image summaries the store keeps on write (``uow.image_summaries``, ADR 0122): a keyset
page of one query, whatever the store's size. The image page reads that image's own
occurrences (indexed by resource), bounded: a read that reaches ``max_occurrences`` stops and
says so. Running workloads come from the runtime inventory (``uow.inventory``). Occurrences
of every Grafeas kind are handled generically (kind, note, resource, the message as JSON),
with a few fields lifted out for the kinds a person asks about first (ATTESTATION, BUILD,
PACKAGE, VULNERABILITY, DISCOVERY). Time is a parameter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chainproof.domain.filters import Compare, Expr, FilterColumn
from chainproof.domain.image_summary import (
    SEVERITIES,
    Finding,
    Package,
    finding,
    package,
)
from chainproof.domain.images import canonical_resource
from chainproof.domain.inventory import RunningContainer
from chainproof.domain.messages import to_json
from chainproof.errors import InvalidArgument
from chainproof.store.port import DecisionQuery, DecisionRecord, MetadataStore, OccurrenceRecord
from chainproof.store.runtime_port import InventoryQuery
from chainproof.store.summaries import After, ImpactRow, SummaryQuery, SummaryRow, SummaryTotals

_PAGE = 1000
#: The most reverse-impact rows one page shows.
IMPACT_ROWS = 500
#: The images list counts matches exactly up to this many, then says "more than" it: the
#: count reads at most this many + 1 rows (an unfiltered list is counted exactly from the
#: totals kept per scope).
COUNT_BOUND = 1_000
#: The most inventory rows one page reads for the images it shows.
RUNNING_ROWS = 2000


def finding_of(record: OccurrenceRecord) -> Finding:
    return finding(record.occurrence, record.note_id)


def package_row(record: OccurrenceRecord) -> Package:
    return package(record.occurrence, record.note_id)


def note_name(record: OccurrenceRecord) -> str:
    return f"projects/{record.note_project}/notes/{record.note_id}"


@dataclass(frozen=True, slots=True)
class Overview:
    totals: SummaryTotals
    decisions_24h: Counter[str]
    breakglass_24h: int
    #: Decisions per hour over the last 24 h, oldest first: (hour start, outcome counts).
    hourly: list[tuple[datetime, Counter[str]]]
    decisions_partial: bool
    #: Distinct running workloads (cluster, namespace, kind, name); None: not shown.
    running_workloads: int | None
    #: Open continuous-validation violations of the project; None: not shown.
    open_violations: int | None

    @property
    def open_by_severity(self) -> dict[str, int]:
        return dict(zip(SEVERITIES, self.totals.open_counts, strict=True))


@dataclass(frozen=True, slots=True)
class ImagesPage:
    rows: list[SummaryRow]
    #: How many images match the filters: exact, unless ``total_bounded``.
    total: int
    #: The count stopped at its bound: more than ``total`` images match.
    total_bounded: bool
    #: The keyset position after the last row shown, when more rows follow.
    next_after: After | None


@dataclass(frozen=True, slots=True)
class Workload:
    """A running container as the pages show it."""

    cluster: str
    namespace: str
    workload: str  # Kind/name
    pod: str
    container: str
    image: str
    since: datetime


def workload_of(row: RunningContainer) -> Workload:
    return Workload(
        row.cluster,
        row.namespace,
        f"{row.workload_kind}/{row.workload_name}",
        row.pod,
        row.container,
        row.image,
        row.since,
    )


class Dashboard:
    """Reads for the web UI pages; see the module docstring for what is bounded and how."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        max_occurrences: int = 200_000,
        max_decisions: int = 20_000,
        count_bound: int = COUNT_BOUND,
        impact_rows: int = IMPACT_ROWS,
    ) -> None:
        self._store = store
        self.max_occurrences = max_occurrences
        self.max_decisions = max_decisions
        self.count_bound = count_bound
        self.impact_rows = impact_rows

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
        self, query: DecisionQuery, limit: int, before: str | None = None
    ) -> tuple[list[DecisionRecord], bool]:
        """The newest ``limit`` decisions matching ``query`` older than the decision ID
        ``before`` (None: the newest of all), newest first, and whether older ones follow:
        one keyset page read backwards on the log's indexes, however long the log."""
        newest = replace(query, newest_first=True)
        async with self._store.session(readonly=True) as s:
            rows = await s.decisions.page(newest, before, limit + 1)
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
        async with self._store.session(readonly=True) as s:
            after: str | None = None
            while True:
                rows = await s.decisions.page(window, after, _PAGE)
                found = next((r for r in rows if r.decision_id == decision_id), None)
                if found is not None or len(rows) < _PAGE:
                    return found
                after = rows[-1].decision_id

    # ------------------------------------------------------------------ pages

    @staticmethod
    def scope(readable: Sequence[str], every: Sequence[str]) -> tuple[str, ...] | None:
        """The summary scope of a caller who may read ``readable`` of ``every`` project:
        None (the every-project summaries) when that is all of them."""
        return None if set(readable) >= set(every) else tuple(sorted(readable))

    async def images(self, query: SummaryQuery, after: After | None, limit: int) -> ImagesPage:
        async with self._store.session(readonly=True) as s:
            rows = await s.image_summaries.page(query, after, limit + 1)
            total, bounded = await s.image_summaries.count_at_most(query, self.count_bound)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows and more else None
        return ImagesPage(
            rows,
            total,
            bounded,
            None if last is None else (last.key(query.sort), last.summary.resource),
        )

    async def overview(
        self,
        project: str,
        now: datetime,
        scope: tuple[str, ...] | None,
        *,
        runtime: bool,
    ) -> Overview:
        async with self._store.session(readonly=True) as s:
            totals = await s.image_summaries.totals(scope)
            running = await s.inventory.count_workloads() if runtime else None
            violations = None
            if runtime:
                counts = await s.violations.count_open()
                violations = sum(n for (p, _, _), n in counts.items() if p == project)
            start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
            # The newest decisions of the window first, three columns each, bounded.
            window = DecisionQuery(project=project, since=start, newest_first=True)
            rows = await s.decisions.outcomes(window, self.max_decisions + 1)
        partial = len(rows) > self.max_decisions
        rows = rows[: self.max_decisions]
        day: Counter[str] = Counter()
        hourly = [(start + timedelta(hours=h), Counter[str]()) for h in range(24)]
        breakglass = 0
        for d in rows:
            hour = int((d.time - start).total_seconds() // 3600)
            if 0 <= hour < 24:
                hourly[hour][1][d.outcome] += 1
            if d.time >= now - timedelta(hours=24):
                day[d.outcome] += 1
                if d.breakglass:
                    breakglass += 1
        return Overview(totals, day, breakglass, hourly, partial, running, violations)

    async def running(self, images: Sequence[str]) -> tuple[dict[str, list[Workload]], bool]:
        """The open inventory rows of ``images``, by image (newest first), and whether the
        read stopped at its bound."""
        if not images:
            return {}, False
        async with self._store.session(readonly=True) as s:
            rows = await s.inventory.list_rows(
                InventoryQuery(images=tuple(dict.fromkeys(images))), RUNNING_ROWS + 1
            )
        out: dict[str, list[Workload]] = {}
        for row in rows[:RUNNING_ROWS]:
            out.setdefault(row.image, []).append(workload_of(row))
        return out, len(rows) > RUNNING_ROWS

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
        self, query: str, scope: tuple[str, ...] | None
    ) -> tuple[list[ImpactRow], bool]:
        """Images a vulnerability ID (CVE-…, GHSA-…: finding note IDs), a package name or a
        purl prefix affects, from the reverse-impact terms the store keeps on write; and
        whether more matched than one page shows."""
        if not query.strip():
            return [], False
        async with self._store.session(readonly=True) as s:
            rows = await s.image_summaries.impact(query, scope, self.impact_rows + 1)
        return rows[: self.impact_rows], len(rows) > self.impact_rows


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
