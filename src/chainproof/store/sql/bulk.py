"""Bulk writes on PostgreSQL: a batch of occurrences as one ``COPY … FROM STDIN`` (binary),
sent on the session's own connection inside its open transaction (ADR 0131).

SQLAlchemy's executemany spends Python per row (bind processing, one parameter dict each) and
asyncpg's executemany still binds and executes the INSERT once per row; COPY sends the rows in
one stream the server parses in C. The batch stays atomic: COPY joins the transaction the
session began, so a failure anywhere rolls every row back with the rest of the batch.
Errors are raised as SQLAlchemy's (IntegrityError for a duplicate key, DBAPIError otherwise),
as the statement path would, so callers and the connection-loss handling see one vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chainproof.store.port import OccurrenceRecord

#: The columns written, in the order of each record's tuple.
OCCURRENCE_COLUMNS = (
    "project",
    "occurrence_id",
    "kind",
    "note_project",
    "note_id",
    "resource",
    "data",
    "create_time",
    "update_time",
)


async def copy_occurrences(
    connection: AsyncConnection,
    records: Sequence[OccurrenceRecord],
    document: Callable[[OccurrenceRecord], str],
    time: Callable[[OccurrenceRecord, str], datetime | None],
) -> None:
    """Write ``records`` with one COPY in ``connection``'s transaction.

    ``document`` gives each row's JSON text, ``time`` its create/update instants: the store's
    own conversions, so both write paths store the same bytes.
    """
    rows = [
        (
            r.project,
            r.occurrence_id,
            r.kind,
            r.note_project,
            r.note_id,
            r.resource,
            document(r),
            time(r, "create_time"),
            time(r, "update_time"),
        )
        for r in records
    ]
    await copy_rows(connection, "occurrences", OCCURRENCE_COLUMNS, rows)


async def copy_rows(
    connection: AsyncConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Write ``rows`` (tuples in ``columns`` order) into ``table`` with one COPY in
    ``connection``'s transaction, raising SQLAlchemy's errors as ``copy_occurrences`` does."""
    if not rows:
        return
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the transaction at the first statement; COPY on
        # the driver would otherwise run (and commit) outside it.
        await connection.execute(sa.text("SELECT 1"))
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
    try:
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
    except asyncpg.UniqueViolationError as exc:
        raise IntegrityError(statement, None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(statement, None, exc) from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        # the connection is gone
        raise DBAPIError(statement, None, exc, connection_invalidated=True) from exc
