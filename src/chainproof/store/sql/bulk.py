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


# SQLite ----------------------------------------------------------------------------------------


Encoder = Callable[[Any], Any]


@functools.cache
def _sqlite_plan(
    table: sa.Table, columns: tuple[str, ...]
) -> tuple[str, tuple[Encoder | None, ...]]:
    """The INSERT text and, per column, the conversion SQLAlchemy would apply (None: none).

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
    insert = table.insert().values({name: sa.bindparam(name) for name in columns})
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
    connection: AsyncConnection, table: sa.Table, columns: tuple[str, ...], rows: Sequence[Values]
) -> None:
    statement, encoders = _sqlite_plan(table, columns)
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
