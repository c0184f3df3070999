"""Compile the list-filter AST (domain.filters) into SQLAlchemy expressions.

Owns the mapping from :class:`~chainproof.domain.filters.FilterColumn` to table columns and
the translation of Compare/And/Or/Not. Every value becomes a bound parameter, so no user text
ever reaches SQL. Parsing and validating filters is domain.filters' job; the meaning of each
shape is fixed by ``domain.filters.evaluate`` and this module must agree with it (a property
test in tests/contract checks that).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Not, Or
from chainproof.store.sql.schema import notes, occurrences

Columns = Mapping[FilterColumn, sa.ColumnElement[str]]

NOTE_COLUMNS: Columns = {
    FilterColumn.KIND: notes.c.kind,
    FilterColumn.NOTE_PROJECT: notes.c.project,
    FilterColumn.NOTE_ID: notes.c.note_id,
    # Notes have no resource: NoteRecord.column gives "" for it, so it is compared as a constant.
}

OCCURRENCE_COLUMNS: Columns = {
    FilterColumn.KIND: occurrences.c.kind,
    FilterColumn.RESOURCE: occurrences.c.resource,
    FilterColumn.NOTE_PROJECT: occurrences.c.note_project,
    FilterColumn.NOTE_ID: occurrences.c.note_id,
}


def compile_filter(expr: Expr, columns: Columns) -> ColumnElement[bool]:
    """A WHERE clause equivalent to ``evaluate(expr, record.column)`` for every row.

    Every filtered column is NOT NULL, so SQL's three-valued logic never shows through and
    ``NOT`` and ``!=`` mean exactly what they mean in Python.
    """
    if isinstance(expr, Compare):
        column = columns.get(expr.column)
        if column is None:
            # A column the table lacks has the value "" (see NoteRecord.column).
            return sa.true() if (expr.value == "") != expr.negated else sa.false()
        return column != expr.value if expr.negated else column == expr.value
    if isinstance(expr, And):
        # The leading true()/false() keeps empty groups meaningful: all([]) and any([]).
        return sa.and_(sa.true(), *(compile_filter(e, columns) for e in expr.items))
    if isinstance(expr, Or):
        # ``a = x OR a = y OR …`` as ``a IN (x, y, …)``: the same rows, one flat expression
        # (SQLite refuses an OR tree deeper than 1,000) that the planner meets with an index.
        same = {e.column for e in expr.items if isinstance(e, Compare) and not e.negated}
        if (
            len(expr.items) > 1
            and len(same) == 1
            and all(isinstance(e, Compare) and not e.negated for e in expr.items)
        ):
            column = columns.get(same.pop())
            if column is not None:
                return column.in_([e.value for e in expr.items if isinstance(e, Compare)])
        return sa.or_(sa.false(), *(compile_filter(e, columns) for e in expr.items))
    if isinstance(expr, Not):
        return sa.not_(compile_filter(expr.item, columns))
    raise TypeError(f"not a filter expression: {expr!r}")


def lists_values(expr: Expr | None) -> bool:
    """Whether ``expr`` compares a column with a list of values (an ``OR`` compiled to
    ``IN``), anywhere inside it."""
    if isinstance(expr, Or):
        return len(expr.items) > 1 or any(lists_values(e) for e in expr.items)
    if isinstance(expr, And):
        return any(lists_values(e) for e in expr.items)
    if isinstance(expr, Not):
        return lists_values(expr.item)
    return False
