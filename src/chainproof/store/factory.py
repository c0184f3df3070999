"""Build the MetadataStore a database URL asks for.

Owns the choice between adapters: ``memory://`` gives the in-memory store; ``sqlite:…`` and
``postgresql:…`` (or ``postgres:…``) give the SQL store on the matching async driver. Anything
else is an InvalidArgument that lists the accepted forms. Nothing connects here: the caller
(the composition root) calls ``open()`` on the result, which migrates the schema and reports
an unreachable database as Unavailable.
"""

from __future__ import annotations

from chainproof.config import DEFAULT_SQLITE_URL
from chainproof.errors import InvalidArgument
from chainproof.store.access import AccessStore
from chainproof.store.leader import AlwaysHeld, FileLeaderLock, LeaderLock
from chainproof.store.memory import MemoryStore
from chainproof.store.port import MetadataStore
from chainproof.store.sql import SqlStore
from chainproof.store.sql.urls import Dialect, describe_accepted_forms

#: The embedded default: one SQLite file under ./data, made on first start.
DEFAULT_DATABASE_URL = DEFAULT_SQLITE_URL


def create_store(database_url: str) -> MetadataStore:
    """The store for ``database_url``; raises InvalidArgument for an unsupported URL."""
    url = database_url.strip()
    if not url:
        raise InvalidArgument("database URL is empty: expected one of " + describe_accepted_forms())
    if url == "memory://" or url == "memory:":
        return MemoryStore()
    # SqlStore.from_url raises InvalidArgument naming the accepted forms for other schemes.
    return SqlStore.from_url(url)


def create_access_repository(store: MetadataStore) -> AccessStore:
    """The access data (IAM policies, API tokens, audit log) living in ``store``, each call
    its own unit of work."""
    return AccessStore(store)


def create_leader_lock(store: MetadataStore) -> LeaderLock:
    """The lock that elects one runtime leader among the processes sharing ``store``:
    a PostgreSQL advisory lock, a file lock beside a SQLite file, or none needed (memory and
    in-memory SQLite live in one process, which always leads)."""
    if isinstance(store, SqlStore):
        if store.target.dialect is Dialect.POSTGRESQL:
            from chainproof.store.sql.leader import PgAdvisoryLeaderLock

            return PgAdvisoryLeaderLock(store.engine)
        path = store.target.sqlite_path
        if path is not None:
            return FileLeaderLock(path.with_name(path.name + ".leader"))
    return AlwaysHeld()
