"""The judge's tables: documents (attestors, policies) and the decision log.

Revision ID: 0002
Revises: 0001

As in 0001, every table is spelled out here instead of imported from
chainproof.store.sql.schema, so this revision keeps meaning what it meant when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Code point order on PostgreSQL (see chainproof.store.sql.schema for why).
_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# timestamptz on PostgreSQL; on SQLite a column of fixed-width UTC text, which the store's
# UtcDateTime type writes (the column type itself only names it).
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("collection", _KEY, nullable=False),
        sa.Column("doc_id", _KEY, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.Column("update_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("project", "collection", "doc_id", name="pk_documents"),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("outcome", _KEY, nullable=False),
        sa.Column("namespace", _KEY, nullable=False),
        sa.Column("images", _DOCUMENT, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
    )
    # One index per way of listing a project's decisions; all but the time range end in the
    # key, so a page is read in key order straight from the index.
    op.create_index("ix_decisions_project", "decisions", ["project", "decision_id"])
    op.create_index("ix_decisions_time", "decisions", ["project", "time"])
    op.create_index("ix_decisions_namespace", "decisions", ["project", "namespace", "decision_id"])
    op.create_index("ix_decisions_outcome", "decisions", ["project", "outcome", "decision_id"])
    op.create_table(
        "decision_images",
        sa.Column("decision_id", _KEY, nullable=False),
        sa.Column("image", _KEY, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", "image", name="pk_decision_images"),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.decision_id"],
            name="fk_decision_images_decision",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_decision_images_image", "decision_images", ["image", "decision_id"])


def downgrade() -> None:
    op.drop_index("ix_decision_images_image", table_name="decision_images")
    op.drop_table("decision_images")
    op.drop_index("ix_decisions_outcome", table_name="decisions")
    op.drop_index("ix_decisions_namespace", table_name="decisions")
    op.drop_index("ix_decisions_time", table_name="decisions")
    op.drop_index("ix_decisions_project", table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("documents")
