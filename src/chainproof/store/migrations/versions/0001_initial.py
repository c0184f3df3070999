"""Initial schema: projects, notes, occurrences and server metadata.

Revision ID: 0001
Revises: (none)

The tables are written out here rather than imported from chainproof.store.sql.schema, so
that this revision stays what it was when later revisions change the schema module.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Code point order on PostgreSQL (see chainproof.store.sql.schema for why).
_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", _KEY, primary_key=True),
    )
    op.create_table(
        "notes",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("note_id", _KEY, nullable=False),
        sa.Column("kind", _KEY, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.Column("create_time", _TIME, nullable=True),
        sa.Column("update_time", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("project", "note_id", name="pk_notes"),
    )
    op.create_index("ix_notes_kind", "notes", ["project", "kind"])
    op.create_table(
        "occurrences",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("occurrence_id", _KEY, nullable=False),
        sa.Column("kind", _KEY, nullable=False),
        sa.Column("note_project", _KEY, nullable=False),
        sa.Column("note_id", _KEY, nullable=False),
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.Column("create_time", _TIME, nullable=True),
        sa.Column("update_time", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("project", "occurrence_id", name="pk_occurrences"),
    )
    # The three list queries: by resource (the admission path), by note, by kind.
    op.create_index(
        "ix_occurrences_resource", "occurrences", ["project", "resource", "occurrence_id"]
    )
    op.create_index(
        "ix_occurrences_note", "occurrences", ["note_project", "note_id", "occurrence_id"]
    )
    op.create_index("ix_occurrences_kind", "occurrences", ["project", "kind", "occurrence_id"])
    op.create_table(
        "meta",
        sa.Column("key", _KEY, primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_index("ix_occurrences_kind", table_name="occurrences")
    op.drop_index("ix_occurrences_note", table_name="occurrences")
    op.drop_index("ix_occurrences_resource", table_name="occurrences")
    op.drop_table("occurrences")
    op.drop_index("ix_notes_kind", table_name="notes")
    op.drop_table("notes")
    op.drop_table("projects")
