"""What a SQL repository works with: its unit of work's connection, inside the transaction the
unit of work began, and the few dialect differences that queries meet.

Every SQL repository takes one :class:`SqlTx` and nothing else, so a repository can never
open, commit or roll back a transaction of its own (store/sql/store.py does, for the unit of
work), and all repositories of a unit of work share its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from chainproof.store.sql.urls import Dialect

#: A result row. Typed loosely because Row's type parameters changed between SQLAlchemy 2.0 and
#: 2.1 (one per column in 2.1), and the columns are read by name anyway.
Row = Any


def dump_json(value: Any) -> str:
    # Compact and UTF-8 as is: the documents are large in bulk, and nobody reads them raw.
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class SqlTx:
    connection: AsyncConnection
    dialect: Dialect

    @property
    def postgres(self) -> bool:
        return self.dialect is Dialect.POSTGRESQL

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """``INSERT`` with ``on_conflict_do_*``: each dialect has its own, with one API."""
        if self.postgres:
            return postgresql.insert(table)
        return sqlite.insert(table)

    def locked(self, stmt: sa.Select[Any], for_update: bool) -> sa.Select[Any]:
        # PostgreSQL: a row lock held to the end of the transaction, so that concurrent
        # read-modify-writes of one row take turns (ADR 0067). SQLite: writers hold the
        # database write lock from BEGIN IMMEDIATE, which serialises them already.
        if for_update and self.postgres:
            return stmt.with_for_update()
        return stmt
