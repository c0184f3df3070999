"""At most one open violation per pod, enforced by the database.

Revision ID: 0013
Revises: 0006

The re-judging worker runs on one leader, but two leaders can overlap for the moment it
takes to notice a lost connection; both could then open a violation for the same pod. The
partial index on open violations becomes unique. The store keeps the first open violation
and drops the second leader's opening (ADR 0190), so the worker goes on.

Violations already doubled keep their first one open (earliest opened, then smallest ID,
the order ``open_for_pods`` has always read them in); the others are closed at their own
open time, saying why, so the unique index can be built.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = sa.text("closed IS NULL")


def upgrade() -> None:
    op.execute(
        "UPDATE violations SET closed = opened, close_reason = "
        "'superseded: an earlier violation was open for the same pod (migration 0013)' "
        "WHERE closed IS NULL AND EXISTS (SELECT 1 FROM violations AS earlier "
        "WHERE earlier.closed IS NULL AND earlier.cluster = violations.cluster "
        "AND earlier.namespace = violations.namespace AND earlier.pod = violations.pod "
        "AND (earlier.opened < violations.opened OR (earlier.opened = violations.opened "
        "AND earlier.violation_id < violations.violation_id)))"
    )
    op.drop_index("ix_violations_open_pod", table_name="violations")
    op.create_index(
        "ix_violations_open_pod",
        "violations",
        ["cluster", "namespace", "pod"],
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_violations_open_pod", table_name="violations")
    op.create_index(
        "ix_violations_open_pod",
        "violations",
        ["cluster", "namespace", "pod"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
