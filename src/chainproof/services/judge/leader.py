"""Leader election: run the singleton work while this replica holds the leader lock.

Owns the loop around a :class:`~chainproof.store.leader.LeaderLock`: try to take the lock
every ``retry_s``; once taken, start the work and check every ``check_s`` that the lock is
still held; when it is lost (the database connection died, another replica took over), the
work is cancelled at once and the loop goes back to trying. A replica that dies loses the
lock with its connection, so a follower takes over within about one ``retry_s``. Work that
ends or fails on its own is started again after a pause, as long as the lock is held.

Two leaders can overlap only for the time a lost connection takes to be noticed (up to one
check); the work tolerates that (deliveries are at least once, inventory writes reconcile).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from chainproof.store.leader import LeaderLock

log = structlog.get_logger("chainproof.leader")

Work = Callable[[], Awaitable[None]]


class LeaderElection:
    def __init__(
        self,
        lock: LeaderLock,
        *,
        retry_s: float = 2.0,
        check_s: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._lock = lock
        self._retry_s = retry_s
        self._check_s = check_s
        self._on_change = on_change
        self.is_leader = False
        #: How many times this replica became the leader (for tests and metrics).
        self.terms = 0

    def _set(self, leader: bool) -> None:
        if leader != self.is_leader:
            self.is_leader = leader
            log.info("runtime leadership", leader=leader)
            if self._on_change is not None:
                self._on_change(leader)

    async def run(self, work: Work) -> None:
        """Run ``work`` whenever this replica leads, until cancelled."""
        try:
            while True:
                if await self._lock.try_acquire():
                    self.terms += 1
                    self._set(True)
                    await self._lead(work)
                    self._set(False)
                await asyncio.sleep(self._retry_s)
        finally:
            self._set(False)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._lock.release())

    async def _lead(self, work: Work) -> None:
        task = asyncio.get_running_loop().create_task(self._keep_running(work))
        try:
            while await self._lock.still_held():
                done, _ = await asyncio.wait({task}, timeout=self._check_s)
                if done:  # _keep_running ends only when cancelled
                    return
            log.warning("runtime leadership lost; stopping the leader's work")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _keep_running(self, work: Work) -> None:
        delay = 1.0
        while True:
            try:
                await work()
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader work failed; starting it again", retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
