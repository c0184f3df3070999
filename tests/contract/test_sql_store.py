"""What only the SQL adapters have: URLs, migrations, SQLite settings, PostgreSQL concurrency,
connection failures, and the test suite's own throwaway PostgreSQL server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

import pg
from chainproof.errors import InvalidArgument, Unavailable
from chainproof.store.factory import DEFAULT_DATABASE_URL, create_store
from chainproof.store.memory import MemoryStore
from chainproof.store.port import DecisionQuery
from chainproof.store.runtime_port import ViolationQuery
from chainproof.store.sql import Dialect, SqlStore, migrate, parse_database_url
from chainproof.store.sql.schema import metadata
from contract.store_samples import (
    MINUS_5,
    PLUS_2,
    T0,
    decision_record,
    document_record,
    image,
    note_record,
    occurrence_record,
)

#: The newest migration; bump it with every new revision.
#: 0007 (reverse impact) is chained after 0012 (image summaries), both made from 0005;
#: 0006 (continuous validation) after 0007, 0013 (one open violation per pod) after 0006,
#: 0015 (the image facts' index covers the summary recompute) after 0013, 0014 (dashboard
#: indexes and totals) after 0015, 0016 (SQLite drops the findings' ID index) after 0014.
HEAD = "0016"
SCRIBE_TABLES = {"projects", "notes", "occurrences", "meta"}
JUDGE_TABLES = {"documents", "decisions", "decision_images"}
ACCESS_TABLES = {"iam_policies", "api_tokens", "audit_log"}
RUNTIME_TABLES = {
    "inventory",
    "inventory_checkpoints",
    "outbox",
    "subscriptions",
    "deliveries",
    "violations",
}
TABLES = SCRIBE_TABLES | JUDGE_TABLES | ACCESS_TABLES | RUNTIME_TABLES


@pytest.fixture
def fresh_pg_url(pg_server: pg.PgServer) -> Iterator[str]:
    """An empty database of its own, for tests that migrate or race on the schema."""
    name = pg.create_database(pg_server, prefix="chainproof_fresh")
    try:
        yield pg_server.url(name)
    finally:
        pg.drop_database(pg_server, name)


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def fresh_sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/fresh.db"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    store = SqlStore.from_url(url)
    try:
        yield store
    finally:
        await store.close()


# URLs and the factory ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "dialect", "driver_url"),
    [
        (
            "sqlite:///./data/chainproof.db",
            Dialect.SQLITE,
            "sqlite+aiosqlite:///./data/chainproof.db",
        ),
        ("sqlite:////var/lib/x.db", Dialect.SQLITE, "sqlite+aiosqlite:////var/lib/x.db"),
        ("sqlite:///:memory:", Dialect.SQLITE, "sqlite+aiosqlite:///:memory:"),
        ("sqlite://", Dialect.SQLITE, "sqlite+aiosqlite:///:memory:"),
        (
            "postgresql://u:pw@db:5432/cp",
            Dialect.POSTGRESQL,
            "postgresql+asyncpg://u:pw@db:5432/cp",
        ),
        ("postgres://u@db/cp", Dialect.POSTGRESQL, "postgresql+asyncpg://u@db/cp"),
        ("postgresql+asyncpg://u@db/cp", Dialect.POSTGRESQL, "postgresql+asyncpg://u@db/cp"),
        (
            "postgresql://u@db/cp?sslmode=require",
            Dialect.POSTGRESQL,
            "postgresql+asyncpg://u@db/cp?ssl=require",
        ),
    ],
)
def test_user_urls_map_to_async_drivers(url: str, dialect: Dialect, driver_url: str) -> None:
    target = parse_database_url(url)
    assert target.dialect is dialect
    assert target.url == make_url(driver_url)
    assert "pw" not in target.describe()


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/x", "redis://h", "nonsense", "", "sqlite+pysqlite:///x.db"]
)
def test_unsupported_url_names_the_accepted_forms(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        create_store(url)
    message = str(caught.value)
    assert "sqlite:///" in message
    assert "postgresql://" in message
    assert "memory://" in message
    assert "hunter2" not in message


def test_factory_picks_the_adapter() -> None:
    assert isinstance(create_store("memory://"), MemoryStore)
    assert isinstance(create_store("sqlite:///:memory:"), SqlStore)
    assert isinstance(create_store("postgres://u@h/db"), SqlStore)


# SQLite -------------------------------------------------------------------------------------


async def test_sqlite_default_url_creates_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = create_store(DEFAULT_DATABASE_URL)
    assert isinstance(store, SqlStore)
    await store.open()
    try:
        assert (tmp_path / "data" / "chainproof.db").is_file()
        async with store.engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}")  # noqa: E731
            assert (await pragma("journal_mode")).scalar() == "wal"
            assert (await pragma("foreign_keys")).scalar() == 1
            assert (await pragma("busy_timeout")).scalar() == 5000
    finally:
        await store.close()


async def test_sqlite_in_memory_is_one_database_for_all_sessions() -> None:
    store = create_store("sqlite:///:memory:")
    await store.open()
    try:

        async def write(i: int) -> None:
            async with store.session() as s:
                assert await s.notes.insert([note_record("p", f"n{i}")]) == []
                await asyncio.sleep(0)  # let the others try to interleave

        await asyncio.gather(*(write(i) for i in range(10)))
        async with store.session() as s:
            assert len(await s.notes.page("p", None, None, 100)) == 10
    finally:
        await store.close()


async def test_sqlite_file_concurrent_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/c.db")
    await store.open()
    try:

        async def write(i: int) -> None:
            async with store.session() as s:
                # Read first, then write: the pattern that fails with SQLITE_BUSY under a
                # deferred BEGIN when another connection writes in between.
                assert await s.notes.get("p", f"n{i}") is None
                await asyncio.sleep(0.01)
                assert await s.notes.insert([note_record("p", f"n{i}")]) == []

        await asyncio.gather(*(write(i) for i in range(8)))
        async with store.session() as s:
            assert len(await s.notes.page("p", None, None, 100)) == 8
    finally:
        await store.close()


async def test_repeated_id_within_one_batch_counts_as_taken(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/d.db")
    await store.open()
    try:
        async with store.session() as s:
            batch = [note_record("p", "a"), note_record("p", "b"), note_record("p", "a")]
            assert await s.notes.insert(batch) == ["a"]
            assert await s.notes.page("p", None, None, 10) == []
    finally:
        await store.close()


# migrations ---------------------------------------------------------------------------------


def _tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


#: Indexes alembic cannot compare: PostgreSQL spells a GIN index's expression back in its own
#: words (casts, quoting), so reflected and declared never read alike; migration 0007 and
#: schema.py write the same expression, and the impact contract tests use the index.
_UNCOMPARABLE_INDEXES = frozenset({"ix_occurrences_vulnerability_aliases"})


def _comparable(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    return not (type_ == "index" and name in _UNCOMPARABLE_INDEXES)


def _schema_diff(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "include_object": _comparable}
    )
    return list(compare_metadata(context, metadata))


async def test_migrations_from_empty_down_to_base_and_up_again(fresh_sql_store: SqlStore) -> None:
    store = fresh_sql_store
    assert await migrate.current_revision(store.engine) is None
    await store.open()
    await store.open()  # a second start finds the schema at head and does nothing
    assert await migrate.current_revision(store.engine) == HEAD
    async with store.engine.connect() as connection:
        assert await connection.run_sync(_tables) >= TABLES
        # The query-side table definitions agree with what the migration built.
        assert await connection.run_sync(_schema_diff) == []

    await migrate.downgrade(store.engine, "base")
    assert await migrate.current_revision(store.engine) is None
    async with store.engine.connect() as connection:
        assert not (await connection.run_sync(_tables)) & TABLES

    await store.open()
    async with store.session() as s:
        assert await s.notes.insert([note_record("p", "n")]) == []
    async with store.session() as s:
        assert await s.notes.get("p", "n") is not None


async def test_judge_migration_down_and_up_keeps_the_scribe_data(fresh_sql_store: SqlStore) -> None:
    store = fresh_sql_store
    await store.open()
    async with store.session() as s:
        assert await s.notes.insert([note_record("p", "n")]) == []
        await s.documents.put(document_record("p", "attestors", "a"))
        await s.decisions.insert([decision_record("p", "d", images=(image("app"),))])

    await migrate.downgrade(store.engine, "0001")
    assert await migrate.current_revision(store.engine) == "0001"
    async with store.engine.connect() as connection:
        tables = await connection.run_sync(_tables)
    assert tables >= SCRIBE_TABLES
    assert not tables & JUDGE_TABLES

    await store.open()
    assert await migrate.current_revision(store.engine) == HEAD
    async with store.engine.connect() as connection:
        assert await connection.run_sync(_schema_diff) == []
    async with store.session() as s:
        assert await s.notes.get("p", "n") is not None
        # The judge tables came back empty.
        assert await s.documents.get("p", "attestors", "a") is None
        assert await s.decisions.page(DecisionQuery("p"), None, 10) == []


def _occurrence_indexes(connection: sa.Connection) -> set[str]:
    # SQLAlchemy does not reflect SQLite's expression indexes: ask the catalogue itself.
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'occurrences'"
        )
    else:
        rows = connection.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'occurrences'"
        )
    return {str(name) for (name,) in rows}


async def test_migration_0016_drops_the_id_index_on_sqlite_only(fresh_sql_store: SqlStore) -> None:
    """SQLite cannot use the findings' vulnerability-ID index (the impact query's OR has an
    unindexed half there), so it stops writing it; PostgreSQL ORs it with the aliases'."""
    store = fresh_sql_store
    await migrate.upgrade(store.engine, "0014")
    async with store.engine.connect() as connection:
        before = await connection.run_sync(_occurrence_indexes)
    assert "ix_occurrences_vulnerability_id" in before
    await store.open()
    async with store.engine.connect() as connection:
        after = await connection.run_sync(_occurrence_indexes)
    postgres = store.engine.dialect.name == "postgresql"
    assert ("ix_occurrences_vulnerability_id" in after) is postgres
    assert ("ix_occurrences_vulnerability_aliases" in after) is postgres
    assert before - after == (set() if postgres else {"ix_occurrences_vulnerability_id"})
    await migrate.downgrade(store.engine, "0014")
    async with store.engine.connect() as connection:
        assert await connection.run_sync(_occurrence_indexes) == before


