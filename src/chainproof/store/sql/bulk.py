"""Bulk writes below SQLAlchemy Core, on the unit of work's own connection and inside its open
transaction: one ``COPY … FROM STDIN`` on PostgreSQL (ADR 0131), one ``executemany`` of one
prepared statement on SQLite's driver (ADR 0086).

SQLAlchemy's executemany spends Python per row and per column (a parameter dict each, bind
processing, the compiled cache) and crosses to aiosqlite's thread through a greenlet; asyncpg's
executemany still binds and executes the INSERT once per row. Here the caller hands over plain
tuples in column order, each value converted once per batch where a conversion is the same
for every row (a batch shares one instant), and the driver does the rest in C: PostgreSQL
parses one binary stream, SQLite steps one prepared statement.

The batch stays atomic: both paths join the transaction (or savepoint) the session began, so
a failure anywhere rolls every row back with the rest of the unit of work, and neither ever
writes outside a transaction (it refuses to). Errors are raised as SQLAlchemy's
(IntegrityError for a duplicate key, DBAPIError otherwise, invalidated when the connection is
gone), as the statement path would, so callers and the connection-loss handling see one
vocabulary. Both paths store the bytes SQLAlchemy would: the same JSON serializer, and the
column types' own bind processors for instants and booleans.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

#: One row: the values of the written columns, in their order. Documents (JSON columns) are
#: passed as their JSON text already (tx.dump_json), instants as aware datetimes.
Values = tuple[Any, ...]

_SQLITE = SQLiteDialect_aiosqlite()
#: ``connection.info`` key: rows copied per table by the unit of work on that connection, so
#: that the store can keep PostgreSQL's statistics current after it commits (ADR 0176).
COPIED = "chainproof_copied"


async def insert_rows(
    connection: AsyncConnection,
    postgres: bool,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[Values],
) -> None:
    """Insert ``rows`` into ``table`` in ``connection``'s transaction, in one driver call."""
    if not rows:
        return
    if postgres:
        await _copy(connection, table.name, columns, rows)
    else:
        await _executemany(connection, table, columns, rows)


async def upsert_rows(
    connection: AsyncConnection,
    postgres: bool,
    table: sa.Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    rows: Sequence[Values],
) -> None:
    """Insert ``rows``, or where a row with the same ``keys`` exists, set its other columns
    to the new values, in the transaction: one ``INSERT … ON CONFLICT … DO UPDATE`` of the
    rows unnested from one array per column on PostgreSQL, one prepared statement stepped
    in C for every row on SQLite. The rows' keys must be distinct (PostgreSQL refuses to
    update one row twice in a statement)."""
    if not rows:
        return
    if postgres:
        await _upsert_postgres(connection, table, columns, keys, rows)
    else:
        await _executemany(connection, table, columns, rows, keys)


# PostgreSQL ----------------------------------------------------------------------------------


async def _copy(
    connection: AsyncConnection, table: str, columns: tuple[str, ...], rows: Sequence[Values]
) -> None:
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the transaction at the first statement; COPY on
        # the driver would otherwise run (and commit) outside it.
        await connection.execute(sa.text("SELECT 1"))
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
    try:
        await driver.copy_records_to_table(table, records=rows, columns=columns)
        copied = connection.info.setdefault(COPIED, {})
        copied[table] = copied.get(table, 0) + len(rows)
    except asyncpg.UniqueViolationError as exc:
        raise IntegrityError(statement, None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(statement, None, exc) from exc
    except (asyncpg.InterfaceError, OSError) as exc:  # the connection is gone
        raise DBAPIError(statement, None, exc, connection_invalidated=True) from exc


def _array_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL array type a column's values travel in to ``unnest``."""
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):  # UtcDateTime
        kind = kind.impl_instance
    for python_type, name in (
        (sa.SmallInteger, "smallint[]"),
        (sa.BigInteger, "bigint[]"),
        (sa.Integer, "integer[]"),
        (sa.DateTime, "timestamptz[]"),
        (sa.Boolean, "boolean[]"),
        (sa.Text, "text[]"),
    ):
        if isinstance(kind, python_type):
            return name
    raise TypeError(f"no array type for {column.table.name}.{column.name} ({column.type!r})")


