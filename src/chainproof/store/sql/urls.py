"""Database URLs: what users write, and what SQLAlchemy's async drivers need.

Owns the accepted forms of ``CHAINPROOF_DATABASE_URL`` for the SQL stores and their mapping
onto the async drivers (``sqlite+aiosqlite``, ``postgresql+asyncpg``), plus a description of
the target that is safe to print (it never contains the password). Choosing between memory
and SQL stores is left to :mod:`chainproof.store.factory`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from chainproof.errors import InvalidArgument

ACCEPTED_FORMS = (
    "memory://",
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "sqlite:///:memory:",
    "postgresql://user:password@host:5432/dbname",
    "postgres://user:password@host:5432/dbname",
)


def describe_accepted_forms() -> str:
    return ", ".join(ACCEPTED_FORMS)


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A parsed SQL database URL, ready for ``create_async_engine``."""

    dialect: Dialect
    url: URL
    #: For SQLite files: the path of the database file; None for ``:memory:``.
    sqlite_path: Path | None = None

    @property
    def in_memory(self) -> bool:
        return self.dialect is Dialect.SQLITE and self.sqlite_path is None

    def describe(self) -> str:
        """Where the database lives, for messages and logs; never includes the password."""
        if self.dialect is Dialect.SQLITE:
            return "SQLite in memory" if self.sqlite_path is None else f"SQLite {self.sqlite_path}"
        host = self.url.host or "localhost"
        port = self.url.port or 5432
        return f"PostgreSQL at {host}:{port}/{self.url.database or ''}"


_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg"}


def _unsupported(scheme: str) -> InvalidArgument:
    return InvalidArgument(
        f"database URL scheme {scheme!r} is not supported: expected one of "
        + describe_accepted_forms()
    )


def parse_database_url(database_url: str) -> DatabaseTarget:
    """Map a user-facing SQL URL onto its async driver; raise InvalidArgument otherwise.

    Only the scheme is ever quoted back in errors, because the rest may hold a password.
    """
    scheme = database_url.split("://", 1)[0] if "://" in database_url else ""
    if scheme not in _SQLITE_DRIVERS | _POSTGRES_DRIVERS:
        raise _unsupported(scheme or database_url[:20])
    if scheme == "postgres":
        # SQLAlchemy only knows the "postgresql" spelling; Heroku-style URLs use "postgres".
        database_url = "postgresql" + database_url[len("postgres") :]
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise InvalidArgument(
            f"database URL with scheme {scheme!r} could not be parsed: expected one of "
            + describe_accepted_forms()
        ) from exc

    if scheme in _SQLITE_DRIVERS:
        url = url.set(drivername="sqlite+aiosqlite")
        database = url.database or ":memory:"
        if database == ":memory:":
            return DatabaseTarget(Dialect.SQLITE, url.set(database=":memory:"))
        return DatabaseTarget(Dialect.SQLITE, url, sqlite_path=Path(database))

    url = url.set(drivername="postgresql+asyncpg")
    query = dict(url.query)
    if "sslmode" in query and "ssl" not in query:
        # libpq spells it sslmode; asyncpg takes the same values under the name ssl.
        query["ssl"] = query.pop("sslmode")
        url = url.set(query=query)
    return DatabaseTarget(Dialect.POSTGRESQL, url)
