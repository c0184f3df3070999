"""Continuous validation: the re-judging worker's mark on outbox events, each running
container's breakglass window, and what was done about a violation.

Revision ID: 0006
Revises: 0007

Spelled out here rather than imported from chainproof.store.sql.schema, as in 0001.
Existing outbox events start unjudged: the worker reads them once after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None

_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)
_UNJUDGED = sa.text("NOT judged")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("judged", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_outbox_unjudged",
        "outbox",
        ["sequence"],
        postgresql_where=_UNJUDGED,
        sqlite_where=_UNJUDGED,
    )
    with op.batch_alter_table("inventory") as batch:
        batch.add_column(sa.Column("breakglass_until", _TIME, nullable=True))
    with op.batch_alter_table("violations") as batch:
        batch.add_column(
            sa.Column("actions", _DOCUMENT, nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("violations") as batch:
        batch.drop_column("actions")
    with op.batch_alter_table("inventory") as batch:
        batch.drop_column("breakglass_until")
    op.drop_index("ix_outbox_unjudged", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("judged")
