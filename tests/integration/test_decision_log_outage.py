"""A database outage of any length loses no decision record (issue 9 item 15).

The decision log reaches a real PostgreSQL (a database made for each test) through a TCP proxy
the test cuts and restores. While it is cut, reviews go on being recorded: the in-memory queue
fills to its bound, the rest spill to files; the writer keeps retrying well past the attempts
the old writer made before it dropped the batch (8). When the proxy is restored every record
must be stored exactly once, the spill files gone, nothing counted as lost.

"Longer than 15 s" is expressed as a number of failed connection attempts, not as time: the
retry backoff is made short, and the test waits until the writer has failed 20 times.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import pg  # tests/pg.py
from chainproof.domain.pagination import PageTokenCodec
from chainproof.policy import Decision, Outcome
from chainproof.services.judge.decision_log import DecisionEntry, DecisionLog
from chainproof.services.judge.decision_spill import DecisionSpill
from chainproof.store.port import DecisionQuery
from chainproof.store.sql import SqlStore
from tcp_proxy import CuttableProxy  # tests/tcp_proxy.py

pytestmark = pytest.mark.postgres

TOKENS = PageTokenCodec(b"k" * 32)
QUEUE = 5
#: The old writer gave up after 8 attempts (about 15 s); the outage outlasts far more.
FAILED_ATTEMPTS = 20


@dataclass
class Rig:
    proxy: CuttableProxy
    direct: SqlStore  # the same database, not through the proxy: the test's own view
    proxied: SqlStore
    spill_dir: Path

    def log(self) -> tuple[DecisionLog, CollectorRegistry]:
        log = DecisionLog(
            self.proxied,
            TOKENS,
            max_queue=QUEUE,
            spill=DecisionSpill(self.spill_dir),
            retry_max_seconds=0.05,
        )
        metrics = CollectorRegistry()
        log.metrics.register(metrics)
        return log, metrics

    async def uids(self) -> Counter[str]:
        async with self.direct.session(readonly=True) as s:
            rows = await s.decisions.page(DecisionQuery("p"), None, 10_000)
        return Counter(r.data["requestUid"] for r in rows)

    async def wait_for_failed_attempts(self, more: int) -> None:
        goal = self.proxy.refused + more
        for _ in range(2000):  # bounded: fails the test rather than hang
            if self.proxy.refused >= goal:
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"the writer stopped trying: {self.proxy.refused} of {goal} attempts")


@pytest.fixture
def database(pg_server: pg.PgServer) -> Iterator[str]:
    name = pg.create_database(pg_server)
    try:
        yield name
    finally:
        pg.drop_database(pg_server, name)


@pytest.fixture
async def rig(pg_server: pg.PgServer, database: str, tmp_path: Path) -> AsyncIterator[Rig]:
    proxy = CuttableProxy(pg_server.host, pg_server.port)
    await proxy.start()
    direct = SqlStore.from_url(pg_server.url(database))
    await direct.open()  # migrates
    proxied = SqlStore.from_url(f"postgresql://{pg_server.user}@127.0.0.1:{proxy.port}/{database}")
    await proxied.open()
    try:
        yield Rig(proxy, direct, proxied, tmp_path / "spill")
    finally:
        await proxied.close()
        await direct.close()
        await proxy.stop()


def entry(uid: str) -> DecisionEntry:
    decision = Decision((), Outcome.ALLOWED, datetime.now(UTC))
    return DecisionEntry("p", decision, request_uid=uid, namespace="web", outcome="allowed")


def spill_files(rig: Rig) -> list[Path]:
    return sorted(rig.spill_dir.glob("*.jsonl")) if rig.spill_dir.exists() else []


async def test_an_outage_longer_than_the_old_retries_loses_nothing(rig: Rig) -> None:
    log, metrics = rig.log()
    log.start()
    try:
        for i in range(3):
            await log.record(entry(f"before-{i}"))
        await log.flush()
        assert await rig.uids() == Counter({f"before-{i}": 1 for i in range(3)})

        rig.proxy.sever()
        for i in range(40):
            await log.record(entry(f"during-{i}"))
        await rig.wait_for_failed_attempts(FAILED_ATTEMPTS)
        # Bounded memory: the queue (with the batch being written) holds its bound; the rest
        # wait on disk.
        queued = metrics.get_sample_value("chainproof_decision_log_queued")
        spilled = metrics.get_sample_value("chainproof_decision_log_spilled")
        assert queued == QUEUE
        assert spilled == 40 - queued
        assert spill_files(rig)
        # Reviews recorded while the writer is stuck go on spilling, not waiting.
        await log.record(entry("during-late"))
        assert metrics.get_sample_value("chainproof_decision_log_spilled") == spilled + 1

        rig.proxy.restore()
        await asyncio.wait_for(log.flush(), 120)
        for i in range(3):
            await log.record(entry(f"after-{i}"))
        await asyncio.wait_for(log.flush(), 120)
    finally:
        await log.close()

    expected = {f"before-{i}" for i in range(3)} | {f"after-{i}" for i in range(3)}
    expected |= {f"during-{i}" for i in range(40)} | {"during-late"}
    assert await rig.uids() == Counter(dict.fromkeys(expected, 1))
    assert metrics.get_sample_value("chainproof_decision_log_lost_total") == 0
    assert metrics.get_sample_value("chainproof_decision_log_spilled") == 0
    assert metrics.get_sample_value("chainproof_decision_log_queued") == 0
    assert (metrics.get_sample_value("chainproof_decision_log_write_failures_total") or 0) > 0
    assert spill_files(rig) == []


async def test_stopping_during_an_outage_spills_and_the_next_start_replays(rig: Rig) -> None:
    log, _ = rig.log()
    log.start()
    rig.proxy.sever()
    for i in range(12):
        await log.record(entry(f"u{i}"))
    await rig.wait_for_failed_attempts(3)
    # Shut down while the database is still away: what is in memory goes to disk too.
    await log.close(grace_seconds=0.2)
    assert len(spill_files(rig)) >= 1
    assert await rig.uids() == Counter()

    rig.proxy.restore()
    again, metrics = rig.log()  # the next process, on the same spill directory
    again.start()
    try:
        await asyncio.wait_for(again.flush(), 120)
    finally:
        await again.close()
    assert await rig.uids() == Counter({f"u{i}": 1 for i in range(12)})
    assert spill_files(rig) == []
    assert metrics.get_sample_value("chainproof_decision_log_lost_total") == 0


async def test_a_spill_file_cut_short_by_a_crash_is_replayed_and_its_torn_line_counted(
    rig: Rig,
) -> None:
    log, _ = rig.log()
    log.start()
    rig.proxy.sever()
    for i in range(10):
        await log.record(entry(f"u{i}"))
    await log.close(grace_seconds=0.1)
    [spilled] = spill_files(rig)
    # A crash in the middle of an append leaves half a line at the end.
    with spilled.open("ab") as f:
        f.write(b'{"id": "0006619c2aff70d8-2f75facede274c92", "project": "p", "ti')

    rig.proxy.restore()
    again, metrics = rig.log()
    again.start()
    try:
        await asyncio.wait_for(again.flush(), 120)
    finally:
        await again.close()
    assert await rig.uids() == Counter({f"u{i}": 1 for i in range(10)})
    assert metrics.get_sample_value("chainproof_decision_log_lost_total") == 1
