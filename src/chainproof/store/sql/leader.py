"""The leader lock on PostgreSQL: a session-level advisory lock on a connection of its own.

Owns one long-lived connection, in autocommit mode (an open transaction would hold back
vacuum for as long as the leader lives), taken from the engine's pool and never handed back
to it (a session lock outlives any transaction and must not leak to another user of the
pool). The lock is the server's: when the holder's process dies or its connection breaks,
PostgreSQL ends the session and the lock is free for another replica's ``try_acquire``.

``still_held`` asks the server, within a timeout, whether this very session holds the lock;
a connection that fails or does not answer counts as lost, and is dropped, so a partitioned
leader stops acting within one check.
"""

from __future__ import annotations

import asyncio
import contextlib

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger("chainproof.leader")

#: The advisory lock key of the runtime leader: a fixed 63-bit number ("chainldr" in
#: ASCII), distinct from the migration lock's.
RUNTIME_LEADER_KEY = 0x636861696E6C6472

_HELD = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :high AND objid = :low AND objsubid = 1"
)


class PgAdvisoryLeaderLock:
    def __init__(
        self, engine: AsyncEngine, key: int = RUNTIME_LEADER_KEY, *, timeout_s: float = 5.0
    ) -> None:
        self._engine = engine
        self._key = key
        self._timeout_s = timeout_s
        self._conn: AsyncConnection | None = None
        self._held = False

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never back to the pool: it may hold the lock
            with contextlib.suppress(Exception):
                await conn.close()

    async def try_acquire(self) -> bool:
        if self._held:
            return await self.still_held()
        try:
            async with asyncio.timeout(self._timeout_s):
                conn = await self._connection()
                got = await conn.scalar(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                )
        except Exception as exc:  # unreachable database: not the leader, try again later
            log.warning("leader lock: cannot reach the database", error=str(exc))
            await self._drop()
            return False
        self._held = bool(got)
        return self._held

    async def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        # pg_locks shows a bigint key as two 32-bit halves; objsubid 1 marks the bigint form.
        high, low = self._key >> 32, self._key & 0xFFFFFFFF
        try:
            async with asyncio.timeout(self._timeout_s):
                count = await self._conn.scalar(_HELD, {"high": high, "low": low})
        except Exception as exc:
            log.warning("leader lock lost with its connection", error=str(exc))
            await self._drop()
            return False
        if not count:
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        if self._held and self._conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout_s):
                    await self._conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                    )
        await self._drop()
