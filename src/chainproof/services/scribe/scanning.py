"""chainproof's own scanner: the advisory store, matching images' SBOM packages, re-matching.

- :meth:`ScanService.import_advisories`: OSV records in; each kept whole as a document of the
  provider project (collection ``osv-advisories``) and as a Grafeas ``VULNERABILITY`` note
  there (``projects/osv/notes/<OSV id>``). Re-importing the same record changes nothing; a
  record with a newer ``modified`` replaces the old one; an older copy never replaces a newer
  one; a withdrawn record is removed from matching and its findings are closed. Only the
  images holding a package the changed records name are matched again — found through an
  index from ``(ecosystem, name)`` to images — and the report says how many.
- **One advisory database for every replica.** Each import that changes anything bumps a
  generation stored beside the advisories (``osv-state``) and logs the IDs it changed
  (``osv-changes``), in the same transaction as the records. Before it matches, every
  replica reads that generation (one keyed read) and, when another replica has imported
  since, reads the logged records again — or everything, when the log no longer reaches back
  far enough. No replica ever matches against advisories older than the last import.
- :meth:`ScanService.scan_image`: an image's ``PACKAGE`` occurrences (the Grafeas v1
  PackageOccurrence contract: name, version, purl, cpeUri, architecture) are matched; its
  chainproof ``VULNERABILITY`` occurrences are brought in line (new findings created, findings
  that no longer hold deleted, unchanged ones kept) and a ``DISCOVERY`` occurrence dated at
  the match replaces the previous one.
- **Re-matching in batches** (ADR 0092). After an import, the affected images are handled
  :data:`REMATCH_BATCH` at a time: one indexed read of their packages, one of their chainproof
  occurrences, one match each (verdicts are cached per package version), and one transaction
  that writes every new finding and DISCOVERY and deletes what no longer holds, through
  :meth:`GrafeasService.reconcile_occurrences` — so the judge's caches die with the evidence
  as for any other write.

Findings are written in the image's own project; they are told apart from Trivy's or
Grype's by their note, which lives in the provider project.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from chainproof.domain import protojson
from chainproof.domain.filters import Compare, FilterColumn
from chainproof.domain.images import canonical_resource
from chainproof.domain.messages import (
    NotePB,
    OccurrencePB,
    note_from_json,
    occurrence_from_json,
    strict_from_json,
)
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import AlreadyExists, FailedPrecondition, NotFound
from chainproof.services.common import utc_now
from chainproof.services.scribe.bulk_gc import cyclic_gc_paused
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.services.scribe.grafeas import MAX_BATCH, Copies, GrafeasService
from chainproof.services.scribe.write_behind import write_behind
from chainproof.store.port import (
    DocumentRecord,
    MetadataStore,
    OccurrenceRecord,
    StoredOccurrence,
    UnitOfWork,
)
from chainproof.vuln import grafeas as vg
from chainproof.vuln.match import AdvisoryIndex, Finding, Key, MatchReport, Undecided, keys_of
from chainproof.vuln.osv import Advisory, parse_record
from chainproof.vuln.packages import Package, package_from_fields

# stdlib logging: bootstrap.configure_logging renders it in the server's structured format.
log = logging.getLogger(__name__)

COLLECTION = "osv-advisories"
STATE = "osv-state"  # one document, "current": the advisory generation
CHANGES = "osv-changes"  # one document per generation: the advisory IDs it changed
_CURRENT = "current"
#: Generations kept in the change log; a replica further behind reads every advisory again.
MAX_LOG = 1_000
#: Images re-matched per store read and per write transaction.
REMATCH_BATCH = 200
#: Advisory records read and written per statement batch of an import (one transaction).
IMPORT_BATCH = 1_000
#: Finding templates one import keeps across its re-match batches at most (a memory bound).
MAX_TEMPLATES = 100_000
#: Values listed in one filter at most (advisory IDs, package notes); beyond, read and sift.
_MAX_LISTED = 500
_PAGE = 1_000


def _log_id(generation: int) -> str:
    return f"{generation:012d}"


@dataclass(frozen=True, slots=True)
class ImageKey:
    project: str
    resource: str  # canonical


@dataclass(frozen=True, slots=True)
class _Sbom:
    """An image's packages as read from its PACKAGE occurrences."""

    packages: list[Package]
    cpes: dict[int, str | None]
    uri: str


