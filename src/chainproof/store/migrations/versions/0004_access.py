"""Who may do what: IAM policies, API tokens (hashes only) and the audit log.

Revision ID: 0004
Revises: 0003

As in 0001, every table is spelled out here instead of imported from
chainproof.store.sql.schema, so this revision keeps meaning what it meant when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "iam_policies",
        sa.Column("resource", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("bindings", _DOCUMENT, nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("update_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("resource", name="pk_iam_policies"),
    )
    op.create_index("ix_iam_policies_project", "iam_policies", ["project"])
    op.create_table(
        "api_tokens",
        sa.Column("name", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("role", _KEY, nullable=False),
        sa.Column("token_hash", _KEY, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.Column("expire_time", _TIME, nullable=True),
        sa.Column("revoke_time", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_project", "api_tokens", ["project", "name"])
    op.create_table(
        "audit_log",
        sa.Column("entry_id", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("principal", _KEY, nullable=False),
        sa.Column("permission", _KEY, nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("outcome", _KEY, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_project", "audit_log", ["project", "entry_id"])
    op.create_index("ix_audit_log_principal", "audit_log", ["project", "principal", "entry_id"])
    op.create_index("ix_audit_log_permission", "audit_log", ["project", "permission", "entry_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("iam_policies")
