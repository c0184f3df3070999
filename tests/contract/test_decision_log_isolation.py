"""One decision record the database cannot store must not cost the others (issue 9 item 15).

Twenty reviews are recorded in one batch; one of them carries a value the backend refuses (a
lone surrogate, bytes, an integer past 64 bits, NUL on PostgreSQL). All twenty must be stored:
the nineteen as they are, the bad one in a degraded form that says what was changed. Runs on
SQLite and PostgreSQL, where the refusal comes from the real encoder and database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import Unavailable
from chainproof.policy import Decision, Outcome
from chainproof.services.judge.decision_log import DecisionEntry, DecisionLog
from chainproof.store.factory import create_store
from chainproof.store.port import DecisionQuery, MetadataStore
from contract.conftest import empty_postgres_store

TOKENS = PageTokenCodec(b"k" * 32)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

BAD_VALUES = [
    pytest.param("lone \ud800 surrogate", id="surrogate"),
    pytest.param(b"raw bytes", id="bytes"),
    pytest.param(2**70, id="int-past-64-bits"),
    pytest.param("nul \x00 inside", id="nul"),
]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "sqlite":
        store = create_store(f"sqlite:///{tmp_path}/chainproof.db")
        await store.open()
    else:
        store = await empty_postgres_store(request.getfixturevalue("pg_database_url"))
    try:
        yield store
    finally:
        await store.close()


def entry(uid: str, message: Any = "") -> DecisionEntry:
    decision = Decision((), Outcome.DENIED, NOW)
    return DecisionEntry("p", decision, request_uid=uid, namespace="web", message=message)


async def stored(store: MetadataStore) -> dict[str, dict[str, Any]]:
    async with store.session(readonly=True) as s:
        rows = await s.decisions.page(DecisionQuery("p"), None, 1000)
    return {r.data["requestUid"]: dict(r.data) for r in rows}


@pytest.mark.parametrize("bad", BAD_VALUES)
async def test_one_unstorable_record_does_not_fail_its_batch(
    store: MetadataStore, bad: Any
) -> None:
    log = DecisionLog(store, TOKENS)
    log.start()
    try:
        for i in range(20):
            # The bad one in the middle of the batch: both halves around it must land.
            await log.record(entry(f"u{i}", message=bad if i == 7 else f"fine {i}"))
        await log.flush()
    finally:
        await log.close()
    rows = await stored(store)
    assert sorted(rows) == sorted(f"u{i}" for i in range(20))
    for i in range(20):
        if i != 7:
            assert rows[f"u{i}"]["message"] == f"fine {i}"
            assert "logDegraded" not in rows[f"u{i}"]
    kept = rows["u7"]
    if "logDegraded" in kept:
        # Degraded: the record says why and which field was changed, and keeps the rest.
        assert any(c.startswith("$.message") for c in kept["logDegraded"]["changed"])
        assert kept["namespace"] == "web"
        assert isinstance(kept["message"], str)
    else:
        # Only SQLite stores NUL in JSON text as it is.
        assert kept["message"] == bad
        assert "\x00" in bad


async def test_degraded_and_lost_records_are_counted(store: MetadataStore) -> None:
    log = DecisionLog(store, TOKENS)
    metrics = CollectorRegistry()
    log.metrics.register(metrics)
    log.start()
    try:
        await log.record(entry("good"))
        await log.record(entry("bad", message=cast(Any, object())))
        await log.flush()
    finally:
        await log.close()
    assert sorted(await stored(store)) == ["bad", "good"]
    assert metrics.get_sample_value("chainproof_decision_log_degraded_total") == 1
    assert metrics.get_sample_value("chainproof_decision_log_lost_total") == 0
    assert metrics.get_sample_value("chainproof_decision_log_written_total") == 2
    assert metrics.get_sample_value("chainproof_decision_log_queued") == 0


class CommitReplyLost:
    """A store whose first write commits and then reports the connection lost, as when the
    database commits but its answer never arrives: the retry must not store it twice."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.tripped = False

    def session(self, *, readonly: bool = False) -> Any:
        inner = self.inner.session(readonly=readonly)
        outer = self

        class _Session:
            async def __aenter__(self) -> Any:
                return await inner.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                result = await inner.__aexit__(*exc)
                if not readonly and exc[0] is None and not outer.tripped:
                    outer.tripped = True
                    raise Unavailable("the database is unavailable: connection lost")
                return result

        return _Session()


async def test_a_write_committed_but_unacknowledged_is_stored_once(store: MetadataStore) -> None:
    flaky = CommitReplyLost(store)
    log = DecisionLog(cast(MetadataStore, flaky), TOKENS, retry_max_seconds=0.01)
    log.start()
    try:
        for i in range(5):
            await log.record(entry(f"u{i}"))
        await log.flush()
    finally:
        await log.close()
    assert flaky.tripped
    async with store.session(readonly=True) as s:
        rows = await s.decisions.page(DecisionQuery("p"), None, 1000)
    assert sorted(r.data["requestUid"] for r in rows) == [f"u{i}" for i in range(5)]
    assert not any("logDegraded" in r.data for r in rows)
    assert log.lost == 0


class Down:
    """A store that cannot be reached."""

    def session(self, *, readonly: bool = False) -> Any:
        raise Unavailable("the database is unavailable: connection refused")


async def test_without_a_writer_a_failed_write_is_raised_and_counted() -> None:
    log = DecisionLog(cast(MetadataStore, Down()), TOKENS)
    with pytest.raises(Unavailable):
        await log.record(entry("u"))
    assert log.lost == 1
