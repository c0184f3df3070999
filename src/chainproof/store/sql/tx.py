"""What a SQL repository works with: its unit of work's connection, inside the transaction the
unit of work began, and the few dialect differences that queries meet.

Every SQL repository takes one :class:`SqlTx` and nothing else, so a repository can never
open, commit or roll back a transaction of its own (store/sql/store.py does, for the unit of
work), and all repositories of a unit of work share its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def load_json(text: str | bytes) -> Any:
    """A stored document back: orjson, a third of the standard library's time (the scanner
    reads 300,000 stored packages per full match), giving the values json.loads gives. It
    reads all :func:`dump_json` writes; text it refuses (a ``NaN`` token or an integer
    beyond 64 bits, which only another writer could have stored) goes to json.loads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


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


def by_keys(
    postgres: bool,
    select: sa.Select[Any],
    table: sa.Table,
    fixed: Sequence[sa.ColumnElement[bool]],
    names: Sequence[str],
    keys: Sequence[tuple[str, ...]],
) -> sa.Select[Any]:
    """``select`` of the rows of ``table`` whose ``names`` columns hold one of ``keys`` (and
    that meet ``fixed``): an exact read of listed primary keys (ADR 0175).

    SQLite: an ``IN`` list, which it looks up in the primary key. PostgreSQL: one primary-key
    probe per key — the keys unnested from arrays (one parameter per column), each joined to
    a ``LIMIT 1`` lateral lookup the planner cannot flatten. An ``IN`` list there is planned
    from the table's statistics, and a table filled since they were taken (the first import
    of 50,000 advisories, in one transaction; a server with autovacuum off) looks nearly
    empty: the plan then scans every row of the leading key columns and filters the list,
    0.25 s per 500 keys on 50,000 rows instead of 5 ms."""
    columns = [table.c[n] for n in names]
    if not postgres:
        match = columns[0].in_([k[0] for k in keys]) if len(columns) == 1 else None
        if match is None:
            match = sa.tuple_(*columns).in_(list(keys))
        return select.where(*fixed, match)
    arrays = [
        sa.bindparam(f"keys_{n}", [k[i] for k in keys], type_=postgresql.ARRAY(sa.Text()))
        for i, n in enumerate(names)
    ]
    wanted = (
        sa.func.unnest(*arrays)
        .table_valued(*(f"k_{n}" for n in names))
        .render_derived(name="wanted")
    )
    hit = (
        select.where(
            *fixed, *(c == wanted.c[f"k_{n}"] for c, n in zip(columns, names, strict=True))
        )
        .limit(1)
        .lateral("hit")
    )
    return sa.select(*hit.c).select_from(wanted).join(hit, sa.true())
