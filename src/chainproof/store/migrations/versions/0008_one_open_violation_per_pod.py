"""At most one open violation per pod, enforced by the database.

Revision ID: 0008
Revises: 0006

The re-judging worker runs on one leader, but two leaders can overlap for the moment it
takes to notice a lost connection; both could then open a violation for the same pod. The
partial index on open violations becomes unique, so the second insert fails and its batch is
judged again, finding the first. Violations already duplicated keep their newest one open;
the older ones are closed, saying why.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = sa.text("closed IS NULL")


def upgrade() -> None:
    op.execute(
        "UPDATE violations SET closed = opened, close_reason = "
        "'superseded: another violation was open for the same pod (migration 0008)' "
        "WHERE closed IS NULL AND EXISTS (SELECT 1 FROM violations AS newer "
        "WHERE newer.closed IS NULL AND newer.cluster = violations.cluster "
        "AND newer.namespace = violations.namespace AND newer.pod = violations.pod "
        "AND newer.violation_id > violations.violation_id)"
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
