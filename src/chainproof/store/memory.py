"""In-memory MetadataStore, for tests and for trying things out: the reference adapter.

Units of work run one at a time (a lock). Every change a unit of work makes is recorded in its
undo log, which ``rollback`` (or a block that raises) replays in reverse and ``commit``
forgets: the same all-or-nothing behaviour as the SQL stores. Every repository of a unit of
work writes to the same log, which is what makes a write to several of them atomic; a new
repository takes the state and the log and nothing else. Messages are copied on the way in
and out, so callers can never mutate stored state.

Occurrences are indexed as the SQL stores index them — by project, by (project, resource) and
by note — so a page filtered on a resource (or on a few, ``resource = a OR resource = b``)
looks at those occurrences only, not at every occurrence stored (the scanner's re-match pages
through the occurrences of hundreds of images at a time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Or, evaluate
from chainproof.domain.kinds import finding_aliases
from chainproof.domain.messages import to_json
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.policy import IamPolicy
from chainproof.store.access import AccessRepository, AuditEntry, AuditQuery, matches
from chainproof.store.judge import (
    DecisionQuery,
    DecisionRecord,
    DecisionRepository,
    DocumentRecord,
    DocumentRepository,
)
from chainproof.store.memory_runtime import MemoryRuntimeState, memory_repositories
from chainproof.store.memory_summaries import MemoryImageSummaries, MemorySummaryState
from chainproof.store.port import UnitOfWork
from chainproof.store.rules import already_stored
from chainproof.store.scribe import (
    MetaRepository,
    NoteRecord,
    NoteRepository,
    OccurrenceRecord,
    OccurrenceRepository,
    OccurrenceSlice,
    ProjectRepository,
    SlicesRead,
    StoredOccurrence,
)

R = TypeVar("R", NoteRecord, OccurrenceRecord)

#: A unit of work's undo log: one step per change, replayed last first.
Undo = list[Callable[[], None]]


def _copy(record: R) -> R:
    # The records are built field by field rather than by ``dataclasses.replace``, which
    # costs three times as much (an SBOM's ingest copies 20,000 records in, ADR 0207);
    # tests/unit/test_memory_store_garbage.py checks that every field is carried over.
    if isinstance(record, NoteRecord):
        note = type(record.note)()
        note.CopyFrom(record.note)
        return NoteRecord(record.project, record.note_id, record.kind, note, record.document)
    occurrence = type(record.occurrence)()
    occurrence.CopyFrom(record.occurrence)
    return OccurrenceRecord(
        record.project,
        record.occurrence_id,
        record.kind,
        record.note_project,
        record.note_id,
        record.resource,
        occurrence,
        record.document,
        record.template,
    )


def _identity(record: OccurrenceRecord) -> tuple[str, str, str, str]:
    """What an update of an occurrence never changes (store/scribe.py ``update_many``)."""
    return record.kind, record.note_project, record.note_id, record.resource


def _plain(value: Any) -> Any:
    """A deep copy of JSON-like data, so callers never share state with the store."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _State:
    def __init__(self) -> None:
        self.projects: set[str] = set()
        self.notes: dict[tuple[str, str], NoteRecord] = {}
        self.occurrences: dict[tuple[str, str], OccurrenceRecord] = {}
        # Indexes of ``occurrences``, kept by _Occurrences._put alone.
        self.by_project: dict[str, set[str]] = {}
        self.by_resource: dict[tuple[str, str], set[str]] = {}
        self.by_note: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.meta: dict[str, str] = {}
        self.documents: dict[tuple[str, str, str], DocumentRecord] = {}
        self.decisions: dict[str, DecisionRecord] = {}
        self.policies: dict[str, IamPolicy] = {}
        self.tokens: dict[str, ApiToken] = {}
        self.audit: list[AuditEntry] = []
        self.runtime = MemoryRuntimeState()
        self.summaries = MemorySummaryState()

    def index(self, record: OccurrenceRecord, present: bool) -> None:
        key = (record.project, record.occurrence_id)
        entries: list[tuple[dict[Any, Any], Any, Any]] = [
            (self.by_project, record.project, record.occurrence_id),
            (self.by_resource, (record.project, record.resource), record.occurrence_id),
            (self.by_note, (record.note_project, record.note_id), key),
        ]
        for table, bucket, member in entries:
            if present:
                table.setdefault(bucket, set()).add(member)
            else:
                found = table.get(bucket)
                if found is not None:
                    found.discard(member)
                    if not found:
                        del table[bucket]


