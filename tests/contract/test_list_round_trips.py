"""How many round trips a ``resourceUrl``-filtered occurrence list costs (issue 17 item 6).

On PostgreSQL the client's messages are counted on the wire, through a loopback proxy: every
Sync (extended protocol) and every Query (simple protocol) is one round trip, answered by
ReadyForQuery. A list is one statement in autocommit (no BEGIN, no COMMIT) on a pooled
connection that is not pinged while it is busy (ADR 0132, 0135). On SQLite the statements are
counted with SQLAlchemy's events. The counts are upper bounds: a change that adds a round
trip to the list path fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.store.sql.store import SqlStore
from contract.conftest import empty_postgres_store
from tcp_proxy import CuttableProxy
from unit.services.judge_fixtures import System

IMAGE = "registry.example.com/app@sha256:" + "c" * 64
FILTER = f'resourceUrl="https://{IMAGE}"'

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


class RoundTrips:
    """Counts PostgreSQL round trips in the client's byte stream, one parser per connection."""

    def __init__(self) -> None:
        self.count = 0

    def tap(self) -> Callable[[bytes], None]:
        buffer = bytearray()
        started = False

        def seen(data: bytes) -> None:
            nonlocal started
            buffer.extend(data)
            while True:
                if not started:  # SSLRequest / StartupMessage: length, then a code, no type
                    if len(buffer) < 8:
                        return
                    length = int.from_bytes(buffer[:4], "big")
                    if len(buffer) < length:
                        return
                    code = int.from_bytes(buffer[4:8], "big")
                    del buffer[:length]
                    started = code not in (_SSL_REQUEST, _GSS_REQUEST)
                    continue
                if len(buffer) < 5:
                    return
                length = int.from_bytes(buffer[1:5], "big")
                if len(buffer) < 1 + length:
                    return
                if buffer[0] in b"SQ":  # Sync, Query
                    self.count += 1
                del buffer[: 1 + length]

        return seen


async def _seed(system: System) -> None:
    g = system.grafeas
    await g.create_note("projects/prod", "cve", note_from_json({"vulnerability": {}}))
    for n in range(3):
        await g.create_occurrence(
            "projects/prod",
            occurrence_from_json(
                {
                    "resourceUri": f"https://{IMAGE}",
                    "noteName": "projects/prod/notes/cve",
                    "vulnerability": {
                        "effectiveSeverity": "HIGH",
                        "packageIssue": [
                            {"affectedCpeUri": "cpe:/o:debian", "affectedPackage": f"p{n}"}
                        ],
                    },
                }
            ),
        )


@pytest.fixture
async def proxied(pg_database_url: str) -> AsyncIterator[tuple[System, RoundTrips]]:
    trips = RoundTrips()
    url = make_url(pg_database_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432, tap=trips.tap)
    await proxy.start()
    store = SqlStore.from_url(
        f"postgresql://{url.username}@127.0.0.1:{proxy.port}/{url.database}?sslmode=disable",
        pool_size=1,
    )
    try:
        await (await empty_postgres_store(pg_database_url)).close()
        await store.open()
        system = System(store=store)  # type: ignore[arg-type]
        system.clock.now = datetime.now(UTC)
        await _seed(system)
        yield system, trips
    finally:
        await store.close()
        await proxy.stop()


async def _trips(trips: RoundTrips, call: Any) -> tuple[int, Any]:
    before = trips.count
    result = await call
    return trips.count - before, result


@pytest.mark.postgres
async def test_a_filtered_list_is_one_round_trip_on_postgres(
    proxied: tuple[System, RoundTrips],
) -> None:
    system, trips = proxied
    g = system.grafeas
    # The first use of each statement on a connection also prepares it; count the second.
    await g.list_occurrences("projects/prod", FILTER, 50, "")
    await g.list_occurrences_json("projects/prod", FILTER, 50, "")
    n, page = await _trips(trips, g.list_occurrences("projects/prod", FILTER, 50, ""))
    assert len(page.items) == 3
    assert n <= 1, f"gRPC's list took {n} round trips"
    n, raw = await _trips(trips, g.list_occurrences_json("projects/prod", FILTER, 50, ""))
    assert len(raw.items) == 3
    assert n <= 1, f"REST's list took {n} round trips"
    # A page with a token resumes in one round trip too.
    first = await g.list_occurrences_json("projects/prod", FILTER, 2, "")
    assert first.next_page_token
    await g.list_occurrences_json("projects/prod", FILTER, 2, first.next_page_token)
    n, rest = await _trips(
        trips, g.list_occurrences_json("projects/prod", FILTER, 2, first.next_page_token)
    )
    assert [i.occurrence_id for i in rest.items] == [i.occurrence_id for i in raw.items[2:]]
    assert n <= 1


async def test_a_filtered_list_is_one_statement_on_sqlite(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path}/list.db")
    await store.open()
    try:
        system = System(store=store)  # type: ignore[arg-type]
        system.clock.now = datetime.now(UTC)
        await _seed(system)
        seen = {"statements": 0}

        def statement(*_: Any) -> None:
            seen["statements"] += 1

        engine = store.engine.sync_engine
        g = system.grafeas
        for call in (g.list_occurrences, g.list_occurrences_json):
            sa.event.listen(engine, "before_cursor_execute", statement)
            try:
                page = await call("projects/prod", FILTER, 50, "")
            finally:
                sa.event.remove(engine, "before_cursor_execute", statement)
            assert len(page.items) == 3
        # BEGIN (SQLite's deferred read transaction) and the SELECT, for each of the two lists.
        assert seen["statements"] <= 4
    finally:
        await store.close()
