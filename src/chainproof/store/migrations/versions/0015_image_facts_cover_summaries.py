"""The image facts' resource index covers what a summary is recomputed from (ADR 0177).

Revision ID: 0015
Revises: 0013

A unit of work that wrote occurrences recomputes its images' summaries from their
``image_facts`` rows (ADR 0122): counts per open rank, the newest scan time and the
attestation notes, grouped by project and resource. ``ix_image_facts_resource`` (resource,
project) found the rows, and each was then read from the table for ``open_rank``,
``scan_time`` and ``attestation_note``; the scanner's re-match of 187 images (450 facts
each) spent 0.55 s of SQLite's time there. With those columns in the index the recompute
reads the index alone (0.14 s). The new index has the old one's columns first, so it serves
every query the old one did, which is dropped.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_COVERING = ["resource", "project", "open_rank", "scan_time", "attestation_note"]


def upgrade() -> None:
    op.create_index("ix_image_facts_summary", "image_facts", _COVERING)
    op.drop_index("ix_image_facts_resource", table_name="image_facts")


def downgrade() -> None:
    op.create_index("ix_image_facts_resource", "image_facts", ["resource", "project"])
    op.drop_index("ix_image_facts_summary", table_name="image_facts")