async def test_migration_0013_keeps_the_first_of_doubled_open_violations(
    fresh_sql_store: SqlStore,
) -> None:
    """Violations doubled before the unique index (two leaders at once) keep their first
    open one; the later ones are closed at their own open time, saying why."""
    from chainproof.store.sql.runtime import _violation_row
    from chainproof.store.sql.schema import violations
    from contract.runtime_samples import T0 as V0
    from contract.runtime_samples import violation

    store = fresh_sql_store
    await migrate.upgrade(store.engine, "0006")
    rows = [
        violation("b-late", "web-a", V0 + timedelta(seconds=5)),
        violation("z-first", "web-a", V0),
        violation("a-later", "web-a", V0 + timedelta(seconds=1)),
        violation("only", "web-b", V0),
        violation("closed", "web-a", V0, closed=V0 + timedelta(hours=1), close_reason="VEX"),
    ]
    async with store.engine.begin() as connection:
        await connection.execute(sa.insert(violations), [_violation_row(v) for v in rows])
    await store.open()
    assert await migrate.current_revision(store.engine) == HEAD
    async with store.session() as s:
        found = await s.violations.open_for_pods(
            [("prod", "shop", "web-a"), ("prod", "shop", "web-b")]
        )
        assert {k[2]: v.violation_id for k, v in found.items()} == {
            "web-a": "z-first",
            "web-b": "only",
        }
        every = {
            v.violation_id: v
            for v in await s.violations.list_rows(ViolationQuery("p", open_only=False), 10)
        }
    for superseded in ("a-later", "b-late"):
        assert every[superseded].closed == every[superseded].opened
        assert "superseded" in every[superseded].close_reason
    assert every["closed"].close_reason == "VEX"
    await migrate.downgrade(store.engine, "0006")  # and back: the index is plain again
    assert await migrate.current_revision(store.engine) == "0006"


