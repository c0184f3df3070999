"""The judge's repositories on SQL: documents (attestors, policies, scanner state) and the
decision log, on the unit of work's connection (store/sql/tx.py).

The decision log writes each decision's distinct images to ``decision_images`` too, so that a
query by image starts from that table's ``(image, decision_id)`` index (ADR 0020).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from chainproof.store.judge import (
    DecisionOutcome,
    DecisionQuery,
    DecisionRecord,
    DecisionRepository,
    DocumentRecord,
    DocumentRepository,
    RecordedAdmission,
    recorded_admission,
)
from chainproof.store.sql.schema import decision_images, decisions, documents
from chainproof.store.sql.summaries import SqlImageSummaries
from chainproof.store.sql.tx import Row, SqlTx, by_keys

_DOCUMENT_SELECT = sa.select(
    documents.c.project,
    documents.c.collection,
    documents.c.doc_id,
    documents.c.data,
    documents.c.etag,
    documents.c.create_time,
    documents.c.update_time,
)
_DECISION_SELECT = sa.select(
    decisions.c.decision_id,
    decisions.c.project,
    decisions.c.time,
    decisions.c.outcome,
    decisions.c.namespace,
    decisions.c.images,
    decisions.c.data,
)


#: Keys per ``IN (…)`` read, and rows per upsert statement.
_KEYS_PER_QUERY = 500
_ROWS_PER_STATEMENT = 1_000
_DOCUMENT_KEY = ("project", "collection", "doc_id")
_DOCUMENT_VALUES = ("data", "etag", "create_time", "update_time")


def _document_row(record: DocumentRecord) -> dict[str, Any]:
    # dict(): the JSON serialiser takes dicts, and a Mapping need not be one.
    return {
        "project": record.project,
        "collection": record.collection,
        "doc_id": record.doc_id,
        "data": dict(record.data),
        "etag": record.etag,
        "create_time": record.create_time,
        "update_time": record.update_time,
    }


_OUTCOME_SELECT = sa.select(
    decisions.c.time,
    decisions.c.outcome,
    decisions.c.data["breakglass"].as_boolean().label("breakglass"),
)
_ADMISSION_SELECT = sa.select(
    decisions.c.decision_id,
    decisions.c.time,
    decisions.c.outcome,
    decisions.c.namespace,
    decisions.c.data["requestImages"].label("request_images"),
    decisions.c.data["cluster"].as_string().label("cluster"),
    decisions.c.data["serviceAccount"].as_string().label("service_account"),
    decisions.c.data["workload"].as_string().label("workload"),
    decisions.c.data["dryRun"].as_boolean().label("dry_run"),
)


def _placeholder(row: Row) -> RecordedAdmission:
    return RecordedAdmission(row.decision_id, row.time, row.outcome, "", "", "", "", ())


def _document(row: Row) -> DocumentRecord:
    return DocumentRecord(
        project=row.project,
        collection=row.collection,
        doc_id=row.doc_id,
        data=row.data,
        etag=row.etag,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _decision(row: Row) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row.decision_id,
        project=row.project,
        time=row.time,
        outcome=row.outcome,
        namespace=row.namespace,
        images=tuple(row.images),
        data=row.data,
    )


class SqlDocuments(DocumentRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._tx, self._c = tx, tx.connection

    async def get(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None:
        stmt = _DOCUMENT_SELECT.where(
            documents.c.project == project,
            documents.c.collection == collection,
            documents.c.doc_id == doc_id,
        )
        row = (await self._c.execute(self._tx.locked(stmt, for_update))).first()
        return None if row is None else _document(row)

    async def put(self, record: DocumentRecord) -> None:
        row = _document_row(record)
        await self._c.execute(self._upsert().values(row))

    def _upsert(self) -> sa.Insert:
        stmt = self._tx.insert(documents)
        return stmt.on_conflict_do_update(
            index_elements=[documents.c[name] for name in _DOCUMENT_KEY],
            set_={name: stmt.excluded[name] for name in _DOCUMENT_VALUES},
        )

    async def _get_many(
        self, project: str, collection: str, doc_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        out: dict[str, DocumentRecord] = {}
        for start in range(0, len(doc_ids), _KEYS_PER_QUERY):
            chunk = list(doc_ids[start : start + _KEYS_PER_QUERY])
            stmt = by_keys(
                self._tx.postgres,
                _DOCUMENT_SELECT,
                documents,
                (documents.c.project == project, documents.c.collection == collection),
                ("doc_id",),
                [(i,) for i in chunk],
            )
            for row in await self._c.execute(stmt):
                out[row.doc_id] = _document(row)
        return out

    async def _put_many(self, records: Sequence[DocumentRecord]) -> None:
        # One upsert statement over the list of rows (executemany), per chunk.
        stmt = self._upsert()
        for start in range(0, len(records), _ROWS_PER_STATEMENT):
            chunk = records[start : start + _ROWS_PER_STATEMENT]
            await self._c.execute(stmt, [_document_row(r) for r in chunk])

    async def delete(self, project: str, collection: str, doc_id: str) -> bool:
        stmt = documents.delete().where(
            documents.c.project == project,
            documents.c.collection == collection,
            documents.c.doc_id == doc_id,
        )
        return (await self._c.execute(stmt)).rowcount > 0

    async def _page(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]:
        stmt = _DOCUMENT_SELECT.where(
            documents.c.project == project, documents.c.collection == collection
        )
        if after is not None:
            stmt = stmt.where(documents.c.doc_id > after)
        stmt = stmt.order_by(documents.c.doc_id).limit(limit)
        return [_document(row) for row in await self._c.execute(stmt)]


class SqlDecisions(DecisionRepository):
    """Writes also keep each image's newest decision for the image summaries (ADR 0122)."""

    def __init__(self, tx: SqlTx, summaries: SqlImageSummaries) -> None:
        self._tx, self._c = tx, tx.connection
        self._summaries = summaries

    async def _insert_new(self, records: Sequence[DecisionRecord]) -> None:
        # decision_id is the primary key on its own: an ID stored already fails with
        # IntegrityError rather than replacing the first record. Two executemany calls for
        # the whole batch: the decision log writes in bulk.
        await self._c.execute(
            decisions.insert(),
            [
                {
                    "decision_id": r.decision_id,
                    "project": r.project,
                    "time": r.time,
                    "outcome": r.outcome,
                    "namespace": r.namespace,
                    "images": list(r.images),
                    "data": dict(r.data),
                }
                for r in records
            ],
        )
        images = [
            {"decision_id": r.decision_id, "image": image}
            for r in records
            for image in dict.fromkeys(r.images)
        ]
        if images:
            await self._c.execute(decision_images.insert(), images)
        await self._summaries.decisions_written(records)

    async def _page(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        stmt = self._query(_DECISION_SELECT, query, after, limit)
        return [_decision(row) for row in await self._c.execute(stmt)]

    async def _outcomes(self, query: DecisionQuery, limit: int) -> list[DecisionOutcome]:
        # Newest by time: a time window is a range of ix_decisions_time (project, time),
        # read backwards until the bound, whatever the log's length.
        stmt = self._query(_OUTCOME_SELECT, replace(query, newest_first=False), None, limit)
        stmt = stmt.order_by(None).order_by(decisions.c.time.desc(), decisions.c.decision_id.desc())
        return [
            DecisionOutcome(row.time, row.outcome, bool(row.breakglass))
            for row in await self._c.execute(stmt)
        ]

    async def _admissions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[RecordedAdmission]:
        # Only what a replay reads: the record's few request fields, not the explained
        # decision (which is most of its size). Records older than ``requestImages`` carry
        # their images in the decision only; those rows are read whole.
        stmt = self._query(_ADMISSION_SELECT, query, after, limit)
        out: list[RecordedAdmission] = []
        old: list[str] = []
        for row in await self._c.execute(stmt):
            if row.request_images is None:
                old.append(row.decision_id)
                out.append(_placeholder(row))
                continue
            out.append(
                RecordedAdmission(
                    decision_id=row.decision_id,
                    time=row.time,
                    outcome=row.outcome,
                    cluster=row.cluster or "",
                    namespace=row.namespace,
                    service_account=row.service_account or "",
                    workload=row.workload or "",
                    images=tuple(str(i) for i in row.request_images if isinstance(i, str) and i),
                    dry_run=bool(row.dry_run),
                )
            )
        if old:
            whole = _DECISION_SELECT.where(decisions.c.decision_id.in_(old))
            rows = await self._c.execute(whole)
            found = {r.decision_id: recorded_admission(_decision(r)) for r in rows}
            out = [found.get(a.decision_id, a) for a in out]
        return out

    def _query(
        self, select: sa.Select[Any], query: DecisionQuery, after: str | None, limit: int
    ) -> sa.Select[Any]:
        stmt = select.where(decisions.c.project == query.project)
        key: sa.ColumnElement[str] = decisions.c.decision_id
        if query.image is not None:
            # Drive the query from decision_images: its (image, decision_id) index yields the
            # matching IDs already in key order, and its primary key allows one row per
            # decision and image, so the join cannot repeat a decision.
            stmt = stmt.join(
                decision_images, decision_images.c.decision_id == decisions.c.decision_id
            ).where(decision_images.c.image == query.image)
            key = decision_images.c.decision_id
        if query.namespace is not None:
            stmt = stmt.where(decisions.c.namespace == query.namespace)
        if query.outcome is not None:
            stmt = stmt.where(decisions.c.outcome == query.outcome)
        if query.since is not None:
            stmt = stmt.where(decisions.c.time >= query.since)
        if query.until is not None:
            stmt = stmt.where(decisions.c.time < query.until)
        if query.newest_first:
            if after is not None:
                stmt = stmt.where(key < after)
            return stmt.order_by(key.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(key > after)
        return stmt.order_by(key).limit(limit)
