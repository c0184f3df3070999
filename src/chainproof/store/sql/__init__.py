"""SQL storage: the MetadataStore on SQLite (embedded default) and PostgreSQL (production).

One SQLAlchemy Core implementation serves both databases (see ``store.py`` for the few
places where they differ). Public surface:

* :class:`SqlStore` — the adapter; ``SqlStore.from_url("sqlite:///./data/chainproof.db")``;
* :func:`parse_database_url` — user-facing URL → async driver URL, or InvalidArgument;
* :mod:`chainproof.store.sql.migrate` — Alembic upgrade/downgrade on a live engine.

Choosing between the memory and SQL stores is chainproof.store.factory's job.
"""

from chainproof.store.sql.store import SqlStore
from chainproof.store.sql.urls import DatabaseTarget, Dialect, parse_database_url

__all__ = ["DatabaseTarget", "Dialect", "SqlStore", "parse_database_url"]
