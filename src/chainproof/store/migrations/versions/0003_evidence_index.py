"""An index for the judge's evidence reads: one attestor note's occurrences about one image.

Revision ID: 0003
Revises: 0002

The judge reads every occurrence of an attestor's note about the image under review, page by
page. With only (note_project, note_id, occurrence_id) that read walks the note's occurrences
about *every* image, so occurrences filed about other images would slow every review; this
index reaches one image's directly.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_occurrences_note_resource",
        "occurrences",
        ["note_project", "note_id", "resource", "occurrence_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_occurrences_note_resource", table_name="occurrences")
