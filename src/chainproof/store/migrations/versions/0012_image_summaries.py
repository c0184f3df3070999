"""Per-image summaries kept on write, for the dashboard (ADR 0122), and their backfill.

Revision ID: 0012
Revises: 0005

The tables are spelled out here, as in 0001. The backfill is not: it reduces every stored
occurrence to its facts with the same code the store writes them with
(chainproof.store.sql.summaries.backfill, over chainproof.domain.image_summary), because two
copies of that reduction would be two answers to "what does this occurrence say". It reads
the occurrences in keyset pages of 5,000 and then recomputes every summary with the store's
own set-based statements, and each image's newest decision from the decision log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_TIME = sa.DateTime(timezone=True)
_OPEN = ("unspecified", "minimal", "low", "medium", "high", "critical")


def upgrade() -> None:
    op.create_table(
        "image_facts",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("occurrence_id", _KEY, nullable=False),
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("attestation_note", _KEY, nullable=False),
        sa.Column("open_rank", sa.SmallInteger(), nullable=False),
        sa.Column("scan_time", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("project", "occurrence_id", name="pk_image_facts"),
    )
    op.create_index("ix_image_facts_resource", "image_facts", ["resource", "project"])
    op.create_table(
        "impact_terms",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("occurrence_id", _KEY, nullable=False),
        sa.Column("field", _KEY, nullable=False),
        sa.Column("term", _KEY, nullable=False),
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("kind", _KEY, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "occurrence_id", "field", "term", name="pk_impact_terms"
        ),
    )
    op.create_index("ix_impact_terms_term", "impact_terms", ["field", "term", "resource"])
    op.create_table(
        "image_summaries",
        sa.Column("scope", _KEY, nullable=False),
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        *[sa.Column(f"open_{name}", sa.Integer(), nullable=False) for name in _OPEN],
        sa.Column("worst_open", sa.SmallInteger(), nullable=False),
        sa.Column("last_scan", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("scope", "resource", name="pk_image_summaries"),
    )
    op.create_index(
        "ix_image_summaries_worst", "image_summaries", ["scope", "worst_open", "resource"]
    )
    op.create_index(
        "ix_image_summaries_scan", "image_summaries", ["scope", "last_scan", "resource"]
    )
    op.create_index(
        "ix_image_summaries_count", "image_summaries", ["scope", "occurrences", "resource"]
    )
    op.create_table(
        "image_attestations",
        sa.Column("scope", _KEY, nullable=False),
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("note", _KEY, nullable=False),
        sa.PrimaryKeyConstraint("scope", "resource", "note", name="pk_image_attestations"),
    )
    op.create_index(
        "ix_image_attestations_note", "image_attestations", ["scope", "note", "resource"]
    )
    op.create_table(
        "image_decisions",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("image", _KEY, nullable=False),
        sa.Column("decision_id", _KEY, nullable=False),
        sa.Column("outcome", _KEY, nullable=False),
        sa.PrimaryKeyConstraint("project", "image", name="pk_image_decisions"),
    )
    op.create_index(
        "ix_image_decisions_outcome", "image_decisions", ["project", "outcome", "image"]
    )
    from chainproof.store.sql.summaries import backfill

    backfill(op.get_bind(), totals=False)  # their table comes with 0014


def downgrade() -> None:
    for table in (
        "image_decisions",
        "image_attestations",
        "image_summaries",
        "impact_terms",
        "image_facts",
    ):
        op.drop_table(table)
