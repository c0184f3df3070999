"""The SQL MetadataStore: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

Owns the engine, the transaction around each session, and the queries behind every
StoreSession method. It leaves the meaning of the data to others: services compute the kind,
the canonical resource and the note columns, domain.filters parses filters, and the migrations
create the schema. Semantics follow the in-memory reference adapter (store/memory.py).

Where the two databases differ, the difference is spelled out here and nowhere else:

* SQLite takes its write lock at ``BEGIN IMMEDIATE``, because a transaction that reads first
  and writes later can fail with SQLITE_BUSY without waiting; with the lock taken up front,
  writers queue for up to ``busy_timeout``. WAL lets readers go on meanwhile.
* An in-memory SQLite database lives in one connection (StaticPool), so sessions on it take
  turns behind an asyncio lock instead of interleaving on that connection.
* ``INSERT … ON CONFLICT`` comes from each dialect's own ``insert`` construct; the two have
  the same API.
* PostgreSQL pools connections and pings them before use, so a restarted server does not fail
  the first request of every pooled connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from chainproof.domain.filters import Expr
from chainproof.domain.messages import NotePB, OccurrencePB, from_stored_json, to_json
from chainproof.errors import Unavailable
from chainproof.store.port import (
    ChangeChannel,
    DecisionQuery,
    DecisionRecord,
    DocumentRecord,
    NoteRecord,
    OccurrenceRecord,
    StoreSession,
)
from chainproof.store.sql import bulk, migrate
from chainproof.store.sql.filters import NOTE_COLUMNS, OCCURRENCE_COLUMNS, compile_filter
from chainproof.store.sql.notify import PgChangeChannel
from chainproof.store.sql.schema import (
    decision_images,
    decisions,
    documents,
    meta,
    notes,
    occurrences,
    projects,
)
from chainproof.store.sql.urls import DatabaseTarget, Dialect, parse_database_url

#: How long a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000
#: How long connecting to PostgreSQL may take before the store reports it unavailable.
POSTGRES_CONNECT_TIMEOUT_S = 10.0
#: Keys per ``(project, id) IN (…)`` query: well under both databases' parameter limits.
_KEYS_PER_QUERY = 500


#: A result row. Typed loosely because Row's type parameters changed between SQLAlchemy 2.0 and
#: 2.1 (one per column in 2.1), and the columns are read by name anyway.
_Row = Any


def _dump_json(value: Any) -> str:
    # Compact and UTF-8 as is: the documents are large in bulk, and nobody reads them raw.
    return orjson.dumps(value).decode()


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp = getattr(message, field)
    return _datetime(stamp.seconds, stamp.nanos)


@functools.lru_cache(maxsize=1024)  # a batch shares one instant; convert it once
def _datetime(seconds: int, nanos: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)


def _note_row(record: NoteRecord) -> dict[str, Any]:
    return {
        "project": record.project,
        "note_id": record.note_id,
        "kind": record.kind,
        "data": record.document if record.document is not None else to_json(record.note),
        "create_time": _time(record.note, "create_time"),
        "update_time": _time(record.note, "update_time"),
    }


def _occurrence_row(record: OccurrenceRecord) -> dict[str, Any]:
    return {
        "project": record.project,
        "occurrence_id": record.occurrence_id,
        "kind": record.kind,
        "note_project": record.note_project,
        "note_id": record.note_id,
        "resource": record.resource,
        "data": (record.document if record.document is not None else to_json(record.occurrence)),
        "create_time": _time(record.occurrence, "create_time"),
        "update_time": _time(record.occurrence, "update_time"),
    }


def _occurrence_document(record: OccurrenceRecord) -> str:
    data = record.document if record.document is not None else to_json(record.occurrence)
    return _dump_json(data)


def _record_time(record: OccurrenceRecord, field: str) -> datetime | None:
    return _time(record.occurrence, field)


_NOTE_SELECT = sa.select(notes.c.project, notes.c.note_id, notes.c.kind, notes.c.data)
_OCCURRENCE_SELECT = sa.select(
    occurrences.c.project,
    occurrences.c.occurrence_id,
    occurrences.c.kind,
    occurrences.c.note_project,
    occurrences.c.note_id,
    occurrences.c.resource,
    occurrences.c.data,
)


def _note(row: _Row) -> NoteRecord:
    return NoteRecord(
        project=row.project,
        note_id=row.note_id,
        kind=row.kind,
        note=from_stored_json(NotePB, row.data),
    )


def _occurrence(row: _Row) -> OccurrenceRecord:
    return OccurrenceRecord(
        project=row.project,
        occurrence_id=row.occurrence_id,
        kind=row.kind,
        note_project=row.note_project,
        note_id=row.note_id,
        resource=row.resource,
        occurrence=from_stored_json(OccurrencePB, row.data),
    )


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


def _document(row: _Row) -> DocumentRecord:
    return DocumentRecord(
        project=row.project,
        collection=row.collection,
        doc_id=row.doc_id,
        data=row.data,
        etag=row.etag,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _decision(row: _Row) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row.decision_id,
        project=row.project,
        time=row.time,
        outcome=row.outcome,
        namespace=row.namespace,
        images=tuple(row.images),
        data=row.data,
    )


class _SqlSession:
    """One transaction on one connection; the store commits or rolls it back."""

    def __init__(self, connection: AsyncConnection, dialect: Dialect) -> None:
        self._c = connection
        self._dialect = dialect

    @property
    def connection(self) -> AsyncConnection:
        """This session's connection, for repositories that keep their queries elsewhere."""
        return self._c

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._dialect is Dialect.POSTGRESQL:
            return postgresql.insert(table)
        return sqlite.insert(table)

    # projects ----------------------------------------------------------------------------
    async def add_project(self, project: str) -> bool:
        stmt = self._insert(projects).values(name=project).on_conflict_do_nothing()
        result = await self._c.execute(stmt)
        return result.rowcount == 1

    async def has_project(self, project: str) -> bool:
        stmt = sa.select(projects.c.name).where(projects.c.name == project)
        return (await self._c.execute(stmt)).first() is not None

    async def list_projects(self, after: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        stmt = sa.select(projects.c.name).order_by(projects.c.name).limit(limit)
        if after is not None:
            stmt = stmt.where(projects.c.name > after)
        return list((await self._c.execute(stmt)).scalars())

    async def remove_project(self, project: str) -> bool:
        result = await self._c.execute(projects.delete().where(projects.c.name == project))
        return result.rowcount > 0

    async def project_holds_data(self, project: str) -> bool:
        stmt = sa.select(
            sa.or_(
                sa.exists().where(notes.c.project == project),
                sa.exists().where(occurrences.c.project == project),
            )
        )
        return bool((await self._c.execute(stmt)).scalar())

    # notes -------------------------------------------------------------------------------
    async def _existing_notes(self, keys: Sequence[tuple[str, str]]) -> list[_Row]:
        rows: list[_Row] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _KEYS_PER_QUERY):
            chunk = unique[start : start + _KEYS_PER_QUERY]
            stmt = _NOTE_SELECT.where(sa.tuple_(notes.c.project, notes.c.note_id).in_(chunk))
            rows.extend((await self._c.execute(stmt)).all())
        return rows

    async def _taken(self, records: Sequence[NoteRecord]) -> list[str]:
        found = {
            (row.project, row.note_id)
            for row in await self._existing_notes([(r.project, r.note_id) for r in records])
        }
        return [r.note_id for r in records if (r.project, r.note_id) in found]

    async def insert_notes(self, records: Sequence[NoteRecord]) -> list[str]:
        if not records:
            return []
        # The same key twice in one batch: the second would take the first's ID.
        seen: set[tuple[str, str]] = set()
        repeated = []
        for r in records:
            if (r.project, r.note_id) in seen:
                repeated.append(r.note_id)
            seen.add((r.project, r.note_id))
        if repeated:
            return repeated
        taken = await self._taken(records)
        if taken:
            return taken
        # A concurrent session may insert the same ID between our check and our insert (on
        # PostgreSQL the insert then waits for it and fails on the primary key). The savepoint
        # undoes our partial insert so the session stays usable, and a second check reports
        # the IDs that were taken meanwhile. Any other integrity failure is re-raised.
        try:
            async with self._c.begin_nested():
                await self._c.execute(notes.insert(), [_note_row(r) for r in records])
        except IntegrityError:
            taken = await self._taken(records)
            if not taken:
                raise
            return taken
        return []

    def _locked(self, stmt: sa.Select[Any], for_update: bool) -> sa.Select[Any]:
        # PostgreSQL: a row lock held to the end of the transaction, so that concurrent
        # read-modify-writes of one row take turns. SQLite: writer sessions hold the database
        # write lock from BEGIN IMMEDIATE, which serialises them already.
        if for_update and self._dialect is Dialect.POSTGRESQL:
            return stmt.with_for_update()
        return stmt

    async def get_note(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        stmt = _NOTE_SELECT.where(notes.c.project == project, notes.c.note_id == note_id)
        stmt = self._locked(stmt, for_update)
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _note(row)

    async def get_notes(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        if not keys:
            return {}
        return {(row.project, row.note_id): _note(row) for row in await self._existing_notes(keys)}

    async def replace_note(self, record: NoteRecord) -> None:
        # Upsert, as the reference adapter does: replacing a missing note creates it.
        row = _note_row(record)
        stmt = self._insert(notes).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[notes.c.project, notes.c.note_id],
            set_={name: stmt.excluded[name] for name in row if name not in ("project", "note_id")},
        )
        await self._c.execute(stmt)

    async def delete_note(self, project: str, note_id: str) -> bool:
        stmt = notes.delete().where(notes.c.project == project, notes.c.note_id == note_id)
        return (await self._c.execute(stmt)).rowcount > 0

    async def list_notes(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        if limit <= 0:
            return []
        stmt = _NOTE_SELECT.where(notes.c.project == project)
        if after is not None:
            stmt = stmt.where(notes.c.note_id > after)
        if where is not None:
            stmt = stmt.where(compile_filter(where, NOTE_COLUMNS))
        stmt = stmt.order_by(notes.c.note_id).limit(limit)
        return [_note(row) for row in await self._c.execute(stmt)]

    # occurrences -------------------------------------------------------------------------
    async def insert_occurrences(self, records: Sequence[OccurrenceRecord]) -> None:
        if not records:
            return
        if self._dialect is Dialect.POSTGRESQL:
            # The ingest hot path: one COPY in this transaction (ADR 0131).
            await bulk.copy_occurrences(self._c, records, _occurrence_document, _record_time)
            return
        # sqlite3 steps one prepared statement over the list of parameter sets.
        await self._c.execute(occurrences.insert(), [_occurrence_row(r) for r in records])

    async def get_occurrence(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        stmt = _OCCURRENCE_SELECT.where(
            occurrences.c.project == project, occurrences.c.occurrence_id == occurrence_id
        )
        stmt = self._locked(stmt, for_update)
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _occurrence(row)

    async def replace_occurrence(self, record: OccurrenceRecord) -> None:
        row = _occurrence_row(record)
        stmt = self._insert(occurrences).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[occurrences.c.project, occurrences.c.occurrence_id],
            set_={
                name: stmt.excluded[name]
                for name in row
                if name not in ("project", "occurrence_id")
            },
        )
        await self._c.execute(stmt)

    async def delete_occurrence(self, project: str, occurrence_id: str) -> bool:
        stmt = occurrences.delete().where(
            occurrences.c.project == project, occurrences.c.occurrence_id == occurrence_id
        )
        return (await self._c.execute(stmt)).rowcount > 0

    async def _list_occurrences(
        self, scope: sa.ColumnElement[bool], where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        if limit <= 0:
            return []
        stmt = _OCCURRENCE_SELECT.where(scope)
        if after is not None:
            stmt = stmt.where(occurrences.c.occurrence_id > after)
        if where is not None:
            stmt = stmt.where(compile_filter(where, OCCURRENCE_COLUMNS))
        stmt = stmt.order_by(occurrences.c.occurrence_id).limit(limit)
        return [_occurrence(row) for row in await self._c.execute(stmt)]

    async def list_occurrences(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        return await self._list_occurrences(occurrences.c.project == project, where, after, limit)

    async def list_note_occurrences(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        scope = sa.and_(
            occurrences.c.note_project == note_project, occurrences.c.note_id == note_id
        )
        return await self._list_occurrences(scope, where, after, limit)

    # judge documents ---------------------------------------------------------------------
    async def get_document(
        self, project: str, collection: str, doc_id: str, *, for_update: bool = False
    ) -> DocumentRecord | None:
        stmt = _DOCUMENT_SELECT.where(
            documents.c.project == project,
            documents.c.collection == collection,
            documents.c.doc_id == doc_id,
        )
        stmt = self._locked(stmt, for_update)
        row = (await self._c.execute(stmt)).first()
        return None if row is None else _document(row)

    async def put_document(self, record: DocumentRecord) -> None:
        # dict(): the JSON serialiser takes dicts, and a Mapping need not be one.
        row = {
            "project": record.project,
            "collection": record.collection,
            "doc_id": record.doc_id,
            "data": dict(record.data),
            "etag": record.etag,
            "create_time": record.create_time,
            "update_time": record.update_time,
        }
        key = ("project", "collection", "doc_id")
        stmt = self._insert(documents).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[documents.c[name] for name in key],
            set_={name: stmt.excluded[name] for name in row if name not in key},
        )
        await self._c.execute(stmt)

    async def delete_document(self, project: str, collection: str, doc_id: str) -> bool:
        stmt = documents.delete().where(
            documents.c.project == project,
            documents.c.collection == collection,
            documents.c.doc_id == doc_id,
        )
        return (await self._c.execute(stmt)).rowcount > 0

    async def list_documents(
        self, project: str, collection: str, after: str | None, limit: int
    ) -> list[DocumentRecord]:
        if limit <= 0:
            return []
        stmt = _DOCUMENT_SELECT.where(
            documents.c.project == project, documents.c.collection == collection
        )
        if after is not None:
            stmt = stmt.where(documents.c.doc_id > after)
        stmt = stmt.order_by(documents.c.doc_id).limit(limit)
        return [_document(row) for row in await self._c.execute(stmt)]

    # decision log ------------------------------------------------------------------------
    async def insert_decisions(self, records: Sequence[DecisionRecord]) -> None:
        # decision_id is the primary key on its own: IDs are made unique by the service, and
        # inserting one twice fails with IntegrityError rather than replacing the first.
        # Two executemany calls for the whole batch: the decision log writes in bulk.
        if not records:
            return
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

    async def list_decisions(
        self, query: DecisionQuery, after: str | None, limit: int
    ) -> list[DecisionRecord]:
        if limit <= 0:
            return []
        stmt = _DECISION_SELECT.where(decisions.c.project == query.project)
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
        if after is not None:
            stmt = stmt.where(key > after)
        stmt = stmt.order_by(key).limit(limit)
        return [_decision(row) for row in await self._c.execute(stmt)]

    # server metadata ---------------------------------------------------------------------
    async def get_or_set_meta(self, key: str, value: str) -> str:
        # ON CONFLICT DO NOTHING, not check-then-insert: two replicas starting together must
        # both end up with the value that won, not one of them with an error.
        await self._c.execute(
            self._insert(meta).values(key=key, value=value).on_conflict_do_nothing()
        )
        stored = (await self._c.execute(sa.select(meta.c.value).where(meta.c.key == key))).scalar()
        return value if stored is None else str(stored)


#: Execution option marking a connection's transaction as read-only.
_READONLY = "chainproof_readonly"


class SqlStore:
    """A MetadataStore on SQLite or PostgreSQL, chosen by the URL."""

    def __init__(self, target: DatabaseTarget, *, pool_size: int = 10) -> None:
        self._target = target
        self._engine = self._create_engine(target, pool_size)
        # SQLite sessions take turns through a FIFO lock. An in-memory database has a single
        # connection; a file database takes its write lock at BEGIN IMMEDIATE anyway, and
        # SQLite's own busy handler polls, so under several busy writers one can lose every
        # race until busy_timeout and fail. The lock queues them fairly in this process;
        # busy_timeout still covers other processes.
        sqlite = target.dialect is not Dialect.POSTGRESQL
        self._turns: asyncio.Lock | None = asyncio.Lock() if sqlite else None

    @classmethod
    def from_url(cls, database_url: str, *, pool_size: int = 10) -> SqlStore:
        return cls(parse_database_url(database_url), pool_size=pool_size)

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for migrations in tests and for benchmarks."""
        return self._engine

    @property
    def target(self) -> DatabaseTarget:
        return self._target

    @staticmethod
    def _create_engine(target: DatabaseTarget, pool_size: int) -> AsyncEngine:
        if target.dialect is Dialect.POSTGRESQL:
            return create_async_engine(
                target.url,
                json_serializer=_dump_json,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S},
            )
        if target.in_memory:
            engine = create_async_engine(
                target.url, json_serializer=_dump_json, poolclass=StaticPool
            )
        else:
            engine = create_async_engine(target.url, json_serializer=_dump_json)
        in_memory = target.in_memory

        @event.listens_for(engine.sync_engine, "connect")
        def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
            # Take BEGIN away from the sqlite3 module (it would skip it before SELECTs and
            # DDL); _begin_immediate below issues it instead.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # First: every later statement (even the journal mode switch) may meet another
            # connection's write lock, and must wait for it rather than fail at once.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL loses no committed data on a crash, only on power loss.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: sa.Connection) -> None:
            # A read-only session reads a WAL snapshot beside the writer; every other one
            # takes the write lock up front (see the module docstring).
            readonly = connection.get_execution_options().get(_READONLY, False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine

    def _unavailable(self, exc: BaseException) -> Unavailable:
        reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        return Unavailable(
            f"the database is unavailable: cannot use {self._target.describe()}: "
            f"{reason or type(reason).__name__}; check that it is running and reachable "
            "and that the database URL is right"
        )

    async def open(self) -> None:
        """Create the SQLite file's directory if needed and migrate the schema to head."""
        path = self._target.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await migrate.upgrade(self._engine)
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        await self._engine.dispose()

    def change_channel(self) -> ChangeChannel | None:
        """PostgreSQL replicas hear each other through LISTEN/NOTIFY; a SQLite file has no
        such channel (its replicas rely on the cache TTL)."""
        if self._target.dialect is Dialect.POSTGRESQL:
            return PgChangeChannel(self._engine)
        return None

    async def ping(self) -> None:
        try:
            async with self._engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (DBAPIError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[StoreSession]:
        return self._session(readonly)

    @asynccontextmanager
    async def connection(self, *, readonly: bool = False) -> AsyncIterator[AsyncConnection]:
        """A session's connection, for repositories that keep their queries in modules of
        their own (chainproof.store.sql.access); same queueing and transaction as a session."""
        async with self._session(readonly) as session:
            assert isinstance(session, _SqlSession)
            yield session.connection

    @asynccontextmanager
    async def _session(self, readonly: bool) -> AsyncIterator[StoreSession]:
        # Read-only sessions on a file database skip the queue: WAL gives them a snapshot.
        # The in-memory database has one connection, so everyone queues there.
        queue = (
            self._turns if (self._turns and not (readonly and not self._target.in_memory)) else None
        )
        turns: AbstractAsyncContextManager[Any] = queue or nullcontext()
        async with turns:
            try:
                connection = await self._engine.connect()
                if readonly:
                    await connection.execution_options(**{_READONLY: True})
            except (DBAPIError, OSError, TimeoutError) as exc:
                raise self._unavailable(exc) from exc
            try:
                try:
                    transaction = await connection.begin()
                except DBAPIError as exc:
                    raise self._unavailable(exc) from exc
                try:
                    yield _SqlSession(connection, self._target.dialect)
                except BaseException as exc:
                    # If the rollback fails too (the connection died), the caller still needs
                    # the original error; the pool discards the broken connection by itself.
                    with suppress(DBAPIError, OSError):
                        await transaction.rollback()
                    if _connection_lost(exc):
                        # Dying mid-statement is the same outage as failing to connect: 503.
                        raise self._unavailable(exc) from exc
                    raise
                try:
                    await transaction.commit()
                except DBAPIError as exc:
                    if exc.connection_invalidated:
                        raise self._unavailable(exc) from exc
                    raise
            finally:
                await connection.close()


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the database was lost (not a bad statement)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError)
