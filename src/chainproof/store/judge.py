"""The judge's data: its documents (attestors, policies, scanner state) and the decision log,
one repository each.

As in store/scribe.py, each repository is an abstract class whose public methods apply the
shared rules (store/rules.py) and hand the rest to the adapters' hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chainproof.store.rules import distinct, require_distinct


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
    #: Newest first: a page's ``after`` is then the ID the page goes back from (exclusive),
    #: read backwards on the same indexes (the dashboard's decision log).
    newest_first: bool = False


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """What the overview counts of a decision: when, its outcome, whether breakglass."""

    time: datetime
    outcome: str
    breakglass: bool


@dataclass(frozen=True, slots=True)
class RecordedAdmission:
    """What a replay needs of one recorded decision: where the workload was to run and the
    images as its spec wrote them (not the whole explained decision)."""

    decision_id: str
    time: datetime
    outcome: str
    cluster: str
    namespace: str
    service_account: str
    workload: str
    #: The images as written in the spec, in order (the decision judged these).
    images: tuple[str, ...]
    dry_run: bool = False


def recorded_admission(record: DecisionRecord) -> RecordedAdmission:
    """The replay view of a whole record (the memory adapter, and records written before
    ``requestImages`` was kept: their images are read back from the decision)."""
    data = record.data
    images = data.get("requestImages")
    if not isinstance(images, list):
        decided = (data.get("decision") or {}).get("images") or []
        images = [i.get("image", "") for i in decided if isinstance(i, Mapping)]
    return RecordedAdmission(
        decision_id=record.decision_id,
        time=record.time,
        outcome=record.outcome,
        cluster=str(data.get("cluster") or ""),
        namespace=record.namespace,
        service_account=str(data.get("serviceAccount") or ""),
        workload=str(data.get("workload") or ""),
        images=tuple(str(i) for i in images if isinstance(i, str) and i),
        dry_run=bool(data.get("dryRun")),
    )


def _decision_id(record: DecisionRecord) -> str:
    return record.decision_id


def _document_key(record: DocumentRecord) -> tuple[str, str, str]:
    return (record.project, record.collection, record.doc_id)


def _document_name(record: DocumentRecord) -> str:
    return f"{record.project}/{record.collection}/{record.doc_id}"


class DocumentRepository(ABC):
    """Documents by ``(project, collection, doc_id)``, listed by ``doc_id``."""

    @abstractmethod
    async def get(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None:
        """``for_update``: lock the row until the transaction ends (read-modify-write)."""

    @abstractmethod
    async def put(self, record: DocumentRecord) -> None:
        """Insert or replace (the service checks etags first, in the same unit of work)."""

    @abstractmethod
    async def delete(self, project: str, collection: str, doc_id: str) -> bool: ...

    async def get_many(
        self, project: str, collection: str, doc_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        """The stored documents among ``doc_ids`` of one collection, by ID (a batch's reads in
        one query per chunk, not one each)."""
        unique = distinct(doc_ids)
        if not unique:
            return {}
        return await self._get_many(project, collection, unique)

    async def put_many(self, records: Sequence[DocumentRecord]) -> None:
        """Insert or replace each record, as :meth:`put` does, in one statement per chunk. The
        same key twice raises DuplicateKey before anything is written."""
        if not records:
            return
        require_distinct(records, _document_key, "document", _document_name)
        await self._put_many(records)

    async def page(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]:
        if limit <= 0:
            return []
        return await self._page(project, collection, after, limit)

    @abstractmethod
    async def _get_many(
        self, project: str, collection: str, doc_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        """``doc_ids`` is not empty and has no repeats."""

    @abstractmethod
    async def _put_many(self, records: Sequence[DocumentRecord]) -> None:
        """``records`` is not empty and its keys are distinct."""

    @abstractmethod
    async def _page(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]:
        """``limit`` is positive."""


class DecisionRepository(ABC):
    async def insert(self, records: Sequence[DecisionRecord]) -> None:
        """Insert new decisions. IDs are unique across projects: the same ID twice in
        ``records`` raises DuplicateKey before anything is written; an ID already stored fails
        the batch (DuplicateKey in memory, the database's IntegrityError on SQL)."""
        if not records:
            return
        require_distinct(records, _decision_id, "decision", _decision_id)
        await self._insert_new(records)

    async def page(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        """Decisions matching every given criterion (``image`` is one canonical reference,
        matching decisions that judged it; ``since`` inclusive, ``until`` exclusive)."""
        if limit <= 0:
            return []
        return await self._page(query, after, limit)

    async def outcomes(self, query: DecisionQuery, limit: int) -> list[DecisionOutcome]:
        """(time, outcome, breakglass) of the newest ``limit`` decisions matching ``query``
        by time (ties: the greater ID first), newest first, whatever its ``newest_first``:
        the overview's counts without reading each whole explained decision."""
        if limit <= 0:
            return []
        return await self._outcomes(query, limit)

    async def _outcomes(self, query: DecisionQuery, limit: int) -> list[DecisionOutcome]:
        """``limit`` is positive. By default built from every matching record; SQL reads
        three columns of ``limit`` rows."""
        rows: list[DecisionRecord] = []
        after: str | None = None
        forwards = replace(query, newest_first=False)
        while True:
            page = await self._page(forwards, after, 1000)
            rows += page
            if len(page) < 1000:
                break
            after = page[-1].decision_id
        rows.sort(key=lambda r: (r.time, r.decision_id), reverse=True)
        return [
            DecisionOutcome(r.time, r.outcome, bool(r.data.get("breakglass"))) for r in rows[:limit]
        ]

    async def admissions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[RecordedAdmission]:
        """The replay view (:class:`RecordedAdmission`) of the decisions ``page`` would
        return, in the same order, without reading each whole explained decision."""
        if limit <= 0:
            return []
        return await self._admissions(query, after, limit)

    async def _admissions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[RecordedAdmission]:
        """``limit`` is positive. By default built from ``page``; SQL reads less."""
        return [recorded_admission(r) for r in await self._page(query, after, limit)]

    @abstractmethod
    async def _insert_new(self, records: Sequence[DecisionRecord]) -> None:
        """``records`` is not empty and its IDs are distinct."""

    @abstractmethod
    async def _page(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        """``limit`` is positive."""
