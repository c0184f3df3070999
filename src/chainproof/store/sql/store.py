"""The SQL MetadataStore: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

Owns the engine and the transaction of each unit of work; the queries live with their kind
of data (store/sql/scribe.py, judge.py, access.py), each repository on the unit of work's
connection (store/sql/tx.py). It leaves the meaning of the data to others: services compute
the kind, the canonical resource and the note columns, domain.filters parses filters, and the
migrations create the schema. Semantics follow the in-memory reference adapter
(store/memory.py).

Where the two databases differ, the difference is spelled out here and nowhere else:

* SQLite takes its write lock at ``BEGIN IMMEDIATE``, because a transaction that reads first
  and writes later can fail with SQLITE_BUSY without waiting; with the lock taken up front,
  writers queue for up to ``busy_timeout``. WAL lets readers go on meanwhile.
* An in-memory SQLite database lives in one connection (StaticPool), so units of work on it
  take turns behind an asyncio lock instead of interleaving on that connection.
* PostgreSQL pools connections and pings one before use when it has been idle for a while
  (``PING_AFTER_IDLE_S``), so a restarted server does not fail the first request of every
  pooled connection, while a busy server (the admission webhook) does not pay a round trip
  per unit of work for it. A connection that dies while in use is a 503 (Unavailable).
* PostgreSQL runs read-only units of work without BEGIN and COMMIT (autocommit). At READ
  COMMITTED, the isolation every unit of work here runs at, each statement sees its own
  snapshot inside a transaction too, so the transaction adds two round trips and nothing
  else; SQLite keeps its BEGIN, which there holds one WAL snapshot for the whole session.
* PostgreSQL plans from statistics that only ANALYZE takes. After units of work that bulk
  copied many rows into a table (:data:`ANALYZE_AFTER_ROWS` since the last look), the store
  analyzes the table's key columns once the rows changed since its last ANALYZE exceed a
  tenth of it — autovacuum's rule, kept by the writer itself, since a table filled faster
  than autovacuum looks (or on a server with autovacuum off) is planned as nearly empty:
  every list of keys then scans the whole table (ADR 0176).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from chainproof.errors import Unavailable
from chainproof.store.port import ChangeChannel, UnitOfWork
from chainproof.store.sql import bulk, migrate
from chainproof.store.sql.access import SqlAccess
from chainproof.store.sql.checkpoint import (
    AUTOCHECKPOINT_PAGES,
    WAL_SIZE_LIMIT_BYTES,
    WalCheckpointer,
)
from chainproof.store.sql.judge import SqlDecisions, SqlDocuments
from chainproof.store.sql.notify import PgChangeChannel
from chainproof.store.sql.runtime import (
    SqlDeliveries,
    SqlInventory,
    SqlOutbox,
    SqlSubscriptions,
    SqlViolations,
)
from chainproof.store.sql.schema import metadata
from chainproof.store.sql.scribe import SqlMeta, SqlNotes, SqlOccurrences, SqlProjects
from chainproof.store.sql.summaries import SqlImageSummaries
from chainproof.store.sql.tx import SqlTx, dump_json, load_json
from chainproof.store.sql.urls import DatabaseTarget, Dialect, parse_database_url

log = logging.getLogger(__name__)

#: How long a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000
#: How long connecting to PostgreSQL may take before the store reports it unavailable.
POSTGRES_CONNECT_TIMEOUT_S = 10.0
#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed
#: out (and replaced when the ping fails); one used more recently is handed out as it is.
PING_AFTER_IDLE_S = 1.0
#: Rows bulk copied into one PostgreSQL table (across units of work) before the store looks
#: at whether its statistics need taking again.
ANALYZE_AFTER_ROWS = 10_000
#: How long an ANALYZE may wait for its table lock (another ANALYZE, a VACUUM) before it is
#: left for the next time.
_ANALYZE_LOCK_TIMEOUT = "500ms"


class SqlUnitOfWork:
    """One transaction on one connection, and the repositories working in it. The store
    begins it and ends it; ``commit``/``rollback`` end it early and begin the next."""

    def __init__(self, connection: AsyncConnection, dialect: Dialect) -> None:
        self._c = connection
        self._transaction: AsyncTransaction | None = None
        tx = SqlTx(connection, dialect)
        self.projects = SqlProjects(tx)
        self.notes = SqlNotes(tx)
        self.image_summaries = SqlImageSummaries(tx)
        self.occurrences = SqlOccurrences(tx, self.image_summaries)
        self.meta = SqlMeta(tx)
        self.documents = SqlDocuments(tx)
        self.decisions = SqlDecisions(tx, self.image_summaries)
        self.access = SqlAccess(tx)
        self.inventory = SqlInventory(tx)
        self.outbox = SqlOutbox(tx)
        self.subscriptions = SqlSubscriptions(tx)
        self.deliveries = SqlDeliveries(tx)
        self.violations = SqlViolations(tx)

    @property
    def connection(self) -> AsyncConnection:
        """This unit of work's connection (tests reach the backend through it)."""
        return self._c

    async def begin(self) -> None:
        self._transaction = await self._c.begin()

    async def commit(self) -> None:
        await self.end(commit=True)
        await self.begin()

    async def rollback(self) -> None:
        await self.end(commit=False)
        await self.begin()

    async def end(self, *, commit: bool) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is None:  # its begin failed: nothing to undo, and nothing to commit
            if commit:
                raise RuntimeError("this unit of work has no open transaction to commit")
            return
        if commit:
            # The summaries of the images this transaction wrote, recomputed inside it, and
            # the totals they change.
            try:
                await self.image_summaries.settle()
            except BaseException:
                if transaction.is_active:
                    await transaction.rollback()
                raise
            # Never skipped, even for a transaction SQLAlchemy no longer thinks active: a
            # commit that cannot happen must fail loudly, not pass for one that did.
            await transaction.commit()
        else:
            self.image_summaries.discard()
            if transaction.is_active:
                await transaction.rollback()


