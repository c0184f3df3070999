"""chainproof's own scanner: the advisory store, matching images' SBOM packages, re-matching.

- :meth:`ScanService.import_advisories`: OSV records in; each kept whole as a document of the
  provider project (collection ``osv-advisories``) and as a Grafeas ``VULNERABILITY`` note
  there (``projects/osv/notes/<OSV id>``). Re-importing the same record changes nothing; a
  record with a newer ``modified`` replaces the old one; an older copy never replaces a newer
  one; a withdrawn record is removed from matching and its findings are closed. Only the
  images holding a package the changed records name are matched again — found through an
  index from ``(ecosystem, name)`` to images — and the report says how many.
- :meth:`ScanService.scan_image`: an image's ``PACKAGE`` occurrences (the Grafeas v1
  PackageOccurrence contract: name, version, purl, cpeUri, architecture) are matched; its
  chainproof ``VULNERABILITY`` occurrences are brought in line (new findings created, findings
  that no longer hold deleted, unchanged ones kept) and a ``DISCOVERY`` occurrence dated at
  the match replaces the previous one. Every write goes through the Grafeas service, so the
  judge's caches die with the evidence as for any other write.

Findings are written in the image's own project; they are told apart from Trivy's or
Grype's by their note, which lives in the provider project.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chainproof.domain.filters import And, Compare, FilterColumn
from chainproof.domain.images import canonical_resource
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import AlreadyExists, FailedPrecondition, NotFound
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.port import DocumentRecord, MetadataStore, OccurrenceRecord
from chainproof.vuln import grafeas as vg
from chainproof.vuln.match import AdvisoryIndex, Finding, Key, MatchReport, Undecided
from chainproof.vuln.osv import Advisory, parse_record
from chainproof.vuln.packages import Package, package_from_fields

# stdlib logging: bootstrap.configure_logging renders it in the server's structured format.
log = logging.getLogger(__name__)

COLLECTION = "osv-advisories"
_PAGE = 1_000
_BATCH = 1_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ImageKey:
    project: str
    resource: str  # canonical


@dataclass(frozen=True, slots=True)
class _Sbom:
    """An image's packages as its last scan read them."""

    packages: list[Package]
    cpes: dict[int, str | None]
    uri: str


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    replaced: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    older_ignored: int = 0
    images_rematched: int = 0
    findings_opened: int = 0
    findings_closed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "imported": self.imported,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "withdrawn": self.withdrawn,
            "olderIgnored": self.older_ignored,
            "imagesRematched": self.images_rematched,
            "findingsOpened": self.findings_opened,
            "findingsClosed": self.findings_closed,
        }


@dataclass(slots=True)
class ScanReport:
    resource: str
    packages: int = 0
    findings: list[Finding] = field(default_factory=list)
    unknown: list[Undecided] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    kept: int = 0


