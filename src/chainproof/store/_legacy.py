"""Transitional: the old one-protocol session methods, each forwarding to its repository, so
that callers can move to ``uow.<kind>.<method>`` one commit at a time. Removed once no
caller uses them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainproof.domain.filters import Expr
    from chainproof.store.access import AccessRepository
    from chainproof.store.judge import (
        DecisionQuery,
        DecisionRecord,
        DecisionRepository,
        DocumentRecord,
        DocumentRepository,
    )
    from chainproof.store.scribe import (
        MetaRepository,
        NoteRecord,
        NoteRepository,
        OccurrenceRecord,
        OccurrenceRepository,
        ProjectRepository,
    )


class LegacySessionMethods:
    projects: ProjectRepository
    notes: NoteRepository
    occurrences: OccurrenceRepository
    meta: MetaRepository
    documents: DocumentRepository
    decisions: DecisionRepository
    access: AccessRepository

    async def commit(self) -> None:
        raise NotImplementedError

    async def rollback(self) -> None:
        raise NotImplementedError

    async def add_project(self, project: str) -> bool:
        return await self.projects.add(project)

    async def has_project(self, project: str) -> bool:
        return await self.projects.exists(project)

    async def list_projects(self, after: str | None, limit: int) -> list[str]:
        return await self.projects.page(after, limit)

    async def remove_project(self, project: str) -> bool:
        return await self.projects.remove(project)

    async def project_holds_data(self, project: str) -> bool:
        return await self.projects.holds_data(project)

    async def insert_notes(self, records: Sequence[NoteRecord]) -> list[str]:
        return await self.notes.insert(records)

    async def get_note(self, project: str, note_id: str, *, for_update: bool = False) -> Any:
        return await self.notes.get(project, note_id, for_update=for_update)

    async def get_notes(self, keys: Sequence[tuple[str, str]]) -> Any:
        return await self.notes.get_many(keys)

    async def replace_note(self, record: NoteRecord) -> None:
        await self.notes.replace(record)

    async def delete_note(self, project: str, note_id: str) -> bool:
        return await self.notes.delete(project, note_id)

    async def list_notes(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> Any:
        return await self.notes.page(project, where, after, limit)

    async def insert_occurrences(self, records: Sequence[OccurrenceRecord]) -> None:
        await self.occurrences.insert(records)

    async def get_occurrence(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> Any:
        return await self.occurrences.get(project, occurrence_id, for_update=for_update)

    async def replace_occurrence(self, record: OccurrenceRecord) -> None:
        await self.occurrences.replace(record)

    async def delete_occurrence(self, project: str, occurrence_id: str) -> bool:
        return await self.occurrences.delete(project, occurrence_id)

    async def list_occurrences(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> Any:
        return await self.occurrences.page(project, where, after, limit)

    async def list_note_occurrences(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> Any:
        return await self.occurrences.page_of_note(note_project, note_id, where, after, limit)

    async def get_document(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> Any:
        return await self.documents.get(project, collection, doc_id, for_update=for_update)

    async def put_document(self, record: DocumentRecord) -> None:
        await self.documents.put(record)

    async def delete_document(self, project: str, collection: str, doc_id: str) -> bool:
        return await self.documents.delete(project, collection, doc_id)

    async def list_documents(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> Any:
        return await self.documents.page(project, collection, after, limit)

    async def insert_decisions(self, records: Sequence[DecisionRecord]) -> None:
        await self.decisions.insert(records)

    async def list_decisions(self, query: DecisionQuery, after: str | None, limit: int) -> Any:
        return await self.decisions.page(query, after, limit)

    async def get_or_set_meta(self, key: str, value: str) -> str:
        return await self.meta.get_or_set(key, value)
