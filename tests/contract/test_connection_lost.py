"""A PostgreSQL connection that dies in the middle of a session is a 503 (Unavailable), like a
failed connect — never a 500 (issue 9 item 13).

The backend serving the session is killed with ``pg_terminate_backend`` from another
connection, while the session's own statement (``pg_sleep``) is running, and between two of
its statements.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from chainproof.errors import Unavailable
from chainproof.store.sql.store import SqlStore
from contract.conftest import empty_postgres_store

pytestmark = pytest.mark.postgres


async def _kill(store: SqlStore, pid: int) -> None:
    async with store.engine.connect() as other:
        await other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def _session_killed(store: SqlStore, *, mid_statement: bool) -> None:
    async with store.session() as s:
        c = s.connection  # type: ignore[attr-defined]
        pid = (await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        if mid_statement:
            sleeping = asyncio.ensure_future(c.execute(sa.text("SELECT pg_sleep(30)")))
            await asyncio.sleep(0.3)
            await _kill(store, pid)
            await sleeping
        else:
            await _kill(store, pid)
            await s.notes.get("p", "n")


@pytest.mark.parametrize("mid_statement", [True, False])
async def test_a_connection_killed_in_a_session_is_unavailable(
    pg_database_url: str, mid_statement: bool
) -> None:
    store = await empty_postgres_store(pg_database_url)
    try:
        with pytest.raises(Unavailable, match="the database is unavailable"):
            await _session_killed(store, mid_statement=mid_statement)
        # The pool recovers: the next session works.
        async with store.session(readonly=True) as s:
            assert await s.notes.get("p", "n") is None
    finally:
        await store.close()
