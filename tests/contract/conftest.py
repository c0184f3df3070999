"""The ``store`` fixture: every contract test runs once per adapter, each on an empty store.

* memory: a fresh MemoryStore;
* sqlite: a new file in the test's tmp_path, migrated from empty by ``open()``;
* postgres: the session's database (tests/conftest.py), migrated once and emptied with
  TRUNCATE before each test, which is much faster than a database per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from chainproof.store.sql import SqlStore

ADAPTERS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def empty_postgres_store(url: str) -> SqlStore:
    store = create_store(url)
    assert isinstance(store, SqlStore)
    await store.open()
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "TRUNCATE projects, notes, occurrences, meta, documents, decisions, decision_images, "
                "iam_policies, api_tokens, audit_log, inventory, inventory_checkpoints, outbox, "
                "subscriptions, deliveries, violations, image_facts, impact_terms, image_summaries, "
                "image_attestations, image_decisions, summary_totals"
            )
        )
    return store


@pytest.fixture(params=ADAPTERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    adapter: str = request.param
    if adapter == "memory":
        store = create_store("memory://")
        await store.open()
    elif adapter == "sqlite":
        store = create_store(f"sqlite:///{tmp_path}/chainproof.db")
        await store.open()
    else:
        store = await empty_postgres_store(request.getfixturevalue("pg_database_url"))
    try:
        yield store
    finally:
        await store.close()