async def test_dashboard_migration_fills_the_totals_and_comes_off_again(
    fresh_sql_store: SqlStore,
) -> None:
    """Migration 0014 on a store with summaries: the totals it fills equal the summaries'
    sums per scope, writes keep them, and on PostgreSQL the trigram index is there; its
    downgrade removes both."""
    from chainproof.store.sql.schema import image_summaries

    store = fresh_sql_store
    await migrate.upgrade(store.engine, "0013")
    never = datetime(1, 1, 1, tzinfo=UTC)
    rows = [
        {"scope": scope, "resource": f"r{i}", "occurrences": 1 + i, "open_unspecified": 0,
         "open_minimal": 0, "open_low": i, "open_medium": 0, "open_high": 1, "open_critical": 0,
         "worst_open": 4, "last_scan": never}
        for scope, i in (("*", 0), ("*", 1), ("*", 2), ("p", 1), ("q", 2))
    ]  # fmt: skip
    async with store.engine.begin() as connection:
        await connection.execute(image_summaries.insert(), rows)
    await store.open()  # migrates to head
    assert await migrate.current_revision(store.engine) == HEAD
    async with store.session(readonly=True) as s:
        assert (await s.image_summaries.totals(None)).open_counts == (0, 0, 3, 0, 3, 0)
        assert (await s.image_summaries.totals(None)).images == 3
        assert (await s.image_summaries.totals(("q",))).images == 1
    async with store.session() as s:
        await s.occurrences.insert(
            [occurrence_record("p", "o1", resource="registry.example/new@sha256:aa")]
        )
    async with store.session(readonly=True) as s:
        assert (await s.image_summaries.totals(None)).images == 4
        assert (await s.image_summaries.totals(("p",))).images == 2
    postgres = store.engine.dialect.name == "postgresql"
    trigram = sa.text(
        "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_image_summaries_resource_trgm'"
    )
    if postgres:
        async with store.engine.connect() as connection:
            assert (await connection.execute(trigram)).first() is not None
    await migrate.downgrade(store.engine, "0013")
    async with store.engine.connect() as connection:
        assert "summary_totals" not in await connection.run_sync(_tables)
        if postgres:
            assert (await connection.execute(trigram)).first() is None


