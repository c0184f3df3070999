"""Indexes for reverse impact: the images of a project that carry a vulnerability.

(Numbered 0007 when written beside 0012 from 0005; chained after 0012 so there is one head.)

Revision ID: 0007
Revises: 0012

``impact --cve`` asks which images of a project have a VULNERABILITY occurrence filed under
an ID (its note ID, any provider) or naming it among its aliases (``aliases=…`` in
``extraDetails``, as ingest and the scanner write them: a GHSA finding of the scanner names
its CVE there). Without these, both questions walk every finding of the project.

* ``ix_occurrences_vulnerability_id``: (project, upper(note_id), resource) of findings.
* PostgreSQL only, ``ix_occurrences_vulnerability_aliases``: a GIN index over the aliases as
  an upper-case text array, the very expression store/sql/scribe.py queries with ``&&``.
  SQLite has no such index; its query reads the project's findings (the embedded store).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0012"
branch_labels = None
depends_on = None

_FINDINGS = sa.text("kind = 'VULNERABILITY'")
_ALIASES = (
    "string_to_array(upper(substring(data->'vulnerability'->>'extraDetails' "
    "from 'aliases=([^;]*)')), ',')"
)


def upgrade() -> None:
    op.create_index(
        "ix_occurrences_vulnerability_id",
        "occurrences",
        ["project", sa.text("upper(note_id)"), "resource"],
        postgresql_where=_FINDINGS,
        sqlite_where=_FINDINGS,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_occurrences_vulnerability_aliases ON occurrences "
            f"USING gin (({_ALIASES})) WHERE kind = 'VULNERABILITY'"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_occurrences_vulnerability_aliases")
    op.drop_index("ix_occurrences_vulnerability_id", table_name="occurrences")
