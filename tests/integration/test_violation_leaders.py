"""Two re-judging leaders overlapping for a moment (ADR 0190): both judge the same violating
pod, one violation opens, one ``violation.opened`` event is written, and neither worker fails.

On PostgreSQL the race is real: the first leader's transaction has written its violation and
is held open while the second judges, reads no open violation, and inserts its own, which
waits for the first transaction and is then skipped. SQLite serializes writing units of work
(``BEGIN IMMEDIATE``), so there the second leader is handed a stale view instead (what it
would have read before the first committed); memory likewise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from chainproof.domain.events import EventType
from chainproof.policy.violations import Violation
from chainproof.services.judge.continuous import ContinuousValidation, _Targets
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import PodKey, ViolationQuery
from chainproof.store.sql import SqlStore
from contract.conftest import empty_postgres_store
from unit.services.judge_fixtures import System
from unit.services.test_continuous_validation import A, finding, setup, violation_events

WEB_1: PodKey = ("default", "shop", "web-1")


class _HeldCommit:
    """A store whose first writing unit of work waits for ``release`` before it commits."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self.wrote = asyncio.Event()
        self.release = asyncio.Event()

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Any]:
        return self._store.session(readonly=True) if readonly else self._held()

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[Any]:
        async with self._store.session() as s:
            yield s
            self.wrote.set()
            await self.release.wait()


class _StaleViolations:
    def __init__(self, real: Any) -> None:
        self._real = real

    async def open_for_pods(self, pods: Sequence[PodKey]) -> dict[PodKey, Violation]:
        return {}  # read before the other leader committed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _StaleUnit:
    def __init__(self, real: Any) -> None:
        self._real = real
        self.violations = _StaleViolations(real.violations)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _StaleView:
    """A store whose writing units of work see no open violation."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def session(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Any]:
        return self._store.session(readonly=True) if readonly else self._stale()

    @asynccontextmanager
    async def _stale(self) -> AsyncIterator[Any]:
        async with self._store.session() as s:
            yield _StaleUnit(s)


def leader(system: System, store: Any) -> ContinuousValidation:
    cv = system.services.runtime.continuous
    assert cv is not None
    return ContinuousValidation(
        store,
        system.resources,
        cv.new_judge,
        system.clock,
        cluster_projects={},
        default_project="default",
    )


async def _violating_pod(store: MetadataStore) -> System:
    system = System(store=store)  # type: ignore[arg-type]
    await setup(system)
    await finding(system, "default", A)
    async with store.session() as s:
        await s.outbox.mark_judged([e.sequence for e in await s.outbox.unjudged(10_000)])
    return system


async def _one_open(system: System) -> Violation:
    async with system.store.session() as s:
        [only] = await s.violations.list_rows(ViolationQuery("default"), 10)
    opened = [e for e in await violation_events(system) if e.type is EventType.VIOLATION_OPENED]
    assert [e.subject for e in opened] == [only.name]
    return only


async def _lock_waiter(store: SqlStore) -> None:
    for _ in range(500):
        async with store.engine.connect() as c:
            waiting = await c.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the second leader's insert never waited for the first's row")


@pytest.mark.postgres
async def test_two_leaders_at_once_on_postgres_open_one_violation(
    pg_database_url: str,
) -> None:
    store = await empty_postgres_store(pg_database_url)
    try:
        system = await _violating_pod(store)
        held = _HeldCommit(store)
        first = leader(system, held)
        second = leader(system.replica(), store)
        one = asyncio.create_task(first.judge(_Targets(pods={WEB_1: "first leader"})))
        await asyncio.wait_for(held.wrote.wait(), 60)
        two = asyncio.create_task(second.judge(_Targets(pods={WEB_1: "second leader"})))
        await _lock_waiter(store)  # its insert waits for the first leader's open row
        held.release.set()
        result_one = await asyncio.wait_for(one, 60)
        result_two = await asyncio.wait_for(two, 60)
        assert [v.pod for v in result_one.opened] == ["web-1"]
        assert result_two.judged == 1 and result_two.opened == ()
        assert (await _one_open(system)).violation_id == result_one.opened[0].violation_id
    finally:
        await store.close()


async def test_a_leader_with_a_stale_view_keeps_the_first_violation(
    store: MetadataStore,
) -> None:
    system = await _violating_pod(store)
    first = await leader(system, store).judge(_Targets(pods={WEB_1: "first leader"}))
    [opened] = first.opened
    late = await leader(system.replica(), _StaleView(store)).judge(
        _Targets(pods={WEB_1: "second leader"})
    )
    assert late.judged == 1 and late.opened == () and late.updated == ()
    kept = await _one_open(system)
    assert kept == opened and kept.cause == "first leader"