# the judge's tables -----------------------------------------------------------------------


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """An empty, migrated SQL store on each dialect."""
    from contract.conftest import empty_postgres_store

    if request.param == "sqlite":
        store = SqlStore.from_url(f"sqlite:///{tmp_path}/judge.db")
        await store.open()
    else:
        store = await empty_postgres_store(request.getfixturevalue("pg_database_url"))
    try:
        yield store
    finally:
        await store.close()


def _is_utc(moment: datetime) -> bool:
    return moment.tzinfo is UTC


async def test_times_come_back_as_aware_utc(sql_store: SqlStore) -> None:
    east = T0.astimezone(PLUS_2)
    west = (T0 + timedelta(hours=1)).astimezone(MINUS_5)
    async with sql_store.session() as s:
        await s.documents.put(document_record("p", "attestors", "a", created=east, updated=west))
        await s.decisions.insert([decision_record("p", "d", time=west)])
    async with sql_store.session() as s:
        doc = await s.documents.get("p", "attestors", "a")
        [decision] = await s.decisions.page(DecisionQuery("p"), None, 10)
    assert doc is not None
    assert _is_utc(doc.create_time)
    assert _is_utc(doc.update_time)
    assert _is_utc(decision.time)
    assert doc.create_time == T0
    assert decision.time == T0 + timedelta(hours=1)
    assert doc.create_time.microsecond == T0.microsecond


async def test_sqlite_stores_instants_as_fixed_width_utc_text(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path}/text.db")
    await store.open()
    try:
        async with store.session() as s:
            # 23:30 at -05:00 is 04:30 the next day in UTC; 01:00 at +02:00 is 23:00 before.
            west = datetime(2024, 3, 10, 23, 30, tzinfo=MINUS_5)
            east = datetime(2024, 3, 11, 1, 0, 0, 5, tzinfo=PLUS_2)
            await s.decisions.insert([decision_record("p", "west", time=west)])
            await s.decisions.insert([decision_record("p", "east", time=east)])
        async with store.engine.connect() as connection:
            rows = await connection.execute(
                sa.text("SELECT decision_id, typeof(time), time FROM decisions ORDER BY time")
            )
            stored = [tuple(row) for row in rows]
        assert stored == [
            ("east", "text", "2024-03-10 23:00:00.000005"),
            ("west", "text", "2024-03-11 04:30:00.000000"),
        ]
    finally:
        await store.close()


async def test_naive_datetimes_are_refused(sql_store: SqlStore) -> None:
    naive = datetime(2024, 3, 10, 12, 0)
    with pytest.raises(sa.exc.StatementError) as caught:
        async with sql_store.session() as s:
            await s.decisions.insert([decision_record("p", "d", time=naive)])
    assert isinstance(caught.value.orig, ValueError)
    assert "naive datetime" in str(caught.value)
    with pytest.raises(sa.exc.StatementError):
        async with sql_store.session() as s:
            await s.decisions.page(DecisionQuery("p", since=naive), None, 10)
    async with sql_store.session() as s:
        assert await s.decisions.page(DecisionQuery("p"), None, 10) == []


