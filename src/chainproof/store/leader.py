"""Leader locks: which one of the replicas sharing a database runs the singleton workers
(the Kubernetes watchers, the notifier, re-judging).

Owns the port (:class:`LeaderLock`) and the adapters that need no database connection:

* :class:`AlwaysHeld` for stores only one process can use (memory, in-memory SQLite);
* :class:`FileLeaderLock` for a SQLite file, which several processes of one machine may
  share (``serve --workers N``): an exclusive ``flock`` on a file beside the database,
  released by the kernel when the holder dies, however it dies.

PostgreSQL's session advisory lock lives in :mod:`chainproof.store.sql.leader`; choosing
one is :func:`chainproof.store.factory.create_leader_lock`'s job, and the election loop that
uses a lock is :mod:`chainproof.services.judge.leader`'s.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Protocol


class LeaderLock(Protocol):
    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process holds it now."""

    async def still_held(self) -> bool:
        """Whether this process still holds the lock it took (False once it was lost, e.g.
        when the connection that held it died)."""

    async def release(self) -> None:
        """Give the lock up (nothing happens when it is not held)."""


class AlwaysHeld:
    """The only process there can be is the leader."""

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class FileLeaderLock:
    """An exclusive, non-blocking ``flock`` on ``path`` (created when missing)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