@functools.cache
def _upsert_text(table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    """One statement for the whole batch: the rows arrive as one array per column and are
    unnested on the server, instead of one execution per row."""
    arrays = ", ".join(
        f"CAST(${i} AS {_array_type(table.c[c])})" for i, c in enumerate(columns, start=1)
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    # Identifiers from the schema's own Table; every value is bound.
    insert = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "  # noqa: S608
    return insert + f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"


async def _upsert_postgres(
    connection: AsyncConnection,
    table: sa.Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    rows: Sequence[Values],
) -> None:
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.execute(sa.text("SELECT 1"))  # see _copy
    statement = _upsert_text(table, columns, keys)
    arrays = [list(column) for column in zip(*rows, strict=True)]
    try:
        await driver.execute(statement, *arrays)
    except asyncpg.UniqueViolationError as exc:
        raise IntegrityError(statement, None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(statement, None, exc) from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        raise DBAPIError(statement, None, exc, connection_invalidated=True) from exc


# SQLite ----------------------------------------------------------------------------------------


Encoder = Callable[[Any], Any]


@functools.cache
def _sqlite_plan(
    table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...] = ()
) -> tuple[str, tuple[Encoder | None, ...]]:
    """The INSERT text and, per column, the conversion SQLAlchemy would apply (None: none).
    ``keys``: an upsert on those columns (the others set to the new values).

    Instants go through the column type's own bind processor (UTC, fixed-width text), cached
    per value since a batch shares a few instants; JSON columns arrive as text already."""
    encoders: list[Encoder | None] = []
    for name in columns:
        column = table.c[name]
        if isinstance(column.type, sa.JSON | sa.Boolean):
            # JSON arrives as text already; sqlite3 binds a bool as the integer 0 or 1,
            # which is what the type's processor would make of it.
            encoders.append(None)
            continue
        # The dialect's own variant of the type (UtcDateTime's SQLite storage format).
        processor = column.type.dialect_impl(_SQLITE).bind_processor(_SQLITE)
        if processor is None:
            encoders.append(None)
        elif isinstance(column.type, sa.TypeDecorator):  # UtcDateTime
            encoders.append(functools.lru_cache(maxsize=256)(processor))
        else:
            encoders.append(processor)
    # SQLAlchemy compiles the statement once (qmark parameters, identifiers quoted as needed).
    insert: Any = sqlite.insert(table).values({name: sa.bindparam(name) for name in columns})
    if keys:
        insert = insert.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={c: insert.excluded[c] for c in columns if c not in keys},
        )
    statement = str(insert.compile(dialect=_SQLITE))
    return statement, tuple(encoders)


def _encoded(rows: Sequence[Values], encoders: tuple[Encoder | None, ...]) -> Sequence[Values]:
    converting = [(i, e) for i, e in enumerate(encoders) if e is not None]
    if not converting:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i, encode in converting:
            value = values[i]
            if value is not None:
                values[i] = encode(value)
        out.append(tuple(values))
    return out


async def _executemany(
    connection: AsyncConnection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[Values],
    keys: tuple[str, ...] = (),
) -> None:
    statement, encoders = _sqlite_plan(table, columns, keys)
    params = _encoded(rows, encoders)
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # aiosqlite.Connection
    try:
        if not driver.in_transaction:
            # The store begins every unit of work with BEGIN (IMMEDIATE); a write that finds
            # none would autocommit row by row, outside the unit of work: refuse it.
            raise RuntimeError(
                f"bulk insert into {table.name} outside a transaction: the unit of work "
                "must have begun one"
            )
        cursor = await driver.executemany(statement, params)
        await cursor.close()
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc
    except sqlite3.Error as exc:
        raise DBAPIError(statement, None, exc) from exc
    except ValueError as exc:  # aiosqlite: "no active connection"
        raise DBAPIError(statement, None, exc, connection_invalidated=True) from exc