def _resources_required(where: Expr | None) -> set[str] | None:
    """The resources a match must have one of, when ``where`` says (``resource = x``, an OR of
    those, or either inside an AND); None when any resource may match."""
    if isinstance(where, Compare):
        if where.column is FilterColumn.RESOURCE and not where.negated:
            return {where.value}
        return None
    if isinstance(where, Or) and where.items:
        found: set[str] = set()
        for item in where.items:
            one = _resources_required(item)
            if one is None:
                return None
            found |= one
        return found
    if isinstance(where, And):
        for item in where.items:
            one = _resources_required(item)
            if one is not None:
                return one
    return None


def _set(undo: Undo, table: dict[Any, Any], key: Any, value: Any) -> None:
    """``table[key] = value`` (None: remove it), undoably."""
    previous = table.get(key)
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value

    def back() -> None:
        if previous is None:
            table.pop(key, None)
        else:
            table[key] = previous

    undo.append(back)


def _page(
    records: Iterable[R], key: Callable[[R], str], where: Expr | None, after: str | None, limit: int
) -> list[R]:
    chosen = [r for r in records if (after is None or key(r) > after) and evaluate(where, r.column)]
    chosen.sort(key=key)
    return [_copy(r) for r in chosen[:limit]]


class _Projects(ProjectRepository):
    def __init__(self, state: _State, undo: Undo) -> None:
        self._s, self._undo = state, undo

    async def add(self, project: str) -> bool:
        if project in self._s.projects:
            return False
        self._s.projects.add(project)
        self._undo.append(lambda: self._s.projects.discard(project))
        return True

    async def exists(self, project: str) -> bool:
        return project in self._s.projects

    async def _page(self, after: str | None, limit: int) -> list[str]:
        return sorted(p for p in self._s.projects if after is None or p > after)[:limit]

    async def remove(self, project: str) -> bool:
        if project not in self._s.projects:
            return False
        self._s.projects.discard(project)
        self._undo.append(lambda: self._s.projects.add(project))
        return True

    async def holds_data(self, project: str) -> bool:
        return any(p == project for p, _ in self._s.notes) or any(
            p == project for p, _ in self._s.occurrences
        )


# for_update: writers run one at a time (the store's lock), so a read-modify-write in one
# unit of work is atomic without a row lock.


