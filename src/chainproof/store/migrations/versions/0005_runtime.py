"""What runs after admission: inventory and watch checkpoints, the outbox, subscriptions,
deliveries and violations.

Revision ID: 0005
Revises: 0004

As in 0001, every table is spelled out here instead of imported from
chainproof.store.sql.schema, so this revision keeps meaning what it meant when it was written.
Surrogate keys only grow: BIGSERIAL on PostgreSQL, an AUTOINCREMENT rowid on SQLite (a
plain rowid may hand the number of a deleted last row out again, and a delivery is keyed by
its event's sequence number).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPEN = sa.text("until IS NULL")
_PENDING = sa.text("status = 'pending'")


def _partial(where: sa.TextClause) -> dict[str, Any]:
    return {"postgresql_where": where, "sqlite_where": where}


def upgrade() -> None:
    op.create_table(
        "inventory",
        sa.Column("row_id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("cluster", _KEY, nullable=False),
        sa.Column("namespace", _KEY, nullable=False),
        sa.Column("pod", _KEY, nullable=False),
        sa.Column("container", _KEY, nullable=False),
        sa.Column("pod_uid", _KEY, nullable=False),
        sa.Column("workload_kind", _KEY, nullable=False),
        sa.Column("workload_name", _KEY, nullable=False),
        sa.Column("service_account", _KEY, nullable=False),
        sa.Column("image_spec", sa.Text(), nullable=False),
        sa.Column("image_id", sa.Text(), nullable=False),
        sa.Column("digest", _KEY, nullable=True),
        sa.Column("image", _KEY, nullable=False),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("until", _TIME, nullable=True),
        sa.Column("source", _KEY, nullable=False),
        sa.PrimaryKeyConstraint("row_id", name="pk_inventory"),
        sqlite_autoincrement=True,
    )
    # At most one open row per container; closed rows are history.
    op.create_index(
        "uq_inventory_open",
        "inventory",
        ["cluster", "namespace", "pod", "container"],
        unique=True,
        **_partial(_OPEN),
    )
    op.create_index("ix_inventory_open_image", "inventory", ["image"], **_partial(_OPEN))
    op.create_index("ix_inventory_since", "inventory", ["since"])
    op.create_table(
        "inventory_checkpoints",
        sa.Column("cluster", _KEY, nullable=False),
        sa.Column("resource_version", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("cluster", name="pk_inventory_checkpoints"),
    )
    op.create_table(
        "outbox",
        sa.Column("sequence", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("event_id", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("type", _KEY, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_unrouted", "outbox", ["sequence"], **_partial(sa.text("NOT routed")))
    op.create_table(
        "subscriptions",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("subscription_id", _KEY, nullable=False),
        sa.Column("kinds", _DOCUMENT, nullable=False),
        sa.Column("types", _DOCUMENT, nullable=False),
        sa.Column("sink", _DOCUMENT, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("create_time", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("project", "subscription_id", name="pk_subscriptions"),
    )
    op.create_table(
        "deliveries",
        sa.Column("project", _KEY, nullable=False),
        sa.Column("subscription_id", _KEY, nullable=False),
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", _KEY, nullable=False),
        sa.Column("subject", _KEY, nullable=False),
        sa.Column("status", _KEY, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("done_time", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("project", "subscription_id", "sequence", name="pk_deliveries"),
    )
    op.create_index(
        "ix_deliveries_line",
        "deliveries",
        ["project", "subscription_id", "subject", "sequence"],
        **_partial(_PENDING),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["next_attempt"], **_partial(_PENDING))
    op.create_index(
        "ix_deliveries_status", "deliveries", ["project", "subscription_id", "status", "sequence"]
    )
    # Whether any delivery still needs an event (pruning the outbox asks by sequence alone).
    op.create_index("ix_deliveries_sequence", "deliveries", ["sequence"])
    op.create_table(
        "violations",
        sa.Column("violation_id", _KEY, nullable=False),
        sa.Column("project", _KEY, nullable=False),
        sa.Column("cluster", _KEY, nullable=False),
        sa.Column("namespace", _KEY, nullable=False),
        sa.Column("pod", _KEY, nullable=False),
        sa.Column("workload_kind", _KEY, nullable=False),
        sa.Column("workload_name", _KEY, nullable=False),
        sa.Column("images", _DOCUMENT, nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("opened", _TIME, nullable=False),
        sa.Column("closed", _TIME, nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("violation_id", name="pk_violations"),
    )
    op.create_index(
        "ix_violations_open_pod",
        "violations",
        ["cluster", "namespace", "pod"],
        **_partial(sa.text("closed IS NULL")),
    )
    op.create_index("ix_violations_project", "violations", ["project", "opened"])


def downgrade() -> None:
    op.drop_table("violations")
    op.drop_table("deliveries")
    op.drop_table("subscriptions")
    op.drop_table("outbox")
    op.drop_table("inventory_checkpoints")
    op.drop_table("inventory")