async def test_a_decision_id_is_inserted_once(sql_store: SqlStore) -> None:
    # The primary key is the decision ID alone, across projects; a second insert of the same
    # ID is a bug in the caller and fails instead of replacing the first record.
    first = decision_record("p", "d", images=(image("app"),))
    async with sql_store.session() as s:
        await s.decisions.insert([first])
    with pytest.raises(sa.exc.IntegrityError):
        async with sql_store.session() as s:
            await s.decisions.insert([decision_record("other", "d", outcome="DENY")])
    async with sql_store.session() as s:
        assert await s.decisions.page(DecisionQuery("p"), None, 10) == [first]
        assert await s.decisions.page(DecisionQuery("other"), None, 10) == []


async def test_deleting_a_decision_deletes_its_image_rows(sql_store: SqlStore) -> None:
    async with sql_store.session() as s:
        await s.decisions.insert([decision_record("p", "d1", images=(image("a"), image("b")))])
        await s.decisions.insert([decision_record("p", "d2", images=(image("a"), image("a")))])
    count = sa.text("SELECT decision_id, count(*) FROM decision_images GROUP BY decision_id")
    async with sql_store.engine.connect() as connection:
        # One row per distinct image of a decision.
        assert sorted(tuple(r) for r in await connection.execute(count)) == [
            ("d1", 2),
            ("d2", 1),
        ]
    # Nothing in the port deletes decisions yet; retention will, and must not leave rows.
    async with sql_store.engine.begin() as connection:
        await connection.execute(
            sa.text("DELETE FROM decisions WHERE decision_id = :id"), {"id": "d1"}
        )
    async with sql_store.engine.connect() as connection:
        assert [tuple(r) for r in await connection.execute(count)] == [("d2", 1)]


# PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(fresh_pg_url: str) -> None:
    stores = [SqlStore.from_url(fresh_pg_url) for _ in range(5)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert await migrate.current_revision(stores[0].engine) == HEAD
    finally:
        for s in stores:
            await s.close()


@pytest.mark.postgres
async def test_concurrent_insert_of_the_same_note_reports_it_taken(pg_database_url: str) -> None:
    from contract.conftest import empty_postgres_store

    store = await empty_postgres_store(pg_database_url)
    try:
        first_has_written = asyncio.Event()
        release_first = asyncio.Event()

        async def first() -> list[str]:
            async with store.session() as s:
                taken = await s.notes.insert([note_record("p", "race")])
                first_has_written.set()
                await release_first.wait()
                return taken

        async def second() -> list[str]:
            await first_has_written.wait()
            async with store.session() as s:
                # The check cannot see the uncommitted row; the insert waits for it, fails on
                # the primary key, and the savepoint turns that into "taken".
                taken = await s.notes.insert([note_record("p", "other"), note_record("p", "race")])
                # The session is still usable afterwards.
                assert await s.notes.get("p", "race") is not None
                return taken

        winner = asyncio.create_task(first())
        loser = asyncio.create_task(second())
        await first_has_written.wait()
        await asyncio.sleep(0.3)  # let the second session reach its blocked insert
        release_first.set()
        assert await winner == []
        assert await loser == ["race"]
        async with store.session() as s:
            assert await s.notes.get("p", "other") is None
    finally:
        await store.close()


@pytest.mark.postgres
async def test_unreachable_postgres_is_unavailable_and_hides_the_password() -> None:
    port = pg.free_port()
    store = create_store(f"postgresql://chainproof:s3cr3t-pw@127.0.0.1:{port}/cp")
    try:
        for attempt in (store.open(), store.ping()):
            with pytest.raises(Unavailable) as caught:
                await attempt
            assert f"127.0.0.1:{port}" in str(caught.value)
            assert "s3cr3t-pw" not in str(caught.value)
        with pytest.raises(Unavailable):
            async with store.session():
                pass
    finally:
        await store.close()


@pytest.mark.postgres
async def test_ping(pg_database_url: str) -> None:
    store = create_store(pg_database_url)
    try:
        await store.ping()
    finally:
        await store.close()


@pytest.mark.postgres
def test_throwaway_server_starts_serves_and_cleans_up() -> None:
    """The fallback of tests/pg.py, forced even though a server answers on 5432."""
    server = pg.find_or_start_server(force_throwaway=True)
    assert server.throwaway
    assert server.data_dir is not None
    root = server.data_dir.parent
    try:
        name = pg.create_database(server)

        async def use() -> None:
            store = create_store(server.url(name))
            await store.open()
            try:
                async with store.session() as s:
                    assert await s.projects.add("p")
                await store.ping()
            finally:
                await store.close()

        asyncio.run(use())
        pg.drop_database(server, name)
    finally:
        server.stop()
    assert not root.exists()
    assert not pg.answers(server.host, server.port)