@dataclass(slots=True)
class _Write:
    """One batch's write: the occurrences to delete, create (copies of templates) and
    rewrite in one transaction, and the images scanned (their after-scan hooks run once it
    is stored), with the findings it opens and closes."""

    project: str
    delete: list[OccurrenceRecord]
    copies: list[Copies]
    update: list[OccurrenceRecord]
    scanned: list[str]
    opened: int = 0
    closed: int = 0


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
        clock: Callable[[], datetime] = utc_now,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._store = store
        self._grafeas = grafeas
        self.provider = provider_project
        self._clock = clock
        self.index = AdvisoryIndex()
        #: The advisory generation ``index`` holds (-1: nothing loaded yet).
        self.generation = -1
        self._images: dict[Key, set[ImageKey]] = {}
        #: (ecosystem, name) → the PACKAGE notes of the packages under that key, so that a
        #: re-match reads only the packages an import touches (through the note index).
        self._package_notes: dict[Key, set[tuple[str, str]]] = {}
        self._images_indexed = False
        #: Images other replicas wrote since (their packages are read again before matching).
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()
        if changes is not None:
            changes.observe(self._dirty.update, self._forget_images)
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

    # ---------------------------------------------------------------- the shared advisories
    async def _sync(self) -> None:
        """Bring ``index`` up to the stored advisory generation (see the module docstring)."""
        async with self._store.session(readonly=True) as s:
            generation = await _stored_generation(s, self.provider)
            if generation == self.generation:
                return
            behind = generation - self.generation
            if self.generation >= 0 and 0 < behind <= MAX_LOG:
                entries = await s.documents.page(
                    self.provider, CHANGES, _log_id(self.generation), behind
                )
                if [e.doc_id for e in entries] == [
                    _log_id(g) for g in range(self.generation + 1, generation + 1)
                ]:
                    ids = sorted({str(i) for e in entries for i in e.data.get("ids", [])})
                    for advisory_id in ids:
                        doc = await s.documents.get(self.provider, COLLECTION, advisory_id)
                        if doc is not None:
                            self.index.put(_advisory_of(doc))
                    self.generation = generation
                    return
        await self._load_all()

    async def _load_all(self) -> None:
        index = AdvisoryIndex()
        async with self._store.session(readonly=True) as s:
            generation = await _stored_generation(s, self.provider)
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.documents.page(self.provider, COLLECTION, after, _PAGE)
            for row in rows:
                index.put(_advisory_of(row))
            if len(rows) < _PAGE:
                break
            after = rows[-1].doc_id
        # Records written after the generation was read are read again on the next sync.
        self.index, self.generation = index, generation

    def _forget_images(self) -> None:
        """Some writes of other replicas went unheard: index every image again."""
        self._images_indexed = False

    async def _ensure_loaded(self) -> None:
        await self._sync()
        if not self._images_indexed:
            self._dirty.clear()
            await self._index_all_images()
            self._images_indexed = True
        elif self._dirty:
            await self._index_dirty()

    async def _index_dirty(self) -> None:
        """Index the images other replicas changed (told by the change feed): their packages,
        read a batch of resources at a time in every project."""
        dirty = sorted(self._dirty)
        self._dirty.clear()
        for project in await self._projects():
            for i in range(0, len(dirty), _MAX_LISTED):
                await self._read_sboms(project, dirty[i : i + _MAX_LISTED], known_only=True)

    async def _projects(self) -> list[str]:
        projects: list[str] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                page = await s.projects.page(after, _PAGE)
                projects += page
                if len(page) < _PAGE:
                    return projects
                after = page[-1]

    async def _index_all_images(self) -> None:
        for project in await self._projects():
            by_image: dict[str, list[StoredOccurrence]] = {}
            for record in await self._package_records(project, None):
                by_image.setdefault(record.resource, []).append(record)
            for resource, records in by_image.items():
                self._sbom_of(ImageKey(project, resource), records)

    def _remember(
        self, image: ImageKey, packages: Sequence[Package], records: Sequence[StoredOccurrence]
    ) -> None:
        for pkg, record in zip(packages, records, strict=True):
            for eco, name, _ in pkg.lookups():
                self._images.setdefault((eco, name), set()).add(image)
                note = (record.note_project, record.note_id)
                self._package_notes.setdefault((eco, name), set()).add(note)

    async def _package_records(self, project: str, resources: Any) -> list[StoredOccurrence]:
        """PACKAGE occurrences of ``project``, as stored JSON: of the given resources (one
        indexed query, page by page), or of every image when ``resources`` is None."""
        where = Compare(FilterColumn.KIND, "PACKAGE")
        if resources is None:
            return await self._documents(project, where)
        async with self._store.session(readonly=True) as s:
            return await s.occurrences.documents_of_resources(project, resources, where)

    # ---------------------------------------------------------------- advisories
    async def import_advisories(self, advisories: Sequence[Advisory]) -> ImportReport:
        """Store (one transaction: records, generation, change log), index and re-match."""
        async with self._lock:
            await self._ensure_loaded()
            await self._ensure_provider()
            report = ImportReport()
            # Storing the records and their notes allocates objects that live until they
            # are written: bounded by the import (services.bulk_gc).
            with cyclic_gc_paused():
                changed, generation, caught_up = await self._store_records(advisories, report)
                await self._put_notes(changed)
            touched: set[Key] = set()
            for advisory, old in changed:
                touched |= keys_of(advisory) | (keys_of(old) if old is not None else set())
            if caught_up and changed:
                # Ours is the only change since the index was current: apply it as it is.
                for advisory, _ in changed:
                    self.index.put(advisory)
                self.generation = generation
            await self._sync()  # any other replica's import (a keyed read when there is none)
            images = sorted(
                {img for key in touched for img in self._images.get(key, ())},
                key=lambda i: (i.project, i.resource),
            )
            opened, closed = await self._rematch(images, touched, {a.id for a, _ in changed})
            report.findings_opened, report.findings_closed = opened, closed
            report.images_rematched = len(images)
            log.info("advisories imported: %s", report.as_dict())
            return report

    async def _store_records(
        self, advisories: Sequence[Advisory], report: ImportReport
    ) -> tuple[list[tuple[Advisory, Advisory | None]], int, bool]:
        """One transaction: the records, and when any changed a new generation and its change
        log entry. Returns what changed (see :meth:`_store_batch`), the generation stored
        after it, and whether no other replica had imported since this one last synced."""
        changed: list[tuple[Advisory, Advisory | None]] = []
        now = self._clock()
        async with self._store.session() as s:
            state = await s.documents.get(self.provider, STATE, _CURRENT, for_update=True)
            generation = int(state.data.get("generation", 0)) if state else 0
            caught_up = generation == self.generation  # no other import since our sync
            for i in range(0, len(advisories), IMPORT_BATCH):
                chunk = advisories[i : i + IMPORT_BATCH]
                changed += await self._store_batch(s, chunk, report, now)
            if changed:
                generation += 1
                await _put(s, self.provider, STATE, _CURRENT, {"generation": generation}, now)
                ids = sorted({a.id for a, _ in changed})
                await _put(s, self.provider, CHANGES, _log_id(generation), {"ids": ids}, now)
                await s.documents.delete(self.provider, CHANGES, _log_id(generation - MAX_LOG))
        return changed, generation, caught_up

    async def _store_batch(
        self, s: UnitOfWork, advisories: Sequence[Advisory], report: ImportReport, now: datetime
    ) -> list[tuple[Advisory, Advisory | None]]:
        """Store a batch of records: one read of the stored copies, one write of what changed.
        Records are judged in order, each against the newest copy so far (stored, or earlier
        in the batch), as one at a time would be. Returns each changed advisory once (its
        last stored copy) with the advisory it replaced, if any."""
        stored = await s.documents.get_many(self.provider, COLLECTION, [a.id for a in advisories])
        writes: dict[str, DocumentRecord] = {}
        latest: dict[str, Advisory] = {}
        for advisory in advisories:
            digest = _digest(advisory.raw)
            current = writes.get(advisory.id) or stored.get(advisory.id)
            if current is not None:
                if current.data.get("digest") == digest:
                    report.unchanged += 1
                    continue
                stored_modified = parse_rfc3339(str(current.data["modified"]))
                if advisory.modified < stored_modified:
                    report.older_ignored += 1
                    continue
            writes[advisory.id] = DocumentRecord(
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
            latest[advisory.id] = advisory
            if advisory.is_withdrawn:
                report.withdrawn += 1
            elif current is None:
                report.imported += 1
            else:
                report.replaced += 1
        await s.documents.put_many(list(writes.values()))
        return [(latest[i], _advisory_of(stored[i]) if i in stored else None) for i in writes]

    async def _ensure_provider(self) -> None:
        with contextlib.suppress(AlreadyExists):
            await self._grafeas.create_project(f"projects/{self.provider}")
        with contextlib.suppress(AlreadyExists):
            await self._grafeas.create_note(
                f"projects/{self.provider}",
                vg.SCANNER_NOTE_ID,
                note_from_json(vg.scanner_note()),
            )

    async def _put_notes(self, changed: Sequence[tuple[Advisory, Advisory | None]]) -> None:
        """The advisories' notes: new ones created in batches, replaced ones updated."""
        new = [a for a, old in changed if old is None]
        for i in range(0, len(new), MAX_BATCH):
            chunk = new[i : i + MAX_BATCH]
            bodies = {a.id: vg.advisory_note(a) for a in chunk}
            strict = {i: strict_from_json(NotePB, body) for i, body in bodies.items()}
            # Parsed by the strict codec, a note holds no undefined enum (ADR 0085); the rare
            # one it declines goes to the reference parser, and the walk is done.
            notes = {
                i: note if note is not None else note_from_json(bodies[i], what=f"note for {i}")
                for i, note in strict.items()
            }
            try:
                await self._grafeas.batch_create_notes(
                    f"projects/{self.provider}",
                    notes,
                    strict=all(n is not None for n in strict.values()),
                )
            except AlreadyExists:  # some exist already (an import cut short): one by one
                for advisory in chunk:
                    await self._put_note(advisory)
        for advisory, old in changed:
            if old is not None:
                await self._put_note(advisory)

    async def _put_note(self, advisory: Advisory) -> None:
        note = note_from_json(vg.advisory_note(advisory), what=f"note for {advisory.id}")
        try:
            await self._grafeas.create_note(f"projects/{self.provider}", advisory.id, note)
        except AlreadyExists:
            await self._grafeas.update_note(
                f"projects/{self.provider}/notes/{advisory.id}", note, []
            )

    async def get_advisory(self, advisory_id: str) -> Advisory:
        async with self._store.session(readonly=True) as s:
            doc = await s.documents.get(self.provider, COLLECTION, advisory_id)
        if doc is None:
            raise NotFound(f"advisory {advisory_id} is not in the store; import it first")
        return _advisory_of(doc)

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
                await self._read_sboms(project, [resource])
                raise FailedPrecondition(
                    "no OSV advisories have been imported, so a scan would prove nothing; "
                    "import some first (chainproof advisories import PATH)"
                )
            await self._ensure_provider()
            with cyclic_gc_paused():  # one image's match and write (services.bulk_gc)
                reports = await self._reconcile(project, [resource], keep_empty=True)
            # Another replica may have imported advisories while this scan ran, before it
            # heard of this image: match again until the generation holds still.
            for _ in range(3):
                matched = self.generation
                await self._sync()
                if self.generation == matched:
                    break
                reports = await self._reconcile(project, [resource], keep_empty=True)
            return reports[0]

    async def _read_sboms(
        self, project: str, resources: Sequence[str], *, known_only: bool = False
    ) -> dict[str, _Sbom]:
        """The images' packages, in one indexed read (``known_only``: only of the images
        that have packages in ``project``)."""
        by_image: dict[str, list[StoredOccurrence]] = (
            {} if known_only else {r: [] for r in resources}
        )
        for record in await self._package_records(project, resources):
            by_image.setdefault(record.resource, []).append(record)
        return {r: self._sbom_of(ImageKey(project, r), rows) for r, rows in by_image.items()}

    def _sbom_of(
        self,
        image: ImageKey,
        records: Sequence[StoredOccurrence],
        packages: Sequence[Package] | None = None,
    ) -> _Sbom:
        """The image's SBOM from its PACKAGE ``records`` (``packages``: their matching view,
        when the caller has read them already), indexed under the image."""
        views = [_package_of(r) for r in records] if packages is None else list(packages)
        sbom = _Sbom(
            packages=views,
            cpes={id(p): _cpe_of(r) for p, r in zip(views, records, strict=True)},
            uri=str(records[0].document.get("resourceUri") or "") if records else image.resource,
        )
        self._remember(image, views, records)
        return sbom

    async def _rematch(
        self, images: Sequence[ImageKey], touched: set[Key], changed: set[str]
    ) -> tuple[int, int]:
        """Re-match ``images`` after the advisories ``changed`` (touching ``touched``) were
        imported, :data:`REMATCH_BATCH` of one project at a time."""
        by_project: dict[str, list[str]] = {}
        for image in images:
            by_project.setdefault(image.project, []).append(image.resource)
        memo = _Templates()  # one import's finding templates, kept across its batches
        batches = [
            (project, resources[i : i + REMATCH_BATCH])
            for project, resources in by_project.items()
            for i in range(0, len(resources), REMATCH_BATCH)
        ]
        opened = closed = 0

        async def prepare(batch: tuple[str, list[str]]) -> _Write:
            nonlocal opened, closed
            # One batch's reads and matches live until its write: the collector waits for
            # the write's end instead of walking the heap again and again (services.bulk_gc),
            # and runs between batches.
            with cyclic_gc_paused():
                planned = await self._rematch_batch(*batch, touched, changed, memo)
            opened, closed = opened + planned.opened, closed + planned.closed
            return planned

        async def write(planned: _Write) -> None:
            with cyclic_gc_paused():
                await self._write(planned)

        # The next batch is read and matched while one is written (ADR 0215): batches hold
        # disjoint images, so none reads what another writes.
        await write_behind(batches, prepare, write)
        return opened, closed

    async def _rematch_batch(
        self,
        project: str,
        resources: Sequence[str],
        touched: set[Key],
        changed: set[str],
        memo: _Templates,
    ) -> _Write:
        """Only what an import can change: the images' packages under the touched keys (one
        indexed read, through their notes) against the index, and their findings of the
        changed advisories (one indexed read); the findings of other advisories still hold,
        as the advisories they come from did not change. The DISCOVERY is dated again. An
        image never scanned (no DISCOVERY) gets a full scan instead: only that may date one.
        """
        # A large import names too many advisories and notes to list: then every finding
        # and package of the images is read, and filtered here.
        listed = len(changed) <= _MAX_LISTED
        ours = await self._our_occurrences(project, resources, sorted(changed) if listed else None)
        unscanned = [
            r for r in resources if not any(o.kind == "DISCOVERY" for o in ours.get(r, []))
        ]
        if unscanned:
            # Read unrestricted, ``ours`` holds all a full scan needs: not read twice.
            known = None if listed else {r: ours.get(r, []) for r in unscanned}
            _, write = await self._plan_scans(project, unscanned, ours=known, memo=memo)
        else:
            write = _Write(project, [], [], [], [])
        done = set(unscanned)
        scanned = [r for r in resources if r not in done]
        if not scanned:
            return write
        packages = await self._touched_packages(project, scanned, touched)
        delete, update = write.delete, write.update
        findings = _NewFindings()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(self._clock())
        for resource in scanned:
            # Each stored package is read into its matching view once, for the filter and
            # the SBOM alike.
            records: list[StoredOccurrence] = []
            views: list[Package] = []
            for r in packages.get(resource, []):
                view = _package_of(r)
                if {k[:2] for k in view.lookups()} & touched:
                    records.append(r)
                    views.append(view)
            sbom = self._sbom_of(ImageKey(project, resource), records, views)
            match = self.index.match(sbom.packages)
            wanted: dict[tuple[str, str, str], Finding] = {}
            for f in match.findings:
                if f.advisory_id in changed:
                    key = _finding_key(f.advisory_id, f.package.name, f.package.version)
                    wanted.setdefault(key, f)
            discoveries = [r for r in ours.get(resource, []) if r.kind == "DISCOVERY"]
            # The image's DISCOVERY is dated again in place (its name stays); a duplicate
            # (two replicas scanned it at once) goes.
            update.append(_dated_again(discoveries[0], stamp))
            delete += discoveries[1:]
            for record in ours.get(resource, []):
                if record.kind == "DISCOVERY":
                    continue
                if record.note_id not in changed:
                    continue  # its advisory did not change: it still holds
                if wanted.pop(_record_key(record), None) is None:
                    delete.append(record)
                    write.closed += 1
            for f in wanted.values():
                write.opened += findings.add(f, sbom, self.index)
        write.copies += findings.copies(self.index, self.provider, memo)
        write.scanned += scanned
        return write

    async def _touched_packages(
        self, project: str, resources: Sequence[str], touched: set[Key]
    ) -> dict[str, list[StoredOccurrence]]:
        """The PACKAGE occurrences of ``resources`` under the notes of the touched keys."""
        notes = sorted({n for key in touched for n in self._package_notes.get(key, ())})
        packages: dict[str, list[StoredOccurrence]] = {}
        by_project: dict[str, list[str]] = {}
        for note_project, note_id in notes:
            by_project.setdefault(note_project, []).append(note_id)
        for note_project, ids in sorted(by_project.items()):
            # By note (project and ID), not by kind: the note index then finds exactly the
            # packages under the touched keys; anything else under those notes is sifted out.
            listed = set(ids)
            async with self._store.session(readonly=True) as s:
                if len(ids) <= _MAX_LISTED:
                    found = await s.occurrences.documents_of_notes(
                        project, [(note_project, i) for i in ids], resources
                    )
                else:
                    found = await s.occurrences.documents_of_resources(
                        project, resources, Compare(FilterColumn.NOTE_PROJECT, note_project)
                    )
            for record in found:
                if record.kind == "PACKAGE" and record.note_id in listed:
                    packages.setdefault(record.resource, []).append(record)
        return packages

    async def _reconcile(
        self, project: str, resources: Sequence[str], *, keep_empty: bool = False
    ) -> list[ScanReport]:
        """Match each image of one project and bring its findings in line (see
        :meth:`_plan_scans`), in one write transaction."""
        reports, write = await self._plan_scans(project, resources, keep_empty=keep_empty)
        await self._write(write)
        return reports

    async def _plan_scans(
        self,
        project: str,
        resources: Sequence[str],
        *,
        keep_empty: bool = False,
        ours: dict[str, list[OccurrenceRecord]] | None = None,
        memo: _Templates | None = None,
    ) -> tuple[list[ScanReport], _Write]:
        """Match each image of one project, in one read of their packages and one of their
        chainproof occurrences, and say what brings its findings in line; new findings alike
        on several images (same advisory, package and CPE) are written as copies of one
        template.

        An image with no packages left (its SBOM was deleted) loses its chainproof findings
        and its DISCOVERY, unless ``keep_empty`` (an explicit scan of it): nothing was
        scanned, so nothing may claim a recent scan. ``ours``: the images' chainproof
        occurrences when the caller has just read them all (``_our_occurrences``); ``memo``:
        the finding templates of the import under way."""
        sboms = await self._read_sboms(project, resources)
        if ours is None:
            ours = await self._our_occurrences(project, resources)
        delete: list[OccurrenceRecord] = []
        update: list[OccurrenceRecord] = []
        reports: list[ScanReport] = []
        findings = _NewFindings()
        scans = _Alike()  # the DISCOVERY of each image scanned for the first time
        now = self._clock()
        for resource in resources:
            sbom = sboms[resource]
            match: MatchReport = self.index.match(sbom.packages)
            report = ScanReport(resource=resource, packages=len(sbom.packages))
            report.findings, report.unknown = match.findings, match.unknown
            reports.append(report)
            if not sbom.packages and not keep_empty:
                delete += ours.get(resource, [])
                report.closed = sum(r.kind == "VULNERABILITY" for r in ours.get(resource, []))
                continue
            wanted: dict[tuple[str, str, str], Finding] = {}
            for f in match.findings:
                wanted.setdefault(_finding_key(f.advisory_id, f.package.name, f.package.version), f)
            discoveries = []
            for record in ours.get(resource, []):
                if record.kind == "DISCOVERY":
                    discoveries.append(record)
                    continue
                key = _record_key(record)
                if key in wanted:
                    wanted.pop(key)
                    report.kept += 1
                else:
                    delete.append(record)
                    report.closed += 1
            for f in wanted.values():
                report.opened += findings.add(f, sbom, self.index)
            scan = occurrence_from_json(
                vg.discovery_occurrence(sbom.uri, self.provider, now, problems=len(match.unknown))
            )
            if discoveries:
                # Scanned before: its DISCOVERY says this scan, under the same name.
                update.append(_rescanned(discoveries[0], scan))
                delete += discoveries[1:]
            else:
                scans.add(scan)
        templates = memo if memo is not None else _Templates()
        copies = findings.copies(self.index, self.provider, templates) + scans.copies()
        write = _Write(project, delete, copies, update, list(resources))
        write.opened = sum(r.opened for r in reports)
        write.closed = sum(r.closed for r in reports)
        return reports, write

    async def _write(self, write: _Write) -> None:
        """One batch's write transaction, then the after-scan hooks of its images."""
        await self._grafeas.reconcile_occurrences(
            f"projects/{write.project}", [], write.delete, write.copies, write.update
        )
        for resource in write.scanned:
            for hook in self._after_scan:
                await hook(write.project, resource)

    async def _our_occurrences(
        self, project: str, resources: Sequence[str], advisories: Sequence[str] | None = None
    ) -> dict[str, list[OccurrenceRecord]]:
        """The chainproof findings (of ``advisories`` only, when given) and DISCOVERY
        occurrences of ``resources``, by resource, in one indexed read (by note when the
        advisories are listed)."""
        out: dict[str, list[OccurrenceRecord]] = {}
        async with self._store.session(readonly=True) as s:
            if advisories is None:
                where = Compare(FilterColumn.NOTE_PROJECT, self.provider)
                found = await s.occurrences.of_resources(project, resources, where)
            else:
                ids = [*advisories, vg.SCANNER_NOTE_ID]
                notes = [(self.provider, i) for i in ids]
                found = await s.occurrences.of_notes(project, notes, resources)
        for r in found:
            if r.kind == "VULNERABILITY" or (
                r.kind == "DISCOVERY" and r.note_id == vg.SCANNER_NOTE_ID
            ):
                out.setdefault(r.resource, []).append(r)
        return out

    async def _documents(self, project: str, where: Any) -> list[StoredOccurrence]:
        out: list[StoredOccurrence] = []
        after: str | None = None
        while True:
            async with self._store.session(readonly=True) as s:
                rows = await s.occurrences.page_documents(project, where, after, _PAGE)
            out += rows
            if len(rows) < _PAGE:
                return out
            after = rows[-1].occurrence_id


class _NewFindings:
    """The findings one write opens, grouped by what their occurrence says: the same finding
    (advisory, package, CPE) on many images is one template and its resource URIs."""

    def __init__(self) -> None:
        # Keyed by the Finding object: the index hands the same one to every image that holds
        # the package (and the entry keeps it alive, so its id stays its own).
        self._by_template: dict[tuple[int, str | None], tuple[Finding, list[str]]] = {}

    def add(self, finding: Finding, sbom: _Sbom, index: AdvisoryIndex) -> int:
        """Add a finding on ``sbom``'s image; 1 if it will be written, 0 if its advisory is
        gone from the index."""
        if finding.advisory_id not in index:
            return 0
        cpe = sbom.cpes.get(id(finding.package))
        key = (id(finding), cpe)
        entry = self._by_template.get(key)
        if entry is None:
            self._by_template[key] = (finding, [sbom.uri])
        else:
            entry[1].append(sbom.uri)
        return 1

    def copies(self, index: AdvisoryIndex, provider: str, memo: _Templates) -> list[Copies]:
        """One template per finding (``memo`` keeps those already made)."""
        out: list[Copies] = []
        for (_, cpe), (f, uris) in self._by_template.items():
            advisory = index.get(f.advisory_id)
            if advisory is None:
                continue
            template, strict = memo.of(f, cpe, advisory, provider, uris[0])
            out.append(Copies(template, uris, strict=strict))
        return out


class _Templates:
    """The finding templates made for one import's re-match, kept across its batches: a
    finding (advisory, package, CPE) on images of several batches is made once. What its
    advisory says is parsed once per advisory, what the finding says (package issue, fix,
    reason) into a copy of that. A template's resource URI is its first image's; every copy
    sets its own, and the Grafeas service copies a template before drafting it, so one
    template serves any number of writes. At most :data:`MAX_TEMPLATES` are kept (beyond,
    each is made anew: memory stays bounded by the batch)."""

    def __init__(self) -> None:
        self._bases: dict[str, Any] = {}
        # Keyed by the Finding object's id; the entry holds the Finding, so that the id
        # cannot be reused by another one while the entry lives.
        self._made: dict[tuple[int, str | None], tuple[Finding, Any, bool]] = {}

    def of(
        self, f: Finding, cpe: str | None, advisory: Advisory, provider: str, uri: str
    ) -> tuple[Any, bool]:
        """(the finding's template, made by the strict codec?)"""
        key = (id(f), cpe)
        made = self._made.get(key)
        if made is not None and made[0] is f:
            return made[1], made[2]
        body = vg.finding_occurrence(uri, f, advisory, provider, cpe)
        template: Any = _template(body, f.advisory_id, self._bases)
        strict = template is not None
        if template is None:  # something the strict codec leaves to the reference one
            template = _finding_message(body, f.advisory_id)
        if len(self._made) < MAX_TEMPLATES:
            self._made[key] = (f, template, strict)
        return template, strict


#: The fields of a finding's occurrence that are the finding's own, not its advisory's.
_PER_FINDING = ("fixAvailable", "longDescription", "packageIssue")


def _template(body: dict[str, Any], advisory_id: str, bases: dict[str, Any]) -> Any | None:
    """``body`` as a message, by the strict codec: a copy of the advisory's part (parsed the
    first time) with the finding's part parsed into it; None if the strict codec declines."""
    vuln = body["vulnerability"]
    base = bases.get(advisory_id)
    if base is None:
        shared = {k: v for k, v in body.items() if k != "resourceUri"}
        shared["vulnerability"] = {k: v for k, v in vuln.items() if k not in _PER_FINDING}
        base = bases[advisory_id] = strict_from_json(OccurrencePB, shared)
    if base is False or base is None:
        bases[advisory_id] = False
        return None
    occ = OccurrencePB()
    occ.CopyFrom(base)
    own = {k: vuln[k] for k in _PER_FINDING if k in vuln}
    try:
        protojson.parse_into({"resourceUri": body["resourceUri"], "vulnerability": own}, occ)
    except protojson.Unsupported:
        return None
    return occ


class _Alike:
    """Occurrences grouped by all they say but their resource (each image's DISCOVERY dated
    again), so that each group is written as copies of one template."""

    def __init__(self) -> None:
        self._groups: dict[bytes, tuple[Any, list[str]]] = {}

    def add(self, occurrence: Any) -> None:
        uri = occurrence.resource_uri
        occurrence.resource_uri = ""
        key = occurrence.SerializeToString(deterministic=True)
        occurrence.resource_uri = uri
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = (occurrence, [uri])
        else:
            group[1].append(uri)

    def copies(self) -> list[Copies]:
        return [Copies(template, uris) for template, uris in self._groups.values()]


def _record_key(record: OccurrenceRecord) -> tuple[str, str, str]:
    """The finding an occurrence of ours stands for: advisory, package and version."""
    issue = record.occurrence.vulnerability.package_issue
    return _finding_key(
        record.note_id,
        issue[0].affected_package if issue else "",
        issue[0].affected_version.name if issue else "",
    )


def _finding_message(body: dict[str, Any], advisory_id: str) -> Any:
    """A finding's message; the float ``cvssScore`` is set on the message, because the fast
    JSON codec leaves float32 fields to the reference parser, five times slower (ADR 0083)."""
    vuln = dict(body["vulnerability"])
    score = vuln.pop("cvssScore", None)
    occ = occurrence_from_json({**body, "vulnerability": vuln}, what=f"finding {advisory_id}")
    if score is not None:
        occ.vulnerability.cvss_score = float(score)
    return occ


def _dated_again(record: OccurrenceRecord, stamp: Any) -> OccurrenceRecord:
    """An image's DISCOVERY dated at ``stamp`` (a re-match brought it up to date), to be
    written over the stored one."""
    occ = OccurrencePB()
    occ.CopyFrom(record.occurrence)
    occ.discovery.last_scan_time.CopyFrom(stamp)
    occ.discovery.last_vulnerability_update_time.CopyFrom(stamp)
    return replace(record, occurrence=occ, document=None)


def _rescanned(record: OccurrenceRecord, scan: Any) -> OccurrenceRecord:
    """The stored DISCOVERY ``record`` saying what the new ``scan`` says, under its own
    name and creation time."""
    occ = OccurrencePB()
    occ.CopyFrom(scan)
    stored = record.occurrence
    occ.name, occ.resource_uri, occ.note_name = (
        stored.name,
        stored.resource_uri,
        stored.note_name,
    )
    occ.create_time.CopyFrom(stored.create_time)
    return replace(record, occurrence=occ, document=None)


async def _stored_generation(s: UnitOfWork, provider: str) -> int:
    state = await s.documents.get(provider, STATE, _CURRENT)
    return int(state.data.get("generation", 0)) if state is not None else 0


async def _put(
    s: UnitOfWork, project: str, collection: str, doc_id: str, data: dict[str, Any], now: datetime
) -> None:
    current = await s.documents.get(project, collection, doc_id)
    await s.documents.put(
        DocumentRecord(
            project,
            collection,
            doc_id,
            data,
            _digest(data)[:16],
            current.create_time if current else now,
            now,
        )
    )


def _advisory_of(doc: DocumentRecord) -> Advisory:
    return parse_record(dict(doc.data["record"]), source=doc.doc_id)


def _field(message: Any, json_name: str, proto_name: str) -> Any:
    """A field of stored JSON, in either spelling protobuf's JSON mapping reads."""
    if not isinstance(message, dict):
        return None
    value = message.get(json_name)
    return message.get(proto_name) if value is None else value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _cpe_of(record: StoredOccurrence) -> str | None:
    return _text(_field(record.document.get("package"), "cpeUri", "cpe_uri")) or None


def _package_of(record: StoredOccurrence) -> Package:
    """The matching view of a stored Grafeas PackageOccurrence (the ingestion contract): the
    fields a message of it would have, read from its JSON."""
    p = record.document.get("package") or {}
    version = _field(p, "version", "version") or {}
    epoch = _field(version, "epoch", "epoch")
    name, revision = (
        _text(_field(version, "name", "name")),
        _text(_field(version, "revision", "revision")),
    )
    text = _text(_field(version, "fullName", "full_name")) or (
        (f"{int(epoch)}:" if epoch else "") + name + (f"-{revision}" if revision else "")
    )
    # Grafeas v1 has no purl field: ingestion puts the purl in the identity slot of the first
    # location (``location[0].cpeUri``); a ``pkg:`` package cpeUri is accepted as well.
    locations = _field(p, "location", "location") or []
    purl = next(
        (
            str(cpe)
            for cpe in (_text(_field(loc, "cpeUri", "cpe_uri")) for loc in locations)
            if cpe.startswith("pkg:")
        ),
        "",
    )
    own = _text(_field(p, "cpeUri", "cpe_uri"))
    if not purl and own.startswith("pkg:"):
        purl = own
    return package_from_fields(
        name=_text(_field(p, "name", "name")),
        version=text,
        purl=purl or None,
        architecture=None,
        package_type=_text(_field(p, "packageType", "package_type")) or None,
    )
