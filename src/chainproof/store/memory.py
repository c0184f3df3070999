"""In-memory MetadataStore, for tests and for trying things out.

Sessions run one at a time (a lock), and every change made in a session is undone in reverse
order when the session fails, which gives the same all-or-nothing behaviour as the SQL stores.
Messages are copied on the way in and out, so callers can never mutate stored state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

from chainproof.domain.filters import Expr, evaluate
from chainproof.store.port import (
    DecisionQuery,
    DecisionRecord,
    DocumentRecord,
    NoteRecord,
    OccurrenceRecord,
    StoreSession,
)

R = TypeVar("R", NoteRecord, OccurrenceRecord)


def _copy(record: R) -> R:
    msg = record.note if isinstance(record, NoteRecord) else record.occurrence
    clone = type(msg)()
    clone.CopyFrom(msg)
    if isinstance(record, NoteRecord):
        return replace(record, note=clone)
    return replace(record, occurrence=clone)


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
        self.meta: dict[str, str] = {}
        self.documents: dict[tuple[str, str, str], DocumentRecord] = {}
        self.decisions: dict[str, DecisionRecord] = {}


def _page(
    records: Iterable[R], key: Callable[[R], str], where: Expr | None, after: str | None, limit: int
) -> list[R]:
    chosen = [r for r in records if (after is None or key(r) > after) and evaluate(where, r.column)]
    chosen.sort(key=key)
    return [_copy(r) for r in chosen[:limit]]


class _MemorySession:
    def __init__(self, state: _State) -> None:
        self._s = state
        self._undo: list[Callable[[], None]] = []

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        previous = table.get(key)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

        def undo() -> None:
            if previous is None:
                table.pop(key, None)
            else:
                table[key] = previous

        self._undo.append(undo)

    # projects
    async def add_project(self, project: str) -> bool:
        if project in self._s.projects:
            return False
        self._s.projects.add(project)
        self._undo.append(lambda: self._s.projects.discard(project))
        return True

    async def has_project(self, project: str) -> bool:
        return project in self._s.projects

    async def list_projects(self, after: str | None, limit: int) -> list[str]:
        return sorted(p for p in self._s.projects if after is None or p > after)[:limit]

    async def remove_project(self, project: str) -> bool:
        if project not in self._s.projects:
            return False
        self._s.projects.discard(project)
        self._undo.append(lambda: self._s.projects.add(project))
        return True

    async def project_holds_data(self, project: str) -> bool:
        return any(p == project for p, _ in self._s.notes) or any(
            p == project for p, _ in self._s.occurrences
        )

    # notes
    async def insert_notes(self, records: Sequence[NoteRecord]) -> list[str]:
        seen: set[tuple[str, str]] = set()
        taken: list[str] = []
        for r in records:
            key = (r.project, r.note_id)
            if key in self._s.notes or key in seen:
                taken.append(r.note_id)
            seen.add(key)
        if taken:
            return taken
        for r in records:
            self._set(self._s.notes, (r.project, r.note_id), _copy(r))
        return []

    # for_update: writer sessions already run one at a time (the store's lock), so a
    # read-modify-write in one of them is atomic without a row lock.
    async def get_note(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        r = self._s.notes.get((project, note_id))
        return None if r is None else _copy(r)

    async def get_notes(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        return {k: _copy(self._s.notes[k]) for k in set(keys) if k in self._s.notes}

    async def replace_note(self, record: NoteRecord) -> None:
        self._set(self._s.notes, (record.project, record.note_id), _copy(record))

    async def delete_note(self, project: str, note_id: str) -> bool:
        if (project, note_id) not in self._s.notes:
            return False
        self._set(self._s.notes, (project, note_id), None)
        return True

    async def list_notes(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        rows = (r for (p, _), r in self._s.notes.items() if p == project)
        return _page(rows, lambda r: r.note_id, where, after, limit)

    # occurrences
    async def insert_occurrences(self, records: Sequence[OccurrenceRecord]) -> None:
        for r in records:
            if (r.project, r.occurrence_id) in self._s.occurrences:
                raise RuntimeError(f"occurrence {r.occurrence_id} exists: IDs must be new")
            self._set(self._s.occurrences, (r.project, r.occurrence_id), _copy(r))

    async def get_occurrence(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        r = self._s.occurrences.get((project, occurrence_id))
        return None if r is None else _copy(r)

    async def replace_occurrence(self, record: OccurrenceRecord) -> None:
        self._set(self._s.occurrences, (record.project, record.occurrence_id), _copy(record))

    async def delete_occurrence(self, project: str, occurrence_id: str) -> bool:
        if (project, occurrence_id) not in self._s.occurrences:
            return False
        self._set(self._s.occurrences, (project, occurrence_id), None)
        return True

    async def list_occurrences(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        rows = (r for (p, _), r in self._s.occurrences.items() if p == project)
        return _page(rows, lambda r: r.occurrence_id, where, after, limit)

    async def list_note_occurrences(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        rows = (
            r
            for r in self._s.occurrences.values()
            if r.note_project == note_project and r.note_id == note_id
        )
        return _page(rows, lambda r: r.occurrence_id, where, after, limit)

    # judge documents: records are frozen and hold plain JSON values, so no copies are needed
    # beyond the mapping itself.
    async def get_document(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None:
        record = self._s.documents.get((project, collection, doc_id))
        return None if record is None else replace(record, data=_plain(record.data))

    async def put_document(self, record: DocumentRecord) -> None:
        key = (record.project, record.collection, record.doc_id)
        self._set(self._s.documents, key, replace(record, data=_plain(record.data)))

    async def delete_document(self, project: str, collection: str, doc_id: str) -> bool:
        key = (project, collection, doc_id)
        if key not in self._s.documents:
            return False
        self._set(self._s.documents, key, None)
        return True

    async def list_documents(
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

    async def insert_decisions(self, records: Sequence[DecisionRecord]) -> None:
        for record in records:
            if record.decision_id in self._s.decisions:
                raise RuntimeError(f"decision {record.decision_id} exists: IDs must be new")
            stored = replace(record, data=_plain(record.data))
            self._set(self._s.decisions, record.decision_id, stored)

    async def list_decisions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        def wanted(r: DecisionRecord) -> bool:
            return (
                r.project == query.project
                and (after is None or r.decision_id > after)
                and (query.image is None or query.image in r.images)
                and (query.namespace is None or r.namespace == query.namespace)
                and (query.outcome is None or r.outcome == query.outcome)
                and (query.since is None or r.time >= query.since)
                and (query.until is None or r.time < query.until)
            )

        rows = sorted(
            (r for r in self._s.decisions.values() if wanted(r)), key=lambda r: r.decision_id
        )
        return [replace(r, data=_plain(r.data)) for r in rows[:limit]]

    def _forget_meta(self, key: str) -> None:
        self._s.meta.pop(key, None)

    async def get_or_set_meta(self, key: str, value: str) -> str:
        if key not in self._s.meta:
            self._s.meta[key] = value
            self._undo.append(lambda: self._forget_meta(key))
        return self._s.meta[key]


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
    async def session(self, *, readonly: bool = False) -> AsyncIterator[StoreSession]:
        async with self._lock:
            s = _MemorySession(self._state)
            try:
                yield s
            except BaseException:
                s.rollback()
                raise