class _Notes(NoteRepository):
    def __init__(self, state: _State, undo: Undo) -> None:
        self._s, self._undo = state, undo

    async def _insert_new(self, records: Sequence[NoteRecord]) -> list[str]:
        taken = [r.note_id for r in records if (r.project, r.note_id) in self._s.notes]
        if taken:
            return taken
        for r in records:
            _set(self._undo, self._s.notes, (r.project, r.note_id), _copy(r))
        return []

    async def get(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        r = self._s.notes.get((project, note_id))
        return None if r is None else _copy(r)

    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        return {k: _copy(self._s.notes[k]) for k in keys if k in self._s.notes}

    async def _kinds(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {k: self._s.notes[k].kind for k in keys if k in self._s.notes}

    async def replace(self, record: NoteRecord) -> None:
        _set(self._undo, self._s.notes, (record.project, record.note_id), _copy(record))

    async def delete(self, project: str, note_id: str) -> bool:
        if (project, note_id) not in self._s.notes:
            return False
        _set(self._undo, self._s.notes, (project, note_id), None)
        return True

    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        rows = (r for (p, _), r in self._s.notes.items() if p == project)
        return _page(rows, lambda r: r.note_id, where, after, limit)


class _Occurrences(OccurrenceRepository):
    """Every write also keeps the image summaries of the same unit of work (ADR 0122)."""

    def __init__(self, state: _State, undo: Undo, summaries: MemoryImageSummaries) -> None:
        self._s, self._undo = state, undo
        self._summaries = summaries

    def _put(self, key: tuple[str, str], record: OccurrenceRecord | None) -> None:
        """Set (or with None, remove) one occurrence, its indexes, and the undo of both."""
        state = self._s
        previous = state.occurrences.get(key)
        if previous is not None:
            state.index(previous, False)
            del state.occurrences[key]
        if record is not None:
            state.occurrences[key] = record
            state.index(record, True)
        self._summaries.occurrence_changed(previous, record)

        def back() -> None:
            current = state.occurrences.pop(key, None)
            if current is not None:
                state.index(current, False)
            if previous is not None:
                state.occurrences[key] = previous
                state.index(previous, True)

        self._undo.append(back)

    async def _insert_new(self, records: Sequence[OccurrenceRecord]) -> None:
        for r in records:
            if (r.project, r.occurrence_id) in self._s.occurrences:
                raise already_stored("occurrence", r.occurrence_id)
            self._put((r.project, r.occurrence_id), _copy(r))

    async def get(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        r = self._s.occurrences.get((project, occurrence_id))
        return None if r is None else _copy(r)

    async def replace(self, record: OccurrenceRecord) -> None:
        self._put((record.project, record.occurrence_id), _copy(record))

    async def _update_many(self, records: Sequence[OccurrenceRecord]) -> list[str]:
        written: list[str] = []
        for r in records:
            key = (r.project, r.occurrence_id)
            stored = self._s.occurrences.get(key)
            if stored is None or _identity(stored) != _identity(r):
                continue
            self._put(key, _copy(r))
            written.append(r.occurrence_id)
        return written

    async def delete(self, project: str, occurrence_id: str) -> bool:
        if (project, occurrence_id) not in self._s.occurrences:
            return False
        self._put((project, occurrence_id), None)
        return True

    async def _delete_many(self, project: str, occurrence_ids: Sequence[str]) -> list[str]:
        return [i for i in occurrence_ids if await self.delete(project, i)]

    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        resources = _resources_required(where)
        if resources is None:
            ids: Iterable[str] = self._s.by_project.get(project, ())
        else:
            ids = {i for r in resources for i in self._s.by_resource.get((project, r), ())}
        rows = (self._s.occurrences[(project, i)] for i in ids)
        return _page(rows, lambda r: r.occurrence_id, where, after, limit)

    async def _page_documents(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredOccurrence]:
        return [
            StoredOccurrence(
                r.project,
                r.occurrence_id,
                r.kind,
                r.note_project,
                r.note_id,
                r.resource,
                _plain(r.document) if r.document is not None else to_json(r.occurrence),
            )
            for r in await self._page(project, where, after, limit)
        ]

    async def _page_of_note(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        keys = self._s.by_note.get((note_project, note_id), ())
        rows = (self._s.occurrences[k] for k in keys)
        return _page(rows, lambda r: r.occurrence_id, where, after, limit)

    async def _read_slices(self, slices: Sequence[OccurrenceSlice]) -> SlicesRead:
        state = self._s
        answers: list[list[OccurrenceRecord]] = []
        notes: dict[tuple[str, str], NoteRecord] = {}
        for s in slices:
            if s.note is not None:
                found: Iterable[OccurrenceRecord] = (
                    r
                    for r in (state.occurrences[k] for k in state.by_note.get(s.note, ()))
                    if r.resource == s.resource
                )
            else:
                assert s.project is not None
                project = s.project
                ids = state.by_resource.get((project, s.resource), ())
                found = (state.occurrences[(project, i)] for i in ids)
            chosen = sorted(
                (r for r in found if not s.kinds or r.kind in s.kinds),
                key=lambda r: r.occurrence_id,
            )[: s.limit]
            answers.append([_copy(r) for r in chosen])
            for r in chosen:
                key = (r.note_project, r.note_id)
                if r.kind in s.with_notes and key in state.notes and key not in notes:
                    notes[key] = _copy(state.notes[key])
        return SlicesRead(tuple(answers), notes)

    async def _vulnerable_resources(
        self, project: str, ids: Sequence[str], after: str | None, limit: int
    ) -> list[str]:
        wanted = set(ids)
        found: set[str] = set()
        for i in self._s.by_project.get(project, ()):
            r = self._s.occurrences[(project, i)]
            if r.kind != "VULNERABILITY" or (after is not None and r.resource <= after):
                continue
            extra = str(r.occurrence.vulnerability.extra_details)
            named = {r.note_id.upper(), *(a.upper() for a in finding_aliases(extra))}
            if named & wanted:
                found.add(r.resource)
        return sorted(found)[:limit]

    async def _note_resources(
        self, project: str, note_project: str, note_id: str, after: str | None, limit: int
    ) -> list[str]:
        found = {
            self._s.occurrences[k].resource
            for k in self._s.by_note.get((note_project, note_id), ())
            if k[0] == project
        }
        return sorted(r for r in found if after is None or r > after)[:limit]


class _Meta(MetaRepository):
    def __init__(self, state: _State, undo: Undo) -> None:
        self._s, self._undo = state, undo

    async def get_or_set(self, key: str, value: str) -> str:
        if key not in self._s.meta:
            _set(self._undo, self._s.meta, key, value)
        return self._s.meta[key]


# Judge records are frozen and hold plain JSON values, so no copies are needed beyond the
# mapping itself.


class _Documents(DocumentRepository):
    def __init__(self, state: _State, undo: Undo) -> None:
        self._s, self._undo = state, undo

    async def get(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None:
        record = self._s.documents.get((project, collection, doc_id))
        return None if record is None else replace(record, data=_plain(record.data))

    async def put(self, record: DocumentRecord) -> None:
        key = (record.project, record.collection, record.doc_id)
        _set(self._undo, self._s.documents, key, replace(record, data=_plain(record.data)))

    async def delete(self, project: str, collection: str, doc_id: str) -> bool:
        key = (project, collection, doc_id)
        if key not in self._s.documents:
            return False
        _set(self._undo, self._s.documents, key, None)
        return True

    async def _get_many(
        self, project: str, collection: str, doc_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        found = ((i, self._s.documents.get((project, collection, i))) for i in doc_ids)
        return {i: replace(r, data=_plain(r.data)) for i, r in found if r is not None}

    async def _put_many(self, records: Sequence[DocumentRecord]) -> None:
        for record in records:
            await self.put(record)

    async def _page(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]:
        rows = sorted(
            (
                r
                for (p, c, _), r in self._s.documents.items()
                if p == project and c == collection and (after is None or r.doc_id > after)
            ),
            key=lambda r: r.doc_id,
        )
        return [replace(r, data=_plain(r.data)) for r in rows[:limit]]


class _Decisions(DecisionRepository):
    def __init__(self, state: _State, undo: Undo, summaries: MemoryImageSummaries) -> None:
        self._s, self._undo = state, undo
        self._summaries = summaries

    async def _insert_new(self, records: Sequence[DecisionRecord]) -> None:
        for record in records:
            if record.decision_id in self._s.decisions:
                raise already_stored("decision", record.decision_id)
            stored = replace(record, data=_plain(record.data))
            _set(self._undo, self._s.decisions, record.decision_id, stored)
        self._summaries.decisions_written(records)

    async def _page(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        def wanted(r: DecisionRecord) -> bool:
            return (
                r.project == query.project
                and (
                    after is None
                    or (r.decision_id < after if query.newest_first else r.decision_id > after)
                )
                and (query.image is None or query.image in r.images)
                and (query.namespace is None or r.namespace == query.namespace)
                and (query.outcome is None or r.outcome == query.outcome)
                and (query.since is None or r.time >= query.since)
                and (query.until is None or r.time < query.until)
            )

        rows = sorted(
            (r for r in self._s.decisions.values() if wanted(r)),
            key=lambda r: r.decision_id,
            reverse=query.newest_first,
        )
        return [replace(r, data=_plain(r.data)) for r in rows[:limit]]


class _Access(AccessRepository):
    def __init__(self, state: _State, undo: Undo) -> None:
        self._s, self._undo = state, undo

    async def _get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        return {r: self._s.policies[r] for r in resources if r in self._s.policies}

    async def _write_policy(
        self, resource: str, project: str, policy: IamPolicy, now: datetime
    ) -> None:
        _set(self._undo, self._s.policies, resource, policy if policy.bindings else None)

    async def _token_named(self, name: str) -> ApiToken | None:
        return self._s.tokens.get(name)

    async def _insert_token(self, token: ApiToken) -> None:
        _set(self._undo, self._s.tokens, token.name, token)

    async def find_token(self, token_hash: str) -> ApiToken | None:
        for t in self._s.tokens.values():
            if t.token_hash == token_hash:
                return t
        return None

    async def list_tokens(self, project: str | None) -> list[ApiToken]:
        return sorted(
            (t for t in self._s.tokens.values() if project is None or t.project == project),
            key=lambda t: t.name,
        )

    async def _revoke_if_live(self, name: str, now: datetime) -> None:
        t = self._s.tokens.get(name)
        if t is not None and t.revoked_at is None:
            _set(self._undo, self._s.tokens, name, replace(t, revoked_at=now))

    async def _append_audit(self, entries: Sequence[AuditEntry]) -> None:
        log, before = self._s.audit, len(self._s.audit)
        log.extend(entries)
        self._undo.append(lambda: log.__delitem__(slice(before, None)))

    async def _list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        found = sorted(
            (e for e in self._s.audit if matches(e, query)), key=lambda e: e.entry_id, reverse=True
        )
        return found[: query.limit]


class _MemoryUnitOfWork:
    """One unit of work on the shared state; its repositories write to one undo log."""

    def __init__(self, state: _State) -> None:
        self._undo: Undo = []
        runtime = memory_repositories(state.runtime, self._undo)
        self.inventory = runtime.inventory
        self.outbox = runtime.outbox
        self.subscriptions = runtime.subscriptions
        self.deliveries = runtime.deliveries
        self.violations = runtime.violations
        self.projects = _Projects(state, self._undo)
        self.notes = _Notes(state, self._undo)
        self.image_summaries = MemoryImageSummaries(state.summaries, self._undo)
        self.occurrences = _Occurrences(state, self._undo, self.image_summaries)
        self.meta = _Meta(state, self._undo)
        self.documents = _Documents(state, self._undo)
        self.decisions = _Decisions(state, self._undo, self.image_summaries)
        self.access = _Access(state, self._undo)

    async def commit(self) -> None:
        await self.image_summaries.flush()
        self._undo.clear()  # cleared in place: the repositories hold this very list

    async def rollback(self) -> None:
        self.undo_all()

    def undo_all(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.image_summaries.discard()


class MemoryStore:
    """A MetadataStore that lives in one process and dies with it."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    def change_channel(self) -> None:
        return None  # one process: the in-process change feed is all there is

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
        async with self._lock:
            uow = _MemoryUnitOfWork(self._state)
            try:
                yield uow
                # Commit: flush, and forget the undo log. Its steps close over the
                # repositories, which hold the log: kept, the log was a cycle that only
                # the cyclic collector freed (an SBOM's 270,000 objects, ADR 0207).
                await uow.commit()
            except BaseException:
                uow.undo_all()
                raise
