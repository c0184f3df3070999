"""Fixtures shared by the integration tests: ``store``, one empty store of each adapter.

A test module that needs another kind of store (or one filled differently) defines its own
``store`` fixture, which takes precedence over this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from contract.conftest import empty_postgres_store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    """An empty store on memory, on a SQLite file and on PostgreSQL, in turn."""
    if request.param == "postgres":
        s: MetadataStore = await empty_postgres_store(request.getfixturevalue("pg_database_url"))
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"
        s = create_store(url)
        await s.open()
    try:
        yield s
    finally:
        await s.close()