def _copies_taken(connection: AsyncConnection) -> dict[str, int] | None:
    """The rows the unit of work bulk copied per table, forgotten on the connection (an
    invalidated connection's record starts afresh anyway, and is not to be touched)."""
    if connection.closed or connection.invalidated:
        return None
    copied: dict[str, int] | None = connection.info.pop(bulk.COPIED, None)
    return copied


def _analyze_statement(connection: AsyncConnection, name: str) -> str:
    """``ANALYZE table (columns)`` for one of the schema's tables, its non-JSON columns only
    (what plans filter and join on; JSON documents are large and never compared). Only
    names of the schema's own tables and columns reach the text, quoted."""
    table = metadata.tables[name]
    quote = connection.dialect.identifier_preparer.quote
    columns = [quote(c.name) for c in table.columns if not isinstance(c.type, sa.JSON)]
    return f"ANALYZE {quote(table.name)} ({', '.join(columns)})"


#: Execution option marking a connection's transaction as read-only.
_READONLY = "chainproof_readonly"


class SqlStore:
    """A MetadataStore on SQLite or PostgreSQL, chosen by the URL."""

    def __init__(
        self,
        target: DatabaseTarget,
        *,
        pool_size: int = 10,
        ping_after_idle_s: float = PING_AFTER_IDLE_S,
    ) -> None:
        self._target = target
        self._engine = self._create_engine(target, pool_size, ping_after_idle_s)
        # SQLite sessions take turns through a FIFO lock. An in-memory database has a single
        # connection; a file database takes its write lock at BEGIN IMMEDIATE anyway, and
        # SQLite's own busy handler polls, so under several busy writers one can lose every
        # race until busy_timeout and fail. The lock queues them fairly in this process;
        # busy_timeout still covers other processes.
        sqlite = target.dialect is not Dialect.POSTGRESQL
        self._turns: asyncio.Lock | None = asyncio.Lock() if sqlite else None
        self._checkpointer = (
            WalCheckpointer(self._engine) if sqlite and not target.in_memory else None
        )
        #: Rows bulk copied per PostgreSQL table since the store last looked at its statistics.
        self._copied: dict[str, int] = {}
        #: Each such table's rows as last seen (its statistics' count and the copies since).
        self._sizes: dict[str, float] = {}

    @classmethod
    def from_url(
        cls, database_url: str, *, pool_size: int = 10, ping_after_idle_s: float = PING_AFTER_IDLE_S
    ) -> SqlStore:
        return cls(
            parse_database_url(database_url),
            pool_size=pool_size,
            ping_after_idle_s=ping_after_idle_s,
        )

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for migrations in tests and for benchmarks."""
        return self._engine

    @property
    def target(self) -> DatabaseTarget:
        return self._target

    @staticmethod
    def _create_engine(target: DatabaseTarget, pool_size: int, ping_after: float) -> AsyncEngine:
        if target.dialect is Dialect.POSTGRESQL:
            pg = create_async_engine(
                target.url,
                json_serializer=dump_json,
                json_deserializer=load_json,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S},
            )
            _ping_when_idle(pg, ping_after)
            return pg
        if target.in_memory:
            engine = create_async_engine(
                target.url,
                json_serializer=dump_json,
                json_deserializer=load_json,
                poolclass=StaticPool,
            )
        else:
            engine = create_async_engine(
                target.url, json_serializer=dump_json, json_deserializer=load_json
            )
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
                # Checkpoints run beside the writers (store/sql/checkpoint.py); this is
                # only the safety net for when those fall behind.
                cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES:d}")
                # A log grown by one large write is cut back to this when next emptied.
                cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES:d}")
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
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._engine.dispose()

    @property
    def checkpointer(self) -> WalCheckpointer | None:
        """A SQLite file's background WAL checkpointer (None for other databases)."""
        return self._checkpointer

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

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        return self._session(readonly)

    @asynccontextmanager
    async def _session(self, readonly: bool) -> AsyncIterator[UnitOfWork]:
        # Read-only units of work on a file database skip the queue: WAL gives them a
        # snapshot. The in-memory database has one connection, so everyone queues there.
        queue = (
            self._turns if (self._turns and not (readonly and not self._target.in_memory)) else None
        )
        turns: AbstractAsyncContextManager[Any] = queue or nullcontext()
        async with turns:
            try:
                connection = await self._engine.connect()
                if readonly and self._target.dialect is Dialect.POSTGRESQL:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                elif readonly:
                    await connection.execution_options(**{_READONLY: True})
            except (DBAPIError, OSError, TimeoutError) as exc:
                raise self._unavailable(exc) from exc
            try:
                uow = SqlUnitOfWork(connection, self._target.dialect)
                try:
                    await uow.begin()
                except DBAPIError as exc:
                    raise self._unavailable(exc) from exc
                try:
                    yield uow
                except BaseException as exc:
                    # If the rollback fails too (the connection died), the caller still needs
                    # the original error; the pool discards the broken connection by itself.
                    with suppress(DBAPIError, OSError):
                        await uow.end(commit=False)
                    if _connection_lost(exc):
                        # Dying mid-statement is the same outage as failing to connect: 503.
                        raise self._unavailable(exc) from exc
                    raise
                try:
                    await uow.end(commit=True)
                except DBAPIError as exc:
                    if exc.connection_invalidated:
                        raise self._unavailable(exc) from exc
                    raise
                if self._checkpointer is not None and not readonly:
                    self._checkpointer.kick()
                copied = _copies_taken(connection)
                if copied:
                    await self._keep_statistics(connection, copied)
            finally:
                _copies_taken(connection)  # a rolled-back copy grew nothing
                await connection.close()

    async def _keep_statistics(self, connection: AsyncConnection, copied: dict[str, int]) -> None:
        """After a commit: ANALYZE (key columns only) the tables this store copied many rows
        into (over a tenth of their size, and :data:`ANALYZE_AFTER_ROWS`, since it last
        looked) whose statistics are stale — never taken, or changed by over a tenth since.
        Best effort: the commit stands whatever happens here, and a table whose lock is
        busy is looked at again after the next rows."""
        for table, rows in copied.items():
            self._copied[table] = self._copied.get(table, 0) + rows
        due = {
            t: n
            for t, n in self._copied.items()
            if n >= max(ANALYZE_AFTER_ROWS, 0.1 * self._sizes.get(t, 0))
        }
        if not due:
            return
        for table in due:
            self._copied[table] = 0
        try:
            # The server's count of changed rows lags (statistics are flushed now and then),
            # so the rows this store copied count too.
            stats = await connection.execute(
                sa.text(
                    "SELECT c.relname, c.reltuples, COALESCE(s.n_mod_since_analyze, 0) "
                    "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                    "WHERE c.oid = ANY(CAST(:tables AS regclass[]))"
                ),
                {"tables": sorted(due)},
            )
            names = []
            for name, tuples, changed in stats:
                self._sizes[name] = max(float(tuples), 0.0) + due[name]
                if tuples < 0 or max(changed, due[name]) > 0.1 * tuples:
                    names.append(str(name))
            await connection.execute(sa.text(f"SET LOCAL lock_timeout = '{_ANALYZE_LOCK_TIMEOUT}'"))
            for name in sorted(names):
                await connection.execute(sa.text(_analyze_statement(connection, name)))
            await connection.commit()
        except (DBAPIError, OSError) as exc:
            with suppress(DBAPIError, OSError):
                await connection.rollback()
            log.info("statistics of %s not taken again this time: %s", due, exc)


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """Ping a pooled connection on checkout only when it sat in the pool for over ``idle``
    seconds (SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per unit of
    work). A failed ping raises DisconnectionError, on which the pool drops the connection
    and hands out another (a new one, if need be)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi: Any, record: Any) -> None:
        record.info["chainproof_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            # The server closed it (a restart, pg_terminate_backend) and the driver heard:
            # known without a round trip, however recently it was used (ADR 0135).
            raise sa.exc.DisconnectionError("the server closed this pooled connection")
        since = record.info.get("chainproof_idle_since")
        if since is None or time.monotonic() - since <= idle:
            return  # new, or used a moment ago
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"a pooled connection is gone: {exc}") from exc
        finally:
            with suppress(Exception):
                cursor.close()


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the database was lost (not a bad statement)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError)
