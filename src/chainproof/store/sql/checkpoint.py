"""Checkpoints of a SQLite write-ahead log, taken beside the writers instead of inside them.

In WAL mode a commit appends pages to the log; a *checkpoint* copies them back into the
database file. By default SQLite checkpoints inside the commit that takes the log past 1,000
pages, so a large write (an SBOM of 10,000 packages appends some 45 MB) pays for copying its
own pages back before its request can answer: about a fifth of that ingest's time.

Here the request path's connections raise the automatic threshold far out of the way
(``AUTOCHECKPOINT_PAGES``: the safety net if checkpoints here fall behind), and after every
committed write the store *kicks* a :class:`WalCheckpointer`, which runs one PASSIVE
checkpoint at a time on a pooled connection of its own. A PASSIVE checkpoint takes no lock
that readers or writers wait for: it copies what no reader still needs, and SQLite runs it
in C with Python's lock released, so it overlaps the next request's Python work. Kicks that
arrive while one runs are folded into one more run after it. A failed checkpoint is logged
and left to the next kick (or to the safety net); it can never fail a write that has already
committed.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

#: The automatic checkpoint threshold of request connections, in pages (4 KiB each): 256 MiB
#: of log before a commit checkpoints by itself, only when the background ones fall behind.
AUTOCHECKPOINT_PAGES = 65536
#: What an emptied log is truncated to (64 MiB), so one large write does not keep its size.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
#: At most one checkpoint starts per this many seconds, however often writes commit (an
#: admission webhook on SQLite commits a decision per review).
MIN_INTERVAL_S = 0.5


class WalCheckpointer:
    """One background PASSIVE checkpoint at a time for one SQLite file's engine."""

    def __init__(self, engine: AsyncEngine, min_interval_s: float = MIN_INTERVAL_S) -> None:
        self._engine = engine
        self._interval = min_interval_s
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._again = False
        self._last_start = float("-inf")
        #: Checkpoints completed (tests and diagnostics read it).
        self.completed = 0

    def kick(self) -> None:
        """A write committed: checkpoint now, or once more after the running one, or when
        the interval since the last one has passed."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        if self._timer is not None:
            return  # one is due already
        loop = asyncio.get_running_loop()
        delay = self._last_start + self._interval - loop.time()
        if delay <= 0:
            self._start(loop)
        else:
            self._timer = loop.call_later(delay, self._start, loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._last_start = loop.time()
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            try:
                await self._checkpoint("PASSIVE")
                self.completed += 1
            except Exception as exc:  # never fail the committed write
                log.warning("SQLite WAL checkpoint failed; retried after the next write: %s", exc)
                return
            if not self._again:
                return
            await asyncio.sleep(max(0.0, self._last_start + self._interval - loop.time()))
            self._last_start = loop.time()

    async def _checkpoint(self, mode: str) -> None:
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection  # aiosqlite: runs on the connection's own thread
            assert driver is not None
            cursor = await driver.execute(f"PRAGMA wal_checkpoint({mode})")
            await cursor.close()

    async def close(self) -> None:
        """Wait for the running checkpoint, then copy the whole log back and empty it (the
        database file alone is then complete); a busy database leaves that to the next
        opener."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if self._task is not None:
                await self._task
            await self._checkpoint("TRUNCATE")
        except Exception as exc:  # closing goes on
            log.warning("SQLite WAL checkpoint at close failed: %s", exc)
