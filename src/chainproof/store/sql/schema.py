"""The SQL schema as SQLAlchemy Core tables, for building queries.

Owns the table and column objects the SQL store queries with. It does not create anything:
the schema in a database is made only by the Alembic migrations in
``chainproof/store/migrations``, which spell their tables out on their own (a migration must
not change when this module does). A contract test compares the two.

Three types differ by dialect, and only here:

* ``Key``: text compared by code point. PostgreSQL's default collation follows the locale,
  which would order keyset pages differently from Python's ``str`` comparison (the memory
  store and the page tokens); ``COLLATE "C"`` compares UTF-8 bytes, which is code point order.
  SQLite's default BINARY collation already does that.
* ``Document``: the whole message as JSON, ``JSONB`` on PostgreSQL and JSON text on SQLite.
* ``Time``: an instant. PostgreSQL has ``timestamptz``. SQLite has no time type at all, and
  SQLAlchemy's SQLite ``DateTime`` writes the wall-clock fields of whatever it is given and
  drops the offset, so ``12:00+02:00`` and ``12:00Z`` would be stored alike. ``UtcDateTime``
  converts to UTC first and writes one fixed-width text format, so that comparing the text
  (``time >= :since``) orders instants correctly; it hands back aware UTC datetimes on both
  databases and refuses naive ones, whose instant nobody can know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

#: How SQLite stores an instant: UTC, every field zero-padded, so text order is time order
#: for years 0001–9999. This is SQLAlchemy's default, pinned so that it cannot drift.
SQLITE_TIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)

# sqlite.DATETIME's __init__ carries no annotations, hence the ignore.
_SQLITE_TIME = sqlite.DATETIME(storage_format=SQLITE_TIME_FORMAT)  # type: ignore[no-untyped-call]


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC and read back as UTC on every dialect."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLITE_TIME)
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} cannot be stored: its instant is "
                "unknown; pass a timezone-aware datetime (for example with tzinfo=UTC)"
            )
        utc = value.astimezone(UTC)
        # SQLite's processor formats the fields as they are, so give it UTC wall time.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = UtcDateTime()

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", Key, primary_key=True),
)

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("note_id", Key, primary_key=True),
    sa.Column("kind", Key, nullable=False),
    sa.Column("data", Document, nullable=False),
    sa.Column("create_time", Time, nullable=True),
    sa.Column("update_time", Time, nullable=True),
    sa.Index("ix_notes_kind", "project", "kind"),
)

occurrences = sa.Table(
    "occurrences",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("occurrence_id", Key, primary_key=True),
    sa.Column("kind", Key, nullable=False),
    sa.Column("note_project", Key, nullable=False),
    sa.Column("note_id", Key, nullable=False),
    sa.Column("resource", Key, nullable=False),
    sa.Column("data", Document, nullable=False),
    sa.Column("create_time", Time, nullable=True),
    sa.Column("update_time", Time, nullable=True),
    sa.Index("ix_occurrences_resource", "project", "resource", "occurrence_id"),
    sa.Index("ix_occurrences_note", "note_project", "note_id", "occurrence_id"),
    sa.Index(
        "ix_occurrences_note_resource", "note_project", "note_id", "resource", "occurrence_id"
    ),
    sa.Index("ix_occurrences_kind", "project", "kind", "occurrence_id"),
    # Reverse impact on PostgreSQL (migration 0007): findings by vulnerability ID and by
    # alias, two indexes whose bitmaps the planner ORs. SQLite, with no index over the
    # aliases, reads the project's findings for that OR whatever else it holds, so it keeps
    # neither (migration 0016).
    sa.Index(
        "ix_occurrences_vulnerability_id",
        "project",
        sa.text("upper(note_id)"),
        "resource",
        postgresql_where=sa.text("kind = 'VULNERABILITY'"),
    ).ddl_if(dialect="postgresql"),
    sa.Index(
        "ix_occurrences_vulnerability_aliases",
        # As PostgreSQL spells the expression back (migration 0007 writes the same one).
        sa.text(
            "string_to_array(upper(\"substring\"(((data -> 'vulnerability'::text) ->> "
            "'extraDetails'::text), 'aliases=([^;]*)'::text)), ','::text)"
        ),
        postgresql_using="gin",
        postgresql_where=sa.text("kind = 'VULNERABILITY'"),
    ).ddl_if(dialect="postgresql"),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", Key, primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

# The judge's documents (attestors, policies), each stored whole beside its key and etag.
documents = sa.Table(
    "documents",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("collection", Key, primary_key=True),
    sa.Column("doc_id", Key, primary_key=True),
    sa.Column("data", Document, nullable=False),
    sa.Column("etag", sa.Text(), nullable=False),
    sa.Column("create_time", Time, nullable=False),
    sa.Column("update_time", Time, nullable=False),
)

# The decision log. ``images`` keeps the judged references in the order given (duplicates
# too), so a record reads back exactly as written; ``decision_images`` holds each distinct
# reference once more as a row, for finding decisions by image through an index.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", Key, primary_key=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Column("outcome", Key, nullable=False),
    sa.Column("namespace", Key, nullable=False),
    sa.Column("images", Document, nullable=False),
    sa.Column("data", Document, nullable=False),
    sa.Index("ix_decisions_project", "project", "decision_id"),
    sa.Index("ix_decisions_time", "project", "time"),
    sa.Index("ix_decisions_namespace", "project", "namespace", "decision_id"),
    sa.Index("ix_decisions_outcome", "project", "outcome", "decision_id"),
)

decision_images = sa.Table(
    "decision_images",
    metadata,
    sa.Column(
        "decision_id",
        Key,
        sa.ForeignKey(
            "decisions.decision_id", ondelete="CASCADE", name="fk_decision_images_decision"
        ),
        primary_key=True,
    ),
    sa.Column("image", Key, primary_key=True),
    sa.Index("ix_decision_images_image", "image", "decision_id"),
)

# Who may do what (migration 0004): IAM policies per resource, API tokens (only the hash of
# each secret), and the audit log of writes and denied writes.
iam_policies = sa.Table(
    "iam_policies",
    metadata,
    sa.Column("resource", Key, primary_key=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("bindings", Document, nullable=False),
    sa.Column("etag", sa.Text(), nullable=False),
    sa.Column("update_time", Time, nullable=False),
    sa.Index("ix_iam_policies_project", "project"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", Key, primary_key=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("role", Key, nullable=False),
    sa.Column("token_hash", Key, nullable=False, unique=True),
    sa.Column("created_by", sa.Text(), nullable=False),
    sa.Column("create_time", Time, nullable=False),
    sa.Column("expire_time", Time, nullable=True),
    sa.Column("revoke_time", Time, nullable=True),
    sa.Index("ix_api_tokens_project", "project", "name"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("entry_id", Key, primary_key=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Column("principal", Key, nullable=False),
    sa.Column("permission", Key, nullable=False),
    sa.Column("resource", sa.Text(), nullable=False),
    sa.Column("outcome", Key, nullable=False),
    sa.Column("data", Document, nullable=False),
    sa.Index("ix_audit_log_project", "project", "entry_id"),
    sa.Index("ix_audit_log_principal", "project", "principal", "entry_id"),
    sa.Index("ix_audit_log_permission", "project", "permission", "entry_id"),
)

# What runs after admission (migration 0005): the workload inventory and each watched
# cluster's resume point, the transactional outbox, subscriptions, their deliveries, and
# continuous-validation violations. See store/runtime_port.py for the semantics.
#: Surrogate keys that only grow: BIGSERIAL on PostgreSQL; on SQLite an INTEGER PRIMARY KEY
#: (the rowid) of a table declared AUTOINCREMENT, so a number is never handed out twice.
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPEN = sa.text("until IS NULL")
_PENDING = sa.text("status = 'pending'")

inventory = sa.Table(
    "inventory",
    metadata,
    sa.Column("row_id", Serial, primary_key=True, autoincrement=True),
    sa.Column("cluster", Key, nullable=False),
    sa.Column("namespace", Key, nullable=False),
    sa.Column("pod", Key, nullable=False),
    sa.Column("container", Key, nullable=False),
    sa.Column("pod_uid", Key, nullable=False),
    sa.Column("workload_kind", Key, nullable=False),
    sa.Column("workload_name", Key, nullable=False),
    sa.Column("service_account", Key, nullable=False),
    sa.Column("image_spec", sa.Text(), nullable=False),
    sa.Column("image_id", sa.Text(), nullable=False),
    sa.Column("digest", Key, nullable=True),
    sa.Column("image", Key, nullable=False),
    sa.Column("since", Time, nullable=False),
    sa.Column("until", Time, nullable=True),
    sa.Column("source", Key, nullable=False),
    # Migration 0006: the pod's breakglass window (domain.breakglass).
    sa.Column("breakglass_until", Time, nullable=True),
    sa.Index(
        "uq_inventory_open",
        "cluster",
        "namespace",
        "pod",
        "container",
        unique=True,
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    ),
    sa.Index("ix_inventory_open_image", "image", postgresql_where=_OPEN, sqlite_where=_OPEN),
    sa.Index("ix_inventory_since", "since"),
    sqlite_autoincrement=True,
)

inventory_checkpoints = sa.Table(
    "inventory_checkpoints",
    metadata,
    sa.Column("cluster", Key, primary_key=True),
    sa.Column("resource_version", sa.Text(), nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("sequence", Serial, primary_key=True, autoincrement=True),
    sa.Column("event_id", Key, nullable=False, unique=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("type", Key, nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Column("data", Document, nullable=False),
    sa.Column("routed", sa.Boolean(), nullable=False),
    # Migration 0006: read by the re-judging worker (services/judge/continuous.py).
    sa.Column("judged", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index(
        "ix_outbox_unrouted",
        "sequence",
        postgresql_where=sa.text("NOT routed"),
        sqlite_where=sa.text("NOT routed"),
    ),
    sa.Index(
        "ix_outbox_unjudged",
        "sequence",
        postgresql_where=sa.text("NOT judged"),
        sqlite_where=sa.text("NOT judged"),
    ),
    sqlite_autoincrement=True,
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("subscription_id", Key, primary_key=True),
    sa.Column("kinds", Document, nullable=False),
    sa.Column("types", Document, nullable=False),
    sa.Column("sink", Document, nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("create_time", Time, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("subscription_id", Key, primary_key=True),
    sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("event_id", Key, nullable=False),
    sa.Column("subject", Key, nullable=False),
    sa.Column("status", Key, nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt", Time, nullable=True),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("done_time", Time, nullable=True),
    # The line a delivery waits in (one subscription, one subject), pending ones only: what
    # "first in line" looks up.
    sa.Index(
        "ix_deliveries_line",
        "project",
        "subscription_id",
        "subject",
        "sequence",
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    ),
    sa.Index("ix_deliveries_due", "next_attempt", postgresql_where=_PENDING, sqlite_where=_PENDING),
    sa.Index("ix_deliveries_status", "project", "subscription_id", "status", "sequence"),
    sa.Index("ix_deliveries_sequence", "sequence"),
)

violations = sa.Table(
    "violations",
    metadata,
    sa.Column("violation_id", Key, primary_key=True),
    sa.Column("project", Key, nullable=False),
    sa.Column("cluster", Key, nullable=False),
    sa.Column("namespace", Key, nullable=False),
    sa.Column("pod", Key, nullable=False),
    sa.Column("workload_kind", Key, nullable=False),
    sa.Column("workload_name", Key, nullable=False),
    sa.Column("images", Document, nullable=False),
    sa.Column("explanation", sa.Text(), nullable=False),
    sa.Column("cause", sa.Text(), nullable=False),
    sa.Column("opened", Time, nullable=False),
    sa.Column("closed", Time, nullable=True),
    sa.Column("close_reason", sa.Text(), nullable=False),
    # Migration 0006: what was done about it (events, annotations, evictions).
    sa.Column("actions", Document, nullable=False, server_default=sa.text("'[]'")),
    # Unique (migration 0013): at most one open violation per pod, even when two leaders
    # overlap for a moment.
    sa.Index(
        "ix_violations_open_pod",
        "cluster",
        "namespace",
        "pod",
        unique=True,
        postgresql_where=sa.text("closed IS NULL"),
        sqlite_where=sa.text("closed IS NULL"),
    ),
    sa.Index("ix_violations_project", "project", "opened"),
)

# Per-image summaries kept on write (migration 0012, ADR 0122; store/summaries.py). Each
# occurrence with a resource has one ``image_facts`` row (what it adds to its image's summary)
# and its ``impact_terms`` (what reverse impact finds it by); ``image_summaries`` and
# ``image_attestations`` hold each image's summary per scope (a project, or "*" for every
# project), recomputed from the facts before the writing transaction commits;
# ``image_decisions`` the newest decision of each project's log about each image.
image_facts = sa.Table(
    "image_facts",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("occurrence_id", Key, primary_key=True),
    sa.Column("resource", Key, nullable=False),
    sa.Column("attestation_note", Key, nullable=False),
    sa.Column("open_rank", sa.SmallInteger(), nullable=False),
    sa.Column("scan_time", Time, nullable=True),
    # Covers the summary recompute: the rows of an image and what it sums (migration 0015).
    sa.Index(
        "ix_image_facts_summary",
        "resource",
        "project",
        "open_rank",
        "scan_time",
        "attestation_note",
    ),
)

impact_terms = sa.Table(
    "impact_terms",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("occurrence_id", Key, primary_key=True),
    sa.Column("field", Key, primary_key=True),
    sa.Column("term", Key, primary_key=True),
    sa.Column("resource", Key, nullable=False),
    sa.Column("kind", Key, nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Index("ix_impact_terms_term", "field", "term", "resource"),
)

image_summaries = sa.Table(
    "image_summaries",
    metadata,
    sa.Column("scope", Key, primary_key=True),
    sa.Column("resource", Key, primary_key=True),
    sa.Column("occurrences", sa.Integer(), nullable=False),
    sa.Column("open_unspecified", sa.Integer(), nullable=False),
    sa.Column("open_minimal", sa.Integer(), nullable=False),
    sa.Column("open_low", sa.Integer(), nullable=False),
    sa.Column("open_medium", sa.Integer(), nullable=False),
    sa.Column("open_high", sa.Integer(), nullable=False),
    sa.Column("open_critical", sa.Integer(), nullable=False),
    sa.Column("worst_open", sa.SmallInteger(), nullable=False),
    sa.Column("last_scan", Time, nullable=False),
    sa.Index("ix_image_summaries_worst", "scope", "worst_open", "resource"),
    sa.Index("ix_image_summaries_scan", "scope", "last_scan", "resource"),
    sa.Index("ix_image_summaries_count", "scope", "occurrences", "resource"),
)
# The images list's substring search (migration 0014; skipped there without pg_trgm).
sa.Index(
    "ix_image_summaries_resource_trgm",
    sa.func.lower(image_summaries.c.resource).label("lower_resource"),
    postgresql_using="gin",
    postgresql_ops={"lower_resource": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")

#: The overview's figures per summary scope, as deltas in stripes (migration 0014, ADR 0195):
#: the sum of a scope's rows is its number of images and open findings per severity.
summary_totals = sa.Table(
    "summary_totals",
    metadata,
    sa.Column("scope", Key, primary_key=True),
    sa.Column("stripe", sa.SmallInteger(), primary_key=True),
    sa.Column("images", sa.BigInteger(), nullable=False),
    sa.Column("open_unspecified", sa.BigInteger(), nullable=False),
    sa.Column("open_minimal", sa.BigInteger(), nullable=False),
    sa.Column("open_low", sa.BigInteger(), nullable=False),
    sa.Column("open_medium", sa.BigInteger(), nullable=False),
    sa.Column("open_high", sa.BigInteger(), nullable=False),
    sa.Column("open_critical", sa.BigInteger(), nullable=False),
)

image_attestations = sa.Table(
    "image_attestations",
    metadata,
    sa.Column("scope", Key, primary_key=True),
    sa.Column("resource", Key, primary_key=True),
    sa.Column("note", Key, primary_key=True),
    sa.Index("ix_image_attestations_note", "scope", "note", "resource"),
)

image_decisions = sa.Table(
    "image_decisions",
    metadata,
    sa.Column("project", Key, primary_key=True),
    sa.Column("image", Key, primary_key=True),
    sa.Column("decision_id", Key, nullable=False),
    sa.Column("outcome", Key, nullable=False),
    sa.Index("ix_image_decisions_outcome", "project", "outcome", "image"),
)
