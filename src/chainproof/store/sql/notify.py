"""PostgreSQL LISTEN/NOTIFY as the change channel between replicas.

Owns one long-lived listening connection (taken from the engine's pool, and closed rather
than returned, since a LISTEN registration outlives the transaction) and publishing through
``pg_notify``. Reconnects with backoff; every (re)connection is reported as a gap, because
notices sent while nobody listened are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("chainproof.store")

CHANNEL = "chainproof_changes"


class PgChangeChannel:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def publish(self, payload: str) -> None:
        async with self._engine.begin() as conn:  # delivered when this transaction commits
            await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))

    async def listen(self, on_message: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen_once(on_message, on_gap)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying; caches fall back to their TTL meanwhile
                log.warning("change listener lost its connection", error=str(exc))
            on_gap()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _listen_once(
        self, on_message: Callable[[str], None], on_gap: Callable[[], None]
    ) -> None:
        conn = await self._engine.connect()
        try:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection  # the asyncpg connection
            lost = asyncio.Event()
            pg.add_termination_listener(lambda _conn: lost.set())
            await pg.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: on_message(payload))
            on_gap()  # anything published before LISTEN took effect was not heard
            await lost.wait()
        finally:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never hand a listening session back to the pool
            with contextlib.suppress(Exception):
                await conn.close()
