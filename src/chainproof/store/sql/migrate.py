"""Run the Alembic migrations of chainproof against a live async engine.

Owns how migrations are invoked: programmatically, on a connection the store opens itself,
inside one transaction. On PostgreSQL that transaction first takes a transaction-scoped
advisory lock, so when several replicas start at once exactly one upgrades and the others
wait, then find the schema at head and do nothing. On SQLite the store's ``BEGIN IMMEDIATE``
already serialises writers. The schema itself lives in ``chainproof/store/migrations``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Key of the PostgreSQL advisory lock held while migrating: a fixed, arbitrary 63-bit
#: number ("chainproof" in ASCII), shared by every replica and unlikely to meet another app's.
MIGRATION_LOCK_KEY = 0x636861696E70726F


def _config(sync_connection: sa.Connection) -> Config:
    config = Config()
    # ConfigParser interpolates '%', which may occur in an install path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = sync_connection
    return config


def _run(sync_connection: sa.Connection, revision: str, upgrade: bool) -> None:
    config = _config(sync_connection)
    if upgrade:
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def _migrate(engine: AsyncEngine, revision: str, *, upgrade: bool) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Released by the COMMIT (or ROLLBACK) that ends this block; never left behind in
            # a pooled connection the way a session-level lock could be.
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(_run, revision, upgrade)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    await _migrate(engine, revision, upgrade=True)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema down to ``revision``; ``base`` drops every table chainproof made."""
    await _migrate(engine, revision, upgrade=False)


def _current(sync_connection: sa.Connection) -> str | None:
    return MigrationContext.configure(sync_connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
