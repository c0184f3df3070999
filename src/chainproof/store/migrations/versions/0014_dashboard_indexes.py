"""What keeps the dashboard's pages within their time at 100,000 images (ADR 0195).

Revision ID: 0014
Revises: 0015 (merged after it; ``down_revision`` below is the one place to re-chain)

* ``summary_totals``: the overview's figures (images, open findings per severity) per
  summary scope, kept by the summaries' writer as deltas (16 stripes per scope, so
  concurrent writers rarely wait on one row), and filled here from ``image_summaries``.
  The overview sums at most 16 rows per scope instead of reading every summary.
* PostgreSQL only, ``ix_image_summaries_resource_trgm``: a pg_trgm GIN index over
  ``lower(resource)``, the very expression the images list's substring search compares with
  ``LIKE '%…%'``. ``CREATE EXTENSION IF NOT EXISTS pg_trgm`` first (a trusted extension
  since PostgreSQL 13: the database owner may create it). A server without the extension
  keeps the scan: the migration skips the index and says so in its log. SQLite has no
  trigram index; its search reads the scope's summaries (the embedded store).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0015"
branch_labels = None
depends_on = None

_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_OPEN = ("unspecified", "minimal", "low", "medium", "high", "critical")
TRIGRAM_INDEX = "ix_image_summaries_resource_trgm"

log = logging.getLogger(__name__)


def upgrade() -> None:
    op.create_table(
        "summary_totals",
        sa.Column("scope", _KEY, nullable=False),
        sa.Column("stripe", sa.SmallInteger(), nullable=False),
        sa.Column("images", sa.BigInteger(), nullable=False),
        *[sa.Column(f"open_{name}", sa.BigInteger(), nullable=False) for name in _OPEN],
        sa.PrimaryKeyConstraint("scope", "stripe", name="pk_summary_totals"),
    )
    from chainproof.store.sql.summaries import rebuild_totals

    rebuild_totals(op.get_bind())
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if available is None:
        log.warning(
            "pg_trgm is not available on this server: the images list's substring search "
            "reads every summary of its scope (install the postgresql contrib package and "
            "run CREATE EXTENSION pg_trgm, then CREATE INDEX %s as migration 0014 does)",
            TRIGRAM_INDEX,
        )
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        f"CREATE INDEX {TRIGRAM_INDEX} ON image_summaries "
        "USING gin ((lower(resource)) gin_trgm_ops)"
    )
    # Statistics of the indexed expression, so the planner can tell a rare substring from a
    # common one before autovacuum gets to it.
    op.execute("ANALYZE image_summaries")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")
        # The extension stays: other objects of the database may use it by now.
    op.drop_table("summary_totals")
