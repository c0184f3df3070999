"""One runtime leader among the replicas of a database, and a follower that takes over.

PostgreSQL: two elections on two engines (two real sessions) compete for the advisory lock;
the server itself says who holds it (pg_locks). Killing the leader's session, as the server
does when the leader's process dies, hands leadership to the follower, and the old leader
stops its work. SQLite: a file lock beside the database, freed when its holder is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from chainproof.services.judge.leader import LeaderElection
from chainproof.store.factory import create_leader_lock, create_store
from chainproof.store.leader import AlwaysHeld, FileLeaderLock
from chainproof.store.sql import SqlStore
from chainproof.store.sql.leader import RUNTIME_LEADER_KEY, PgAdvisoryLeaderLock


async def until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def holders(url: str) -> list[int]:
    """The backend PIDs holding the runtime leader lock of this test's database, as the
    server sees them (pg_locks lists every database's locks: another chainproof on the same
    server, a benchmark or a `make run`, holds the same key in its own database)."""
    with psycopg.connect(url.replace("postgresql://", "postgresql://", 1), autocommit=True) as c:
        rows = c.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s AND objid = %s AND objsubid = 1",
            (RUNTIME_LEADER_KEY >> 32, RUNTIME_LEADER_KEY & 0xFFFFFFFF),
        ).fetchall()
    return [int(r[0]) for r in rows]


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))


class Replica:
    def __init__(self, name: str, store: SqlStore, retry_s: float = 0.05) -> None:
        self.name = name
        self.store = store
        lock = create_leader_lock(store)
        assert isinstance(lock, PgAdvisoryLeaderLock)
        self.election = LeaderElection(lock, retry_s=retry_s, check_s=0.05)
        self.working = False
        self.runs = 0
        self.task: asyncio.Task[None] | None = None

    async def work(self) -> None:
        self.working, self.runs = True, self.runs + 1
        try:
            await asyncio.Event().wait()  # the singleton work: runs until cancelled
        finally:
            self.working = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.election.run(self.work))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.store.close()


@pytest.mark.postgres
async def test_one_leader_and_the_follower_takes_over_when_it_dies(pg_database_url: str) -> None:
    stores = []
    for _ in range(2):
        store = create_store(pg_database_url)
        assert isinstance(store, SqlStore)
        await store.open()
        stores.append(store)
    # The first replica retries slowly, so that once its session is killed the follower is
    # the one to take over (either may win; the test wants to watch a hand-over).
    a, b = Replica("a", stores[0], retry_s=1.0), Replica("b", stores[1])
    a.start()
    await until(lambda: a.working, "the first replica to lead")
    b.start()
    await until(lambda: b.election.terms == 0 and b.task is not None, "the second to start")
    # The follower keeps trying and keeps failing while the leader lives.
    for _ in range(10):
        await asyncio.sleep(0.06)
        assert not b.working and not b.election.is_leader
    [leader_pid] = holders(pg_database_url)

    # The leader's session dies (as when its process is killed): the follower takes over,
    # and the old leader, finding its lock gone, stops its work.
    terminate(pg_database_url, leader_pid)
    await until(lambda: b.working, "the follower to take over")
    await until(lambda: not a.working, "the old leader to stop its work")
    # A terminated backend can linger in pg_locks for a moment while it exits.
    await until(lambda: leader_pid not in holders(pg_database_url), "the old session to end")
    [new_pid] = holders(pg_database_url)
    assert new_pid != leader_pid
    assert a.election.terms == 1 and b.election.terms == 1
    # The old leader, reconnected, is a follower now: it does not lead beside the new one.
    for _ in range(10):
        await asyncio.sleep(0.06)
        assert not a.working and holders(pg_database_url) == [new_pid]

    # Stopping the leader releases the lock at once; the other takes it.
    await b.stop()
    await until(lambda: a.working, "the first replica to lead again")
    assert a.election.terms == 2
    await a.stop()
    assert holders(pg_database_url) == []


async def test_a_sqlite_file_has_one_leader_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/chainproof.db")
    lock = create_leader_lock(store)
    assert isinstance(lock, FileLeaderLock)
    other = create_leader_lock(store)
    assert await lock.try_acquire() and await lock.still_held()
    assert not await other.try_acquire()
    await lock.release()
    assert not await lock.still_held()

    # Another process holds it, then dies by SIGKILL: the kernel frees the lock.
    path = tmp_path / "chainproof.db.leader"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"held"
        assert not await other.try_acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        await holder.wait()
    assert await other.try_acquire()
    await other.release()


async def test_memory_and_in_memory_sqlite_always_lead() -> None:
    assert isinstance(create_leader_lock(create_store("memory://")), AlwaysHeld)
    assert isinstance(create_leader_lock(create_store("sqlite:///:memory:")), AlwaysHeld)
    election = LeaderElection(AlwaysHeld(), retry_s=0.01, check_s=0.01)
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()
        await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(election.run(work))
    await asyncio.wait_for(ran.wait(), 30)
    assert election.is_leader
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not election.is_leader
