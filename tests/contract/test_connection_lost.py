"""A PostgreSQL connection that dies in the middle of a session is a 503 (Unavailable), like a
failed connect — never a 500 (issue 9 item 13).

The backend serving the session is killed with ``pg_terminate_backend`` from another
connection, while the session's own statement (``pg_sleep``) is running, and between two of
its statements.
"""

from __future__ import annotations

import asyncio

import psycopg
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


async def _backend_pid(store: SqlStore) -> int:
    async with store.session(readonly=True) as s:
        c = s.connection  # type: ignore[attr-defined]
        pid: int = (await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def test_an_idle_pooled_connection_that_died_is_replaced_before_use(
    pg_database_url: str,
) -> None:
    """A connection idle in the pool past ``ping_after_idle_s`` is pinged on checkout; the
    one whose backend is gone (a restarted server) is replaced, and the session works."""
    store = SqlStore.from_url(pg_database_url, pool_size=1, ping_after_idle_s=0.05)
    await store.open()
    try:
        pid = await _backend_pid(store)
        killer = SqlStore.from_url(pg_database_url)  # not through the pool under test
        try:
            await _kill(killer, pid)
        finally:
            await killer.close()
        await asyncio.sleep(0.2)
        assert await _backend_pid(store) != pid  # a new connection, not an error
    finally:
        await store.close()


async def test_a_connection_used_a_moment_ago_is_not_pinged(pg_database_url: str) -> None:
    """Busy sessions (the admission webhook's) do not pay a ping's round trip each."""
    store = SqlStore.from_url(pg_database_url, pool_size=1, ping_after_idle_s=60)
    await store.open()
    sent: list[str] = []
    try:
        await _backend_pid(store)
        sa.event.listen(
            store.engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2])
        )
        await _backend_pid(store)
        assert sent == ["SELECT pg_backend_pid()"]
    finally:
        await store.close()


async def test_a_readonly_session_opens_no_transaction(pg_database_url: str) -> None:
    """At READ COMMITTED a transaction would only add BEGIN and COMMIT round trips."""
    store = SqlStore.from_url(pg_database_url)
    await store.open()
    try:
        for readonly in (True, False):
            async with store.session(readonly=readonly) as s:
                c = s.connection  # type: ignore[attr-defined]
                await c.execute(sa.text("SELECT 1"))
                raw = (await c.get_raw_connection()).driver_connection
                assert raw.is_in_transaction() is (not readonly)
    finally:
        await store.close()


async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced(
    pg_database_url: str,
) -> None:
    """Not pinged (used a moment ago), yet a connection the server closed while it sat in the
    pool (a restart, an administrator's pg_terminate_backend) is known to be closed when it is
    checked out, and the pool opens another: the next session just works (ADR 0135)."""
    await (await empty_postgres_store(pg_database_url)).close()
    store = SqlStore.from_url(pg_database_url, ping_after_idle_s=60)
    await store.open()
    try:
        async with store.session(readonly=True) as s:
            c = s.connection  # type: ignore[attr-defined]
            pid = (await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            pooled = (await c.get_raw_connection()).driver_connection
        # Now idle in the pool. Killed from a connection of its own (the pool would hand
        # out that very connection), and waited for until the backend is gone.
        async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as other:
            await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(200):
                cur = await other.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                )
                row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.05)
        # The backend leaves pg_stat_activity a moment before its socket closes; what the
        # check on checkout relies on is the client having heard the close.
        for _ in range(200):
            if pooled.is_closed():
                break
            await asyncio.sleep(0.05)
        assert pooled.is_closed()
        for _ in range(3):
            async with store.session(readonly=True) as s:
                assert await s.notes.get("p", "n") is None
            async with store.session(readonly=True) as s:
                c = s.connection  # type: ignore[attr-defined]
                assert (await c.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await store.close()
