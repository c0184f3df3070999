"""The MetadataStore port: what the services need from storage, and nothing more.

A store hands out units of work (``store.session()``); a unit of work is one transaction and
exposes one repository per kind of data, each working inside that transaction:

* ``uow.projects``, ``uow.notes``, ``uow.occurrences``, ``uow.meta``: the scribe's data
  (store/scribe.py);
* ``uow.documents`` (attestors, policies, scanner state) and ``uow.decisions`` (the admission
  decision log): the judge's (store/judge.py);
* ``uow.access``: IAM policies, API tokens and the audit log (store/access.py);
* ``uow.image_summaries``: the per-image summaries the dashboard reads, kept by the
  occurrence and decision writes of the same unit of work (store/summaries.py, ADR 0122);
* ``uow.inventory``, ``uow.outbox``, ``uow.subscriptions``, ``uow.deliveries`` and
  ``uow.violations``: what happens after admission (store/runtime_port.py).

Everything written through a unit of work lands when the ``async with`` block ends normally
and none of it when it raises, so writes to several repositories (an occurrence and the
outbox event announcing it) are atomic by construction. ``commit()`` and ``rollback()`` end
the transaction early and begin the next one in the same unit of work. Repositories and
adapters never commit on their own.

The rules every adapter keeps alike (distinct keys in a batch, the error a repeat raises,
empty work) live once in store/rules.py and the repository base classes; docs/adr/0144
explains how a new kind of data adds its repository. The records and repositories are
defined in their kind's module and re-exported here, so services import the store from one
place.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from chainproof.store.access import AccessRepository
from chainproof.store.judge import (
    DecisionQuery,
    DecisionRecord,
    DecisionRepository,
    DocumentRecord,
    DocumentRepository,
)
from chainproof.store.rules import DuplicateKey
from chainproof.store.runtime_port import (
    DeliveryRepository,
    InventoryRepository,
    OutboxRepository,
    RuntimeUnit,
    SubscriptionRepository,
    ViolationRepository,
)
from chainproof.store.scribe import (
    MetaRepository,
    NoteRecord,
    NoteRepository,
    OccurrenceRecord,
    OccurrenceRepository,
    OccurrenceSlice,
    ProjectRepository,
    SlicesRead,
    StoredJson,
    StoredOccurrence,
)
from chainproof.store.summaries import ImageSummaryRepository

__all__ = [
    "AccessRepository",
    "ChangeChannel",
    "DecisionQuery",
    "DecisionRecord",
    "DecisionRepository",
    "DeliveryRepository",
    "DocumentRecord",
    "DocumentRepository",
    "DuplicateKey",
    "ImageSummaryRepository",
    "InventoryRepository",
    "MetaRepository",
    "MetadataStore",
    "NoteRecord",
    "NoteRepository",
    "OccurrenceRecord",
    "OccurrenceRepository",
    "OccurrenceSlice",
    "OutboxRepository",
    "ProjectRepository",
    "SlicesRead",
    "StoredJson",
    "StoredOccurrence",
    "SubscriptionRepository",
    "UnitOfWork",
    "ViolationRepository",
]


class UnitOfWork(RuntimeUnit, Protocol):
    """One transaction and the repositories that work inside it. Repositories raise only on
    infrastructure failure and on the shared rules; "not found" is None. The runtime
    repositories come from :class:`RuntimeUnit` (store/runtime_port.py): an outbox event
    appended here commits or rolls back with the change it announces."""

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def notes(self) -> NoteRepository: ...

    @property
    def occurrences(self) -> OccurrenceRepository: ...

    @property
    def meta(self) -> MetaRepository: ...

    @property
    def documents(self) -> DocumentRepository: ...

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def access(self) -> AccessRepository: ...

    @property
    def image_summaries(self) -> ImageSummaryRepository: ...

    async def commit(self) -> None:
        """Make everything written so far durable and visible to others, and begin the next
        transaction (row locks taken with ``for_update`` are released)."""

    async def rollback(self) -> None:
        """Undo everything written since the transaction began, and begin the next one."""


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

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """One unit of work: its transaction begins on entry, commits when the block ends
        normally and rolls back when it raises. ``readonly`` promises no writes, so a backend
        may let it run beside writers (SQLite: a snapshot read instead of the write lock)."""
