"""SQLite drops the findings' vulnerability-ID index, which none of its queries can use.

Revision ID: 0016
Revises: 0014

``ix_occurrences_vulnerability_id`` (migration 0007) serves ``impact --cve``: the images of a
project with a finding filed under an ID *or naming it among its aliases*. On PostgreSQL the
two halves of that ``OR`` are two indexes (this one and the GIN index over the aliases) and
the planner ORs their bitmaps. SQLite has no index over the aliases, so the ``OR`` as a
whole cannot be met by an index and it reads the project's findings whatever this one holds
(migration 0007 says as much); the index was written with every finding and never read. On
the full match of the scanner's benchmark (446,709 findings) it cost SQLite about 5 s of the
store's raw writes (bench/bench_findings_layout.py). PostgreSQL keeps it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None

_FINDINGS = sa.text("kind = 'VULNERABILITY'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_occurrences_vulnerability_id", table_name="occurrences")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "ix_occurrences_vulnerability_id",
            "occurrences",
            ["project", sa.text("upper(note_id)"), "resource"],
            sqlite_where=_FINDINGS,
        )
