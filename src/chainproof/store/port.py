"""The MetadataStore port: what the services need from storage, and nothing more.

A store hands out sessions; a session is one transaction. Everything written in a session
lands when the ``async with`` block ends normally and none of it when it raises, so a batch
create is atomic by construction. Adapters never commit on their own.

Records carry the whole Grafeas message beside the indexed columns that queries use (kind,
canonical resource, note project and ID). Services compute those columns with the domain
rules; adapters only store and compare them, so every adapter matches images the same way.

Lists use keyset pagination: ``after`` is the last key of the previous page (note ID or
occurrence ID, compared as strings) and results come in ascending key order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chainproof.domain.filters import Expr, FilterColumn
from chainproof.domain.messages import Note, Occurrence


@dataclass(frozen=True, slots=True)
class NoteRecord:
    project: str
    note_id: str
    kind: str
    note: Note
    #: ``note`` in protobuf's JSON mapping, when the caller has rendered it already (the
    #: service does, once); adapters that store JSON use it instead of rendering again.
    document: Mapping[str, Any] | None = None

    def column(self, column: FilterColumn) -> str:
        if column is FilterColumn.KIND:
            return self.kind
        if column is FilterColumn.NOTE_PROJECT:
            return self.project
        if column is FilterColumn.NOTE_ID:
            return self.note_id
        return ""


@dataclass(frozen=True, slots=True)
class OccurrenceRecord:
    project: str
    occurrence_id: str
    kind: str
    note_project: str
    note_id: str
    #: The canonical identity of ``occurrence.resource_uri`` (see domain.images).
    resource: str
    occurrence: Occurrence
    #: ``occurrence`` in protobuf's JSON mapping, when already rendered (see NoteRecord).
    document: Mapping[str, Any] | None = None

    def column(self, column: FilterColumn) -> str:
        if column is FilterColumn.KIND:
            return self.kind
        if column is FilterColumn.RESOURCE:
            return self.resource
        if column is FilterColumn.NOTE_PROJECT:
            return self.note_project
        return self.note_id


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """A judge resource stored whole as JSON: an attestor, a project's policy.

    ``etag`` changes whenever the content changes; writers may require the etag they read
    (optimistic concurrency), so two admins never silently overwrite each other.
    """

    project: str
    collection: str
    doc_id: str
    data: Mapping[str, Any]
    etag: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One admission decision, kept for audit and replay.

    ``decision_id`` sorts in time order (it starts with the time), so keyset pagination over
    it lists decisions chronologically.
    """

    decision_id: str
    project: str
    time: datetime
    outcome: str
    namespace: str
    #: Canonical references of every image judged.
    images: tuple[str, ...]
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    project: str
    image: str | None = None
    namespace: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class StoreSession(Protocol):
    """One transaction. Methods raise only on infrastructure failure; "not found" is None."""

    # projects --------------------------------------------------------------------------
    async def add_project(self, project: str) -> bool:
        """Record a project; False if it already existed."""

    async def has_project(self, project: str) -> bool: ...

    async def list_projects(self, after: str | None, limit: int) -> list[str]: ...

    async def remove_project(self, project: str) -> bool: ...

    async def project_holds_data(self, project: str) -> bool:
        """Whether any note or occurrence lives in the project."""

    # notes ------------------------------------------------------------------------------
    async def insert_notes(self, records: Sequence[NoteRecord]) -> list[str]:
        """Insert all; if any ID is taken (stored already, or twice in ``records``), insert
        nothing and return the taken IDs."""

    async def get_note(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        """``for_update``: lock the row until the session ends (read-modify-write)."""
        ...

    async def get_notes(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], NoteRecord]: ...

    async def replace_note(self, record: NoteRecord) -> None: ...

    async def delete_note(self, project: str, note_id: str) -> bool: ...

    async def list_notes(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]: ...

    # occurrences ------------------------------------------------------------------------
    async def insert_occurrences(self, records: Sequence[OccurrenceRecord]) -> None:
        """Insert new occurrences. IDs are server-made UUIDs, unique across all projects
        (``list_note_occurrences`` pages by ID alone); an existing key is a bug."""

    async def get_occurrence(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        """``for_update``: lock the row until the session ends (read-modify-write)."""
        ...

    async def replace_occurrence(self, record: OccurrenceRecord) -> None: ...

    async def delete_occurrence(self, project: str, occurrence_id: str) -> bool: ...

    async def list_occurrences(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]: ...

    async def list_note_occurrences(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        """Occurrences of one note, across every project."""

    # judge documents (attestors, policies) ---------------------------------------------------
    async def get_document(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None: ...

    async def put_document(self, record: DocumentRecord) -> None:
        """Insert or replace (the service checks etags first, inside the same session)."""

    async def delete_document(self, project: str, collection: str, doc_id: str) -> bool: ...

    async def list_documents(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]: ...

    # decision log --------------------------------------------------------------------------
    async def insert_decisions(self, records: Sequence[DecisionRecord]) -> None:
        """Insert new decisions; IDs are unique across projects (an existing one is a bug)."""

    async def list_decisions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        """Decisions matching every given criterion (``image`` is one canonical reference,
        matching decisions that judged it; ``since`` inclusive, ``until`` exclusive)."""

    # server metadata ----------------------------------------------------------------------
    async def get_or_set_meta(self, key: str, value: str) -> str:
        """Return the stored value of ``key``, storing ``value`` first if there is none."""


class ChangeChannel(Protocol):
    """A broadcast between the replicas sharing one database (PostgreSQL LISTEN/NOTIFY), used
    to tell every replica's caches what changed."""

    async def publish(self, payload: str) -> None: ...

    async def listen(self, on_message: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        """Deliver messages until cancelled; call ``on_gap`` whenever some may have been
        missed (on start and after every reconnection)."""


class MetadataStore(Protocol):
    """A storage backend. ``open`` brings the schema up to date; ``close`` releases it."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the backend cannot serve requests (used by /readyz)."""

    def change_channel(self) -> ChangeChannel | None:
        """How replicas sharing this database hear about each other's writes; None when the
        store cannot be shared between processes that need it (memory, SQLite)."""

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[StoreSession]:
        """One transaction. ``readonly`` promises no writes, so a backend may let it run
        beside writers (SQLite: a snapshot read instead of taking the write lock)."""
