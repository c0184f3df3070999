"""The Grafeas v1 API semantics, shared by the REST and gRPC entrypoints.

Every call runs in the same order: parse the names, validate the request, then read or write
the store inside one session (one transaction). Inputs are ``grafeas.v1`` protobuf messages
already decoded by an entrypoint; outputs are the same messages. The semantics kept from
Grafeas, and the reference server's bugs not repeated, are listed in docs/api.md.

This module owns: name checks, derived fields (``kind``, names, times), required fields,
update masks, immutability, batch atomicity, pagination and filters. It does not know about
HTTP, gRPC or SQL.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from google.protobuf import timestamp_pb2

from chainproof.domain import filters as flt
from chainproof.domain.bounds import storable_json
from chainproof.domain.events import EventType
from chainproof.domain.images import canonical_resource
from chainproof.domain.kinds import (
    common_occurrence_problems,
    derive_kind,
    note_kind_accepts,
    note_problems,
    occurrence_problems,
)
from chainproof.domain.masks import apply_mask, parse_mask
from chainproof.domain.messages import (
    Note,
    NotePB,
    Occurrence,
    OccurrencePB,
    render_for_storage,
)
from chainproof.domain.names import (
    NoteName,
    OccurrenceName,
    parse_note_name,
    parse_occurrence_name,
    parse_project_name,
    validate_resource_id,
)
from chainproof.domain.pagination import (
    ListScope,
    PageTokenCodec,
    bounded_count,
    page_size,
    proto_size,
)
from chainproof.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from chainproof.services import outbox
from chainproof.services.common import Clock, Page, utc_now
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.store.port import (
    MetadataStore,
    NoteRecord,
    OccurrenceRecord,
    StoredJson,
    UnitOfWork,
)

MAX_BATCH = 1000

IdFactory = Callable[[], str]


class Reconciled(NamedTuple):
    """What :meth:`GrafeasService.reconcile_occurrences` wrote."""

    created: list[OccurrenceRecord]
    deleted: int
    updated: list[OccurrenceRecord]


@dataclass(frozen=True, slots=True)
class Copies:
    """Occurrences that are alike but for their resource: ``template`` once on each of
    ``resource_uris`` (the scanner's finding on every image that holds the same package).
    The template is validated, checked against its note and rendered once; each copy differs
    from it only in its resource URI, name and times."""

    template: Occurrence
    resource_uris: Sequence[str]
    #: The template was made by :func:`~chainproof.domain.messages.strict_from_json` (or
    #: from one that was, setting declared enum values only): it holds no undefined enum,
    #: so that walk is skipped, as ingestion skips it (ADR 0085).
    strict: bool = False


class InsertGuard(Protocol):
    """Runs inside the transaction of a create, for writers that must not duplicate facts
    (copying registry evidence): it chooses which validated drafts to create, and writes what
    it keeps about the created ones, atomically with them."""

    async def keep(self, s: UnitOfWork, drafts: Sequence[Occurrence]) -> Sequence[bool]: ...

    async def created(self, s: UnitOfWork, records: Sequence[OccurrenceRecord]) -> None: ...


def new_occurrence_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Time-ordered IDs land at the end of the B-tree indexes keyed by ID, instead of on a random
    page, which keeps bulk ingest fast on large stores; lists paged by ID come out roughly in
    creation order. The randomness (74 bits) keeps IDs unguessable and unique across replicas.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def new_occurrence_ids(count: int) -> list[str]:
    """``count`` IDs as :func:`new_occurrence_id` makes them, from one read of the clock and
    one of the random source (a 10,000-item ingest spent a tenth of its time on IDs), in
    ascending order: a batch then lands in the ID-keyed B-trees as one run of appends rather
    than at random pages (RFC 9562 allows monotonic IDs within a millisecond; ADR 0086)."""
    ms = f"{(time.time_ns() // 1_000_000) & ((1 << 48) - 1):012x}"
    head = f"{ms[:8]}-{ms[8:12]}-7"
    # 20 random hex digits an ID, of which 74 bits are kept: 12 after the version nibble,
    # 2 under the variant's fixed "10" bits (the fifth digit), 60 after it. Slicing one hex
    # string of the whole pool beats big-integer arithmetic per ID threefold.
    pool = os.urandom(10 * count).hex()
    out = [
        f"{head}{pool[j + 1 : j + 4]}-{_VARIANT[pool[j + 4]]}{pool[j + 5 : j + 8]}-"
        f"{pool[j + 8 : j + 20]}"
        for j in range(0, 20 * count, 20)
    ]
    out.sort()  # lower-case hex of equal length: text order is numeric order
    return out


#: A random hex digit's two low bits under RFC 9562's variant bits ``10``.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


T = TypeVar("T")
#: Bytes one item takes in the transport's list response (the gRPC default: its wire size).
Sizer = Callable[[Any], int]


def _name_size(name: str) -> int:
    return len(name.encode()) + 8  # a project message in the list, or a JSON object


def _named(what: str) -> Callable[[Any], str]:
    return lambda item: f"{what} {item.name}"


def _json_size(item: StoredJson) -> int:
    return len(item.json) + 1  # and its comma, as REST's EncodedItems counts


def _json_named(item: StoredJson) -> str:
    return f"occurrence projects/{item.project}/occurrences/{item.occurrence_id}"


#: Output-only fields: set by the server, never by a request.
_NOTE_OUTPUT_ONLY = frozenset({"name", "kind", "create_time", "update_time"})
_OCC_OUTPUT_ONLY = frozenset({"name", "kind", "create_time", "update_time"})
#: Occurrence kinds that never count as evidence for the judge.
_NOT_EVIDENCE = frozenset({"DEPLOYMENT"})
#: Immutable after creation (Grafeas marks them "Immutable").
_OCC_IMMUTABLE = frozenset({"resource_uri", "note_name"})


class GrafeasService:
    """Notes, occurrences and projects, with Grafeas semantics."""

    def __init__(
        self,
        store: MetadataStore,
        tokens: PageTokenCodec,
        clock: Clock = utc_now,
        new_id: IdFactory = new_occurrence_id,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._new_id = new_id
        self._changes = changes or ChangeFeed()
        self._listeners: list[Callable[[Sequence[OccurrenceRecord]], None]] = []

    def add_listener(self, listener: Callable[[Sequence[OccurrenceRecord]], None]) -> None:
        """Be told of every occurrence written or deleted (the scanner re-matches SBOMs)."""
        self._listeners.append(listener)

    def _announce(self, records: Sequence[OccurrenceRecord]) -> None:
        # Deployment records are written by the judge itself and are no evidence.
        self._changes.resources_changed(r.resource for r in records if r.kind not in _NOT_EVIDENCE)
        for listener in self._listeners:
            listener(records)

    # ---------------------------------------------------------------- projects

    async def create_project(self, name: str) -> str:
        project = parse_project_name(name)
        async with self._store.session() as s:
            if not await s.projects.add(project):
                raise AlreadyExists(f"project {name} already exists")
        return name

    async def get_project(self, name: str) -> str:
        project = parse_project_name(name)
        async with self._store.session(readonly=True) as s:
            if not await s.projects.exists(project):
                raise NotFound(f"project {name} does not exist")
        return name

    async def list_projects(
        self, filter_text: str, size: int | None, token: str, *, size_of: Sizer = _name_size
    ) -> Page[str]:
        if filter_text.strip():
            raise InvalidArgument("filter is not supported when listing projects: leave it empty")
        limit = page_size(size)
        scope = ListScope("projects", "", "")
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session(readonly=True) as s:
            rows = await s.projects.page(after, limit + 1)
        names = [f"projects/{p}" for p in rows]
        return self._page(names, rows, limit, scope, size_of, lambda n: n)

    async def delete_project(self, name: str) -> None:
        project = parse_project_name(name)
        async with self._store.session() as s:
            if not await s.projects.exists(project):
                raise NotFound(f"project {name} does not exist")
            if await s.projects.holds_data(project):
                raise FailedPrecondition(
                    f"project {name} still holds notes or occurrences: delete them first"
                )
            await s.projects.remove(project)

    # ---------------------------------------------------------------- notes

    async def get_note(self, name: str) -> Note:
        nn = parse_note_name(name)
        async with self._store.session(readonly=True) as s:
            rec = await s.notes.get(nn.project, nn.note_id)
        if rec is None:
            raise NotFound(f"note {nn} does not exist")
        return rec.note

    async def list_notes(
        self,
        parent: str,
        filter_text: str,
        size: int | None,
        token: str,
        *,
        size_of: Sizer = proto_size,
    ) -> Page[Note]:
        project = parse_project_name(parent)
        where = flt.parse_filter(filter_text, flt.Target.NOTES)
        limit = page_size(size)
        scope = ListScope("notes", parent, flt.render(where))
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session(readonly=True) as s:
            rows = await s.notes.page(project, where, after, limit + 1)
        notes = [r.note for r in rows]
        return self._page(notes, [r.note_id for r in rows], limit, scope, size_of, _named("note"))

    async def create_note(self, parent: str, note_id: str, note: Note) -> Note:
        project = parse_project_name(parent)
        record = self._new_note(project, note_id, note, what="note")
        async with self._store.session() as s:
            taken = await s.notes.insert([record])
            if taken:
                raise AlreadyExists(f"note projects/{project}/notes/{note_id} already exists")
            await s.projects.add(project)
            await outbox.append(s, _note_events([record], self._clock()))
        return record.note

    async def batch_create_notes(
        self, parent: str, notes: Mapping[str, Note], *, strict: bool = False
    ) -> list[Note]:
        """``strict``: every note was made by
        :func:`~chainproof.domain.messages.strict_from_json`, so holds no undefined enum and
        that walk is skipped (in-process callers only, as ingestion does; ADR 0085)."""
        project = parse_project_name(parent)
        _check_batch_size(len(notes), "notes")
        records: list[NoteRecord] = []
        problems: list[str] = []
        failed = 0
        for note_id, note in notes.items():
            try:
                records.append(
                    self._new_note(
                        project, note_id, note, what=f"notes[{note_id!r}]", enums=not strict
                    )
                )
            except InvalidArgument as exc:
                failed += 1
                problems += _item_problems(exc, f"notes[{note_id!r}]")
        if problems:
            _raise_batch(problems, failed, len(notes), "notes")
        async with self._store.session() as s:
            taken = await s.notes.insert(records)
            if taken:
                raise AlreadyExists(
                    f"{len(taken)} of {len(records)} notes already exist; nothing was created",
                    details=[f"projects/{project}/notes/{t}" for t in taken],
                )
            await s.projects.add(project)
            await outbox.append(s, _note_events(records, self._clock()))
        return [r.note for r in records]

    async def update_note(self, name: str, note: Note, mask: Sequence[str]) -> Note:
        nn = parse_note_name(name)
        paths = parse_mask(mask, NotePB.DESCRIPTOR, what="a Note")
        async with self._store.session() as s:
            current = await s.notes.get(nn.project, nn.note_id, for_update=True)
            if current is None:
                raise NotFound(f"note {nn} does not exist")
            updated = NotePB()
            updated.CopyFrom(current.note)
            if paths:
                _refuse_paths(paths, _NOTE_OUTPUT_ONLY, "is set by the server")
                apply_mask(updated, note, paths)
            else:
                updated.CopyFrom(note)
                _keep_output_only(updated, current.note, _NOTE_OUTPUT_ONLY)
            updated.name = str(nn)
            updated.kind = 0
            kind = derive_kind(updated, oneof="type", what="note")
            if kind != current.kind:
                raise InvalidArgument(
                    f"note {nn} is kind {current.kind}; its kind cannot change to {kind}"
                )
            _raise_problems(note_problems(updated), "note")
            _set_kind(updated, kind)
            updated.create_time.CopyFrom(current.note.create_time)
            updated.update_time.FromDatetime(self._clock())
            document = render_for_storage(updated, "note")
            record = NoteRecord(nn.project, nn.note_id, kind, updated, document)
            await s.notes.replace(record)
            await outbox.append(s, _note_events([record], self._clock()))
        self._changes.configuration_changed()
        return updated

    async def delete_note(self, name: str) -> None:
        nn = parse_note_name(name)
        async with self._store.session() as s:
            current = await s.notes.get(nn.project, nn.note_id)
            if current is None or not await s.notes.delete(nn.project, nn.note_id):
                raise NotFound(f"note {nn} does not exist")
            await outbox.append(s, _note_events([current], self._clock()))
        self._changes.configuration_changed()

    def _new_note(
        self, project: str, note_id: str, note: Note, *, what: str, enums: bool = True
    ) -> NoteRecord:
        if not note_id:
            raise InvalidArgument(f"{what}: noteId is required: the client chooses note IDs")
        validate_resource_id(note_id, what="note ID")
        expected = f"projects/{project}/notes/{note_id}"
        if note.name and note.name != expected:
            raise InvalidArgument(
                f"{what}: name {note.name!r} does not match the parent and noteId, which make "
                f"{expected!r}; leave name empty or make them agree"
            )
        created = NotePB()
        created.CopyFrom(note)
        kind = derive_kind(created, oneof="type", what=what)
        _raise_problems(note_problems(created, enums=enums), what)
        created.name = expected
        _set_kind(created, kind)
        now = self._clock()
        created.create_time.FromDatetime(now)
        created.update_time.FromDatetime(now)
        return NoteRecord(project, note_id, kind, created, render_for_storage(created, what))

    # ---------------------------------------------------------------- occurrences

    async def get_occurrence(self, name: str) -> Occurrence:
        on = parse_occurrence_name(name)
        async with self._store.session(readonly=True) as s:
            rec = await s.occurrences.get(on.project, on.occurrence_id)
        if rec is None:
            raise NotFound(f"occurrence {on} does not exist")
        return rec.occurrence

    async def list_occurrences(
        self,
        parent: str,
        filter_text: str,
        size: int | None,
        token: str,
        *,
        size_of: Sizer = proto_size,
    ) -> Page[Occurrence]:
        project, where, limit, scope, after = self._occurrence_list(
            parent, filter_text, size, token
        )
        async with self._store.session(readonly=True) as s:
            rows = await s.occurrences.page(project, where, after, limit + 1)
        return self._page(
            [r.occurrence for r in rows],
            [r.occurrence_id for r in rows],
            limit,
            scope,
            size_of,
            _named("occurrence"),
        )

    async def list_occurrences_json(
        self, parent: str, filter_text: str, size: int | None, token: str
    ) -> Page[StoredJson]:
        """:meth:`list_occurrences` for an answer in JSON: each occurrence as the JSON it is
        stored as, never decoded into protobuf (ADR 0136). The same names, filter, rows,
        tokens (a token of one serves the other) and byte bound (ADR 0069), counted on
        the JSON bytes that are served."""
        project, where, limit, scope, after = self._occurrence_list(
            parent, filter_text, size, token
        )
        async with self._store.session(readonly=True) as s:
            rows = await s.occurrences.page_json(project, where, after, limit + 1)
        return self._page(
            rows, [r.occurrence_id for r in rows], limit, scope, _json_size, _json_named
        )

    def _occurrence_list(
        self, parent: str, filter_text: str, size: int | None, token: str
    ) -> tuple[str, flt.Expr | None, int, ListScope, str | None]:
        """A list request checked: project, filter, page size, scope and where to resume."""
        project = parse_project_name(parent)
        where = flt.parse_filter(filter_text, flt.Target.OCCURRENCES)
        limit = page_size(size)
        scope = ListScope("occurrences", parent, flt.render(where))
        after = self._tokens.decode(scope, token) if token else None
        return project, where, limit, scope, after

    async def create_occurrence(self, parent: str, occurrence: Occurrence) -> Occurrence:
        return (await self.batch_create_occurrences(parent, [occurrence], single=True))[0]

    async def batch_create_occurrences(
        self, parent: str, occurrences: Sequence[Occurrence], *, single: bool = False
    ) -> list[Occurrence]:
        records = await self.create_occurrence_records(parent, occurrences, single=single)
        return [r.occurrence for r in records]

    async def create_occurrence_records(
        self,
        parent: str,
        occurrences: Sequence[Occurrence],
        *,
        single: bool = False,
        guard: InsertGuard | None = None,
    ) -> list[OccurrenceRecord]:
        """Create occurrences and return their records, whose ``document`` is the JSON form
        (entrypoints that answer in JSON reuse it instead of rendering again). ``guard``, when
        given, may drop drafts first and record the created ones, in the same transaction."""
        project = parse_project_name(parent)
        if not single:
            _check_batch_size(len(occurrences), "occurrences")
        async with self._store.session() as s:
            records = await self._create_in(s, project, occurrences, single=single, guard=guard)
        if records:
            self._announce(records)
        return records

    async def reconcile_occurrences(
        self,
        parent: str,
        create: Sequence[Occurrence],
        delete: Sequence[OccurrenceRecord],
        copies: Sequence[Copies] = (),
        update: Sequence[OccurrenceRecord] = (),
    ) -> Reconciled:
        """Create ``create`` and ``copies``, write ``update`` over the stored occurrences
        they name and delete ``delete``, in one transaction, announced once (and told to the
        outbox in it): what a server-side reconciliation (the scanner's re-match of many
        images) writes. Not bound by the request batch size. An updated record is a stored
        one (as the caller read it) with new details: it keeps its name and create time, may
        not change its kind, note or resource, gets this instant as its update time and is
        checked as any updated occurrence is; a record already gone (another replica closed
        it first) is skipped, neither deleted nor brought back by an update."""
        project = parse_project_name(parent)
        async with self._store.session() as s:
            records = await self._create_in(s, project, create, single=False, guard=None)
            if copies:
                records += await self._create_copies_in(s, project, copies)
            updated = await self._update_in(s, update) if update else []
            by_project: dict[str, list[OccurrenceRecord]] = {}
            for r in delete:
                by_project.setdefault(r.project, []).append(r)
            gone: list[OccurrenceRecord] = []
            for owner, rows in by_project.items():
                ids = set(await s.occurrences.delete_many(owner, [r.occurrence_id for r in rows]))
                gone += [r for r in rows if r.occurrence_id in ids]
            if gone:
                await outbox.append(
                    s, _occurrence_events(EventType.OCCURRENCE_DELETED, gone, self._clock())
                )
        self._announce([*records, *updated, *gone])
        return Reconciled(records, len(gone), updated)

    async def _update_in(
        self, s: UnitOfWork, update: Sequence[OccurrenceRecord]
    ) -> list[OccurrenceRecord]:
        """Write ``update`` over the stored occurrences (:meth:`reconcile_occurrences`);
        return the records written, each as stored."""
        now = self._clock()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(now)
        rewritten: list[OccurrenceRecord] = []
        for r in update:
            what = f"update of occurrence {r.project}/{r.occurrence_id}"
            occ = OccurrencePB()
            occ.CopyFrom(r.occurrence)
            # The record is the stored one (read by the caller) with new details: its name is
            # the key's, its create time the record's; resource, note and kind must agree with
            # the stored columns, as an update cannot change them.
            occ.name = str(OccurrenceName(r.project, r.occurrence_id))
            occ.update_time.CopyFrom(stamp)
            occ.kind = 0
            if derive_kind(occ, oneof="details", what=what) != r.kind:
                raise InvalidArgument(f"{what}: its kind cannot change from {r.kind}")
            if canonical_resource(occ.resource_uri) != r.resource:
                raise InvalidArgument(
                    f"{what}: resourceUri {occ.resource_uri!r} is not the stored resource "
                    f"{r.resource!r}; it cannot change"
                )
            if occ.note_name != f"projects/{r.note_project}/notes/{r.note_id}":
                raise InvalidArgument(
                    f"{what}: noteName {occ.note_name!r} is not the stored note "
                    f"projects/{r.note_project}/notes/{r.note_id}; it cannot change"
                )
            _raise_problems(occurrence_problems(occ), what)
            _set_kind(occ, r.kind)
            rewritten.append(
                OccurrenceRecord(
                    r.project,
                    r.occurrence_id,
                    r.kind,
                    r.note_project,
                    r.note_id,
                    r.resource,
                    occ,
                    render_for_storage(occ, what),
                )
            )
        written = set(await s.occurrences.update_many(rewritten))
        updated = [r for r in rewritten if r.occurrence_id in written]
        if updated:
            await outbox.append(s, _occurrence_events(EventType.OCCURRENCE_UPDATED, updated, now))
        return updated

    async def _create_copies_in(
        self, s: UnitOfWork, project: str, copies: Sequence[Copies]
    ) -> list[OccurrenceRecord]:
        """:meth:`_create_in` for :class:`Copies`: each template is drafted and checked as any
        occurrence is, its note's kind read once (``notes.kinds``), and it is rendered once;
        each distinct resource URI gets the checks every resource URI gets. A copy's message
        and stored JSON are the template's with the resource, name and times set — the same
        bytes rendering the copy would give (the template is rendered with those fields set,
        so the keys keep their order)."""
        drafts: list[tuple[Occurrence, str, NoteName]] = []
        problems: list[str] = []
        note_names: dict[str, NoteName] = {}
        for i, c in enumerate(copies):
            what = f"copies[{i}]"
            try:
                drafts.append(self._draft_copy(c, what, note_names))
            except InvalidArgument as exc:
                problems += _item_problems(exc, what)
        if problems:
            _raise_batch(problems, len(problems), len(copies), "occurrences")
        kinds = await s.notes.kinds([(n.project, n.note_id) for *_, n in drafts])
        for i, (_, kind, note_name) in enumerate(drafts):
            found = kinds.get((note_name.project, note_name.note_id))
            if found is None:
                problems.append(f"copies[{i}]: note {note_name} does not exist: create it first")
            elif not note_kind_accepts(found, kind):
                problems.append(f"copies[{i}]: is kind {kind} but its note {note_name} is {found}")
        # The checks every occurrence's resource URI and note name get, once per distinct
        # value: each URI beside a valid note name, each note name beside a valid URI.
        scratch = OccurrencePB()
        for note in note_names:
            scratch.resource_uri, scratch.note_name = "r", note
            problems += common_occurrence_problems(scratch)
        uris: dict[str, str] = {}  # resource URI → its canonical resource
        valid_note = "projects/p/notes/n"
        for c in copies:
            for uri in c.resource_uris:
                if uri in uris:
                    continue
                scratch.resource_uri, scratch.note_name = uri, valid_note
                problems += common_occurrence_problems(scratch)
                storable_json(uri, "resourceUri")
                uris[uri] = canonical_resource(uri)
        if problems:
            _raise_batch(problems, len(problems), len(copies), "occurrences")
        now = self._clock()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(now)  # one instant for the whole batch
        count = sum(len(c.resource_uris) for c in copies)
        ids = (
            new_occurrence_ids(count)
            if self._new_id is new_occurrence_id
            else [self._new_id() for _ in range(count)]
        )
        records: list[OccurrenceRecord] = []
        for (draft, kind, note_name), c in zip(drafts, copies, strict=True):
            draft.name = str(OccurrenceName(project, ids[len(records)]))
            draft.create_time.CopyFrom(stamp)
            draft.update_time.CopyFrom(stamp)
            document = render_for_storage(draft, f"occurrence on {draft.resource_uri}")
            for uri in c.resource_uris:
                occurrence_id = ids[len(records)]
                name = f"projects/{project}/occurrences/{occurrence_id}"
                occ = OccurrencePB()
                occ.CopyFrom(draft)
                occ.resource_uri, occ.name = uri, name
                stored = dict(document)
                stored["name"], stored["resourceUri"] = name, uri
                records.append(
                    OccurrenceRecord(
                        project,
                        occurrence_id,
                        kind,
                        note_name.project,
                        note_name.note_id,
                        uris[uri],
                        occ,
                        stored,
                        template=draft,
                    )
                )
        if not records:
            return records
        await s.occurrences.insert(records)
        await s.projects.add(project)
        await outbox.append(s, _occurrence_events(EventType.OCCURRENCE_CREATED, records, now))
        return records

    async def _create_in(
        self,
        s: UnitOfWork,
        project: str,
        occurrences: Sequence[Occurrence],
        *,
        single: bool,
        guard: InsertGuard | None,
    ) -> list[OccurrenceRecord]:
        """Validate and insert ``occurrences`` in the caller's unit of work (and their
        created events in its outbox); nothing is announced here."""
        drafts: list[tuple[int, Occurrence, str, NoteName]] = []
        problems: list[str] = []
        failed = 0
        note_names: dict[str, NoteName] = {}  # a batch names a few notes, parsed once each
        for i, occ in enumerate(occurrences):
            what = "occurrence" if single else f"occurrences[{i}]"
            try:
                drafts.append((i, *self._draft_occurrence(occ, what, note_names)))
            except InvalidArgument as exc:
                if single:
                    raise
                failed += 1
                problems += _item_problems(exc, what)
        if problems:
            _raise_batch(problems, failed, len(occurrences), "occurrences")
        stamp = timestamp_pb2.Timestamp()
        created_at = self._clock()
        stamp.FromDatetime(created_at)  # one instant for the whole batch
        if guard is not None:
            kept = await guard.keep(s, [occ for _, occ, _, _ in drafts])
            drafts = [d for d, keep in zip(drafts, kept, strict=True) if keep]
        notes = await s.notes.kinds([(n.project, n.note_id) for *_, n in drafts])
        records: list[OccurrenceRecord] = []
        # The default IDs come from one clock read and one random draw for the batch.
        ids = iter(new_occurrence_ids(len(drafts)) if self._new_id is new_occurrence_id else ())
        resources: dict[str, str] = {}
        for i, occ, kind, note_name in drafts:
            what = "occurrence" if single else f"occurrences[{i}]"
            note_kind = notes.get((note_name.project, note_name.note_id))
            if note_kind is None:
                missing = f"note {note_name} does not exist: create it first"
                if single:
                    raise NotFound(f"occurrence refers to {missing}")
                failed += 1
                problems.append(f"{what}: {missing}")
                continue
            if not note_kind_accepts(note_kind, kind):
                if single:
                    raise InvalidArgument(
                        f"occurrence is kind {kind} but its note {note_name} is kind {note_kind}"
                    )
                failed += 1
                problems.append(
                    f"{what}: is kind {kind} but its note {note_name} is kind {note_kind}"
                )
                continue
            occurrence_id = next(ids, None) or self._new_id()
            occ.name = str(OccurrenceName(project, occurrence_id))
            occ.create_time.CopyFrom(stamp)
            occ.update_time.CopyFrom(stamp)
            resource = resources.get(occ.resource_uri)
            if resource is None:
                resource = resources[occ.resource_uri] = canonical_resource(occ.resource_uri)
            records.append(
                OccurrenceRecord(
                    project=project,
                    occurrence_id=occurrence_id,
                    kind=kind,
                    note_project=note_name.project,
                    note_id=note_name.note_id,
                    resource=resource,
                    occurrence=occ,
                    document=render_for_storage(occ, what),
                )
            )
        if problems:
            _raise_batch(problems, failed, len(occurrences), "occurrences")
        if not records:  # the guard kept nothing: the facts are held already
            return records
        await s.occurrences.insert(records)
        await s.projects.add(project)
        if guard is not None:
            await guard.created(s, records)
        await outbox.append(
            s,
            _occurrence_events(EventType.OCCURRENCE_CREATED, records, created_at),
        )
        return records

    async def update_occurrence(
        self, name: str, occurrence: Occurrence, mask: Sequence[str]
    ) -> Occurrence:
        on = parse_occurrence_name(name)
        paths = parse_mask(mask, OccurrencePB.DESCRIPTOR, what="an Occurrence")
        async with self._store.session() as s:
            current = await s.occurrences.get(on.project, on.occurrence_id, for_update=True)
            if current is None:
                raise NotFound(f"occurrence {on} does not exist")
            old = current.occurrence
            updated = OccurrencePB()
            updated.CopyFrom(old)
            if paths:
                _refuse_paths(paths, _OCC_OUTPUT_ONLY, "is set by the server")
                apply_mask(updated, occurrence, paths)
            else:
                updated.CopyFrom(occurrence)
                _keep_output_only(updated, old, _OCC_OUTPUT_ONLY | _OCC_IMMUTABLE)
            for field in ("resource_uri", "note_name"):
                if getattr(updated, field) != getattr(old, field):
                    raise InvalidArgument(
                        f"{_camel(field)} of occurrence {on} is immutable: it is "
                        f"{getattr(old, field)!r}; create a new occurrence instead"
                    )
            updated.name = str(on)
            updated.kind = 0
            kind = derive_kind(updated, oneof="details", what="occurrence")
            if kind != current.kind:
                raise InvalidArgument(
                    f"occurrence {on} is kind {current.kind}; its kind cannot change to {kind}"
                )
            _raise_problems(occurrence_problems(updated), "occurrence")
            _set_kind(updated, kind)
            now = self._clock()
            updated.update_time.FromDatetime(now)
            await s.occurrences.replace(
                OccurrenceRecord(
                    project=current.project,
                    occurrence_id=current.occurrence_id,
                    kind=kind,
                    note_project=current.note_project,
                    note_id=current.note_id,
                    resource=current.resource,
                    occurrence=updated,
                    document=render_for_storage(updated, "occurrence"),
                )
            )
            await outbox.append(s, _occurrence_events(EventType.OCCURRENCE_UPDATED, [current], now))
        self._announce([current])
        return updated

    async def delete_occurrence(self, name: str) -> None:
        on = parse_occurrence_name(name)
        async with self._store.session() as s:
            current = await s.occurrences.get(on.project, on.occurrence_id)
            if current is None or not await s.occurrences.delete(on.project, on.occurrence_id):
                raise NotFound(f"occurrence {on} does not exist")
            await outbox.append(
                s, _occurrence_events(EventType.OCCURRENCE_DELETED, [current], self._clock())
            )
        self._announce([current])

    async def get_occurrence_note(self, name: str) -> Note:
        on = parse_occurrence_name(name)
        async with self._store.session(readonly=True) as s:
            occ = await s.occurrences.get(on.project, on.occurrence_id)
            if occ is None:
                raise NotFound(f"occurrence {on} does not exist")
            note = await s.notes.get(occ.note_project, occ.note_id)
        if note is None:
            raise NotFound(
                f"note projects/{occ.note_project}/notes/{occ.note_id} of occurrence {on} "
                "no longer exists"
            )
        return note.note

    async def list_note_occurrences(
        self,
        name: str,
        filter_text: str,
        size: int | None,
        token: str,
        *,
        size_of: Sizer = proto_size,
    ) -> Page[Occurrence]:
        nn = parse_note_name(name)
        where = flt.parse_filter(filter_text, flt.Target.OCCURRENCES)
        limit = page_size(size)
        scope = ListScope("note-occurrences", str(nn), flt.render(where))
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session(readonly=True) as s:
            if await s.notes.get(nn.project, nn.note_id) is None:
                raise NotFound(f"note {nn} does not exist")
            rows = await s.occurrences.page_of_note(nn.project, nn.note_id, where, after, limit + 1)
        return self._page(
            [r.occurrence for r in rows],
            [r.occurrence_id for r in rows],
            limit,
            scope,
            size_of,
            _named("occurrence"),
        )

    # ---------------------------------------------------------------- helpers

    def _draft_copy(
        self, copies: Copies, what: str, note_names: dict[str, NoteName]
    ) -> tuple[Occurrence, str, NoteName]:
        """:meth:`_draft_occurrence` for a template; its resource URI and note name are
        checked by the caller, once per distinct value."""
        draft = OccurrencePB()
        draft.CopyFrom(copies.template)
        for field in _OCC_OUTPUT_ONLY - {"kind"}:
            draft.ClearField(field)
        kind = derive_kind(draft, oneof="details", what=what)
        _raise_problems(occurrence_problems(draft, enums=not copies.strict, common=False), what)
        note_name = note_names.get(draft.note_name)
        if note_name is None:
            note_name = note_names[draft.note_name] = parse_note_name(
                draft.note_name, field=f"{what}: noteName"
            )
        _set_kind(draft, kind)
        return draft, kind, note_name

    def _draft_occurrence(
        self, occ: Occurrence, what: str, note_names: dict[str, NoteName] | None = None
    ) -> tuple[Occurrence, str, NoteName]:
        draft = OccurrencePB()
        draft.CopyFrom(occ)
        # Output-only fields in a request are ignored (AIP-203), never trusted.
        for field in _OCC_OUTPUT_ONLY - {"kind"}:
            draft.ClearField(field)
        kind = derive_kind(draft, oneof="details", what=what)
        _raise_problems(occurrence_problems(draft), what)
        cached = note_names.get(draft.note_name) if note_names is not None else None
        if cached is None:
            note_name = parse_note_name(draft.note_name, field=f"{what}: noteName")
            if note_names is not None:
                note_names[draft.note_name] = note_name
        else:
            note_name = cached
        _set_kind(draft, kind)
        return draft, kind, note_name

    def _page(
        self,
        items: list[T],
        keys: list[str],
        limit: int,
        scope: ListScope,
        size_of: Callable[[T], int],
        name_of: Callable[[T], str],
    ) -> Page[T]:
        # ``items`` holds one more than ``limit`` when there is more: the page ends at the
        # count or at the byte budget, whichever comes first, and the token resumes there.
        count = bounded_count(items, limit, size_of, name_of)
        if len(items) > count:
            return Page(items[:count], self._tokens.encode(scope, keys[count - 1]))
        return Page(items, "")


def _note_events(records: Sequence[NoteRecord], now: datetime) -> list[Any]:
    return outbox.note_events(((r.project, r.note_id, r.kind) for r in records), now)


def _occurrence_events(
    kind: EventType, records: Sequence[OccurrenceRecord], now: datetime
) -> list[Any]:
    return outbox.occurrence_events(kind, records, now)


def _set_kind(msg: Any, kind: str) -> None:
    msg.kind = msg.DESCRIPTOR.fields_by_name["kind"].enum_type.values_by_name[kind].number


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _refuse_paths(paths: Sequence[str], refused: frozenset[str], why: str) -> None:
    bad = [p for p in paths if p.split(".")[0] in refused]
    if bad:
        raise InvalidArgument(
            "updateMask names fields that cannot be updated: "
            + ", ".join(f"{_camel(p)} {why}" for p in bad)
        )


def _keep_output_only(updated: Any, current: Any, fields: frozenset[str]) -> None:
    for field in fields:
        if field in ("resource_uri", "note_name") and getattr(updated, field):
            continue  # compared against the stored value by the caller
        if current.DESCRIPTOR.fields_by_name[field].message_type is not None:
            if current.HasField(field):
                getattr(updated, field).CopyFrom(getattr(current, field))
            else:
                updated.ClearField(field)
        else:
            setattr(updated, field, getattr(current, field))


def _raise_problems(problems: list[str], what: str) -> None:
    if problems:
        raise InvalidArgument(
            f"{what} is missing required fields" if len(problems) > 1 else f"{what}: {problems[0]}",
            details=problems if len(problems) > 1 else (),
        )


def _check_batch_size(n: int, what: str) -> None:
    if n == 0:
        raise InvalidArgument(f"a batch create needs at least one of {what}; none were given")
    if n > MAX_BATCH:
        raise InvalidArgument(
            f"a batch create takes at most {MAX_BATCH} {what}; {n} were given: split the batch"
        )


def _item_problems(exc: InvalidArgument, what: str) -> list[str]:
    """One line per problem, each starting with the item it concerns."""
    if exc.details:
        return [f"{what}: {d}" for d in exc.details]
    message = exc.message
    return [message if message.startswith(what) else f"{what}: {message}"]


def _raise_batch(problems: list[str], failed: int, total: int, what: str) -> None:
    raise InvalidArgument(
        f"{failed} of {total} {what} are invalid; nothing was created", details=problems
    )