def _digest(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


def _finding_key(advisory_id: str, package: str, version: str) -> tuple[str, str, str]:
    return (advisory_id, package, version)


class ScanService:
    """Advisory store, matcher and re-matcher over the Grafeas store."""

    def __init__(
        self,
        store: MetadataStore,
        grafeas: GrafeasService,
        *,
        provider_project: str = "osv",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._grafeas = grafeas
        self.provider = provider_project
        self._clock = clock
        self.index = AdvisoryIndex()
        self._images: dict[Key, set[ImageKey]] = {}
        self._sboms: dict[ImageKey, _Sbom] = {}
        self._loaded = False
        self._lock = asyncio.Lock()
        self._pending: set[ImageKey] = set()
        self._after_scan: list[Callable[[str, str], Awaitable[object]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def add_after_scan(self, hook: Callable[[str, str], Awaitable[object]]) -> None:
        """Run ``hook(project, resource)`` after every scan (the automatic attestors)."""
        self._after_scan.append(hook)

    # ---------------------------------------------------------------- new SBOMs
    def on_occurrences(self, records: Sequence[OccurrenceRecord]) -> None:
        """Listener for the Grafeas service: PACKAGE writes (a new SBOM) are matched at once."""
        images = {ImageKey(r.project, r.resource) for r in records if r.kind == "PACKAGE"}
        fresh = images - self._pending
        if not fresh:
            return
        self._pending |= fresh
        task = asyncio.get_running_loop().create_task(self._scan_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _scan_pending(self) -> None:
        # Yield first, so that the rest of a batch (or an SBOM replaced in several calls)
        # lands before the match; one scan then covers all of it.
        await asyncio.sleep(0)
        while self._pending:
            image = self._pending.pop()
            try:
                await self.scan_image(image.project, image.resource)
            except FailedPrecondition:
                continue  # no advisories yet: the image is indexed, and matched on import
            except Exception:  # a failed background scan must not kill the loop; it is logged
                log.exception("scan after an SBOM change failed for %s", image.resource)

    async def drain(self) -> None:
        """Wait for the scans that SBOM writes started (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # ---------------------------------------------------------------- start-up
    async def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.documents.page(self.provider, COLLECTION, after, _PAGE)
            for row in rows:
                self.index.put(parse_record(dict(row.data["record"]), source=row.doc_id))
            if len(rows) < _PAGE:
                break
            after = rows[-1].doc_id
        await self._index_all_images()
        self._loaded = True

    async def _index_all_images(self) -> None:
        async with self._store.session(readonly=True) as s:
            projects: list[str] = []
            after: str | None = None
            while True:
                page = await s.projects.page(after, _PAGE)
                projects += page
                if len(page) < _PAGE:
                    break
                after = page[-1]
        for project in projects:
            by_image: dict[str, list[OccurrenceRecord]] = {}
            for record in await self._package_records(project, None):
                by_image.setdefault(record.resource, []).append(record)
            for resource, records in by_image.items():
                self._sbom_of(ImageKey(project, resource), records)

    def _remember(self, image: ImageKey, packages: Iterable[Package]) -> None:
        for pkg in packages:
            for eco, name, _ in pkg.lookups():
                self._images.setdefault((eco, name), set()).add(image)

    async def _package_records(self, project: str, resource: str | None) -> list[OccurrenceRecord]:
        where: Any = Compare(FilterColumn.KIND, "PACKAGE")
        if resource is not None:
            where = And((where, Compare(FilterColumn.RESOURCE, resource)))
        out: list[OccurrenceRecord] = []
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.occurrences.page(project, where, after, _PAGE)
            out += rows
            if len(rows) < _PAGE:
                return out
            after = rows[-1].occurrence_id

    # ---------------------------------------------------------------- advisories
    async def import_advisories(self, advisories: Sequence[Advisory]) -> ImportReport:
        """Store, index and re-match; one advisory at a time, so a failure leaves no half."""
        async with self._lock:
            await self._ensure_loaded()
            await self._ensure_provider()
            report = ImportReport()
            touched: set[Key] = set()
            for advisory in advisories:
                touched |= await self._import_one(advisory, report)
            images = sorted(
                {img for key in touched for img in self._images.get(key, ())},
                key=lambda i: (i.project, i.resource),
            )
            for image in images:
                scan = await self._scan_locked(image.project, image.resource, reuse_sbom=True)
                report.findings_opened += scan.opened
                report.findings_closed += scan.closed
            report.images_rematched = len(images)
            log.info("advisories imported: %s", report.as_dict())
            return report

    async def _import_one(self, advisory: Advisory, report: ImportReport) -> set[Key]:
        digest = _digest(advisory.raw)
        async with self._store.session(readonly=True) as s:
            current = await s.documents.get(self.provider, COLLECTION, advisory.id)
        if current is not None:
            if current.data.get("digest") == digest:
                report.unchanged += 1
                return set()
            stored_modified = parse_rfc3339(str(current.data["modified"]))
            if advisory.modified < stored_modified:
                report.older_ignored += 1
                return set()
        now = self._clock()
        record = DocumentRecord(
            project=self.provider,
            collection=COLLECTION,
            doc_id=advisory.id,
            data={
                "record": dict(advisory.raw),
                "digest": digest,
                "modified": advisory.modified.isoformat(),
                "withdrawn": advisory.is_withdrawn,
            },
            etag=digest[:16],
            create_time=current.create_time if current else now,
            update_time=now,
        )
        async with self._store.session() as s:
            await s.documents.put(record)
        await self._put_note(advisory)
        if advisory.is_withdrawn:
            report.withdrawn += 1
        elif current is None:
            report.imported += 1
        else:
            report.replaced += 1
        return self.index.put(advisory)

    async def _ensure_provider(self) -> None:
        with contextlib.suppress(AlreadyExists):
            await self._grafeas.create_project(f"projects/{self.provider}")
        with contextlib.suppress(AlreadyExists):
            await self._grafeas.create_note(
                f"projects/{self.provider}",
                vg.SCANNER_NOTE_ID,
                note_from_json(vg.scanner_note()),
            )

    async def _put_note(self, advisory: Advisory) -> None:
        note = note_from_json(vg.advisory_note(advisory), what=f"note for {advisory.id}")
        try:
            await self._grafeas.create_note(f"projects/{self.provider}", advisory.id, note)
        except AlreadyExists:
            await self._grafeas.update_note(
                f"projects/{self.provider}/notes/{advisory.id}", note, []
            )

    async def get_advisory(self, advisory_id: str) -> Advisory:
        await self._ensure_loaded()
        async with self._store.session(readonly=True) as s:
            doc = await s.documents.get(self.provider, COLLECTION, advisory_id)
        if doc is None:
            raise NotFound(f"advisory {advisory_id} is not in the store; import it first")
        return parse_record(dict(doc.data["record"]), source=advisory_id)

    async def affected_images(self, advisory_id: str) -> list[OccurrenceRecord]:
        """The chainproof findings of one advisory, across every project."""
        out: list[OccurrenceRecord] = []
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.occurrences.page_of_note(
                    self.provider, advisory_id, None, after, _PAGE
                )
            out += rows
            if len(rows) < _PAGE:
                return out
            after = rows[-1].occurrence_id

    # ---------------------------------------------------------------- images
    async def scan_image(self, project: str, resource_uri: str) -> ScanReport:
        """Match one image now (call it when its SBOM changes).

        Refused while no advisory has been imported: a scan against an empty database would
        find nothing and still date a DISCOVERY, which a freshness check would take for a
        clean, recent scan.
        """
        async with self._lock:
            await self._ensure_loaded()
            resource = canonical_resource(resource_uri)
            if len(self.index) == 0:
                await self._read_sbom(project, resource)
                raise FailedPrecondition(
                    "no OSV advisories have been imported, so a scan would prove nothing; "
                    "import some first (chainproof advisories import PATH)"
                )
            await self._ensure_provider()
            return await self._scan_locked(project, resource)

    async def _read_sbom(self, project: str, resource: str) -> _Sbom:
        records = await self._package_records(project, resource)
        return self._sbom_of(ImageKey(project, resource), records)

    def _sbom_of(self, image: ImageKey, records: Sequence[OccurrenceRecord]) -> _Sbom:
        packages = [_package_of(r) for r in records]
        sbom = _Sbom(
            packages=packages,
            cpes={
                id(p): r.occurrence.package.cpe_uri or None
                for p, r in zip(packages, records, strict=True)
            },
            uri=records[0].occurrence.resource_uri if records else image.resource,
        )
        self._sboms[image] = sbom
        self._remember(image, packages)
        return sbom

    async def _scan_locked(
        self, project: str, resource: str, *, reuse_sbom: bool = False
    ) -> ScanReport:
        # A scan reads the image's PACKAGE occurrences; the re-match after an import reuses
        # what the last scan read (any SBOM write through this server scans again at once).
        sbom = self._sboms.get(ImageKey(project, resource)) if reuse_sbom else None
        if sbom is None:
            sbom = await self._read_sbom(project, resource)
        packages, cpes, uri = sbom.packages, sbom.cpes, sbom.uri
        match: MatchReport = self.index.match(packages)
        report = ScanReport(resource=resource, packages=len(packages))
        report.findings, report.unknown = match.findings, match.unknown
        wanted: dict[tuple[str, str, str], Finding] = {}
        for f in match.findings:
            wanted.setdefault(_finding_key(f.advisory_id, f.package.name, f.package.version), f)
        ours = await self._our_occurrences(project, resource)
        stale: list[str] = []
        for record in ours:
            if record.kind == "DISCOVERY":
                stale.append(record.occurrence.name)
                continue
            issue = record.occurrence.vulnerability.package_issue
            key = _finding_key(
                record.note_id,
                issue[0].affected_package if issue else "",
                issue[0].affected_version.name if issue else "",
            )
            if key in wanted:
                wanted.pop(key)
                report.kept += 1
            else:
                stale.append(record.occurrence.name)
                report.closed += 1
        new = []
        for f in wanted.values():
            advisory = self.index.get(f.advisory_id)
            if advisory is None:
                continue
            body = vg.finding_occurrence(uri, f, advisory, self.provider, cpes.get(id(f.package)))
            new.append(occurrence_from_json(body, what=f"finding {f.advisory_id}"))
        new.append(
            occurrence_from_json(
                vg.discovery_occurrence(
                    uri, self.provider, self._clock(), problems=len(match.unknown)
                )
            )
        )
        parent = f"projects/{project}"
        for i in range(0, len(new), _BATCH):
            await self._grafeas.batch_create_occurrences(parent, new[i : i + _BATCH])
        report.opened = len(new) - 1
        for name in stale:
            with contextlib.suppress(NotFound):  # another replica closed it first
                await self._grafeas.delete_occurrence(name)
        for hook in self._after_scan:
            await hook(project, resource)
        return report

    async def _our_occurrences(self, project: str, resource: str) -> list[OccurrenceRecord]:
        where = And(
            (
                Compare(FilterColumn.RESOURCE, resource),
                Compare(FilterColumn.NOTE_PROJECT, self.provider),
            )
        )
        out: list[OccurrenceRecord] = []
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.occurrences.page(project, where, after, _PAGE)
            out += [
                r
                for r in rows
                if r.kind == "VULNERABILITY"
                or (r.kind == "DISCOVERY" and r.note_id == vg.SCANNER_NOTE_ID)
            ]
            if len(rows) < _PAGE:
                return out
            after = rows[-1].occurrence_id


def _package_of(record: OccurrenceRecord) -> Package:
    """The matching view of a Grafeas PackageOccurrence (the ingestion contract)."""
    p = record.occurrence.package
    version = p.version
    text = version.full_name or (
        (f"{version.epoch}:" if version.epoch else "")
        + version.name
        + (f"-{version.revision}" if version.revision else "")
    )
    # Grafeas v1 has no purl field: ingestion puts the purl in the identity slot of the first
    # location (``location[0].cpeUri``); a ``pkg:`` package cpeUri is accepted as well.
    purl = next((str(loc.cpe_uri) for loc in p.location if str(loc.cpe_uri).startswith("pkg:")), "")
    if not purl and str(p.cpe_uri).startswith("pkg:"):
        purl = str(p.cpe_uri)
    return package_from_fields(
        name=str(p.name),
        version=text,
        purl=purl or None,
        architecture=None,
        package_type=str(p.package_type) or None,
    )
