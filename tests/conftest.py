"""Fixtures shared by the whole test suite.

OCI registry: Debian's docker-registry, once per session (tests/oci_registry.py).
PostgreSQL: one server and one freshly created database per test session (see tests/pg.py for
how the server is found or started). Tests that need a clean PostgreSQL store build it on
``pg_database_url`` and empty it themselves (tests/contract does so with TRUNCATE).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import oci_registry as oci_registry_support  # tests/oci_registry.py
import pg  # tests/pg.py (pyproject puts tests/ on the pytest pythonpath)


@pytest.fixture(scope="session", autouse=True)
def webhook_secret_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One key file sealing webhook secrets for the whole session, servers started as
    subprocesses included (they inherit the environment): the default, ``data/`` under the
    working directory, would tie tests to where pytest runs from."""
    path = tmp_path_factory.mktemp("secrets") / "webhook-secret.key"
    name = "CHAINPROOF_NOTIFICATIONS__SECRET_KEY_FILE"
    before = os.environ.get(name)
    os.environ[name] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PgServer]:
    """The PostgreSQL server of this test session; stopped at the end if we started it."""
    server = pg.find_or_start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_database_url(pg_server: pg.PgServer) -> Iterator[str]:
    """A user-facing URL of a database made for this test session, dropped at its end."""
    name = pg.create_database(pg_server)
    try:
        yield pg_server.url(name)
    finally:
        pg.drop_database(pg_server, name)


@pytest.fixture(scope="module")
def fresh_pg_url(pg_server: pg.PgServer) -> Iterator[str]:
    """A database of its own for one test module (integration tests through a server)."""
    name = pg.create_database(pg_server)
    try:
        yield pg_server.url(name)
    finally:
        pg.drop_database(pg_server, name)


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database URL for each backend: integration tests run on all three."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/chainproof.db"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


@pytest.fixture(scope="session")
def oci_registry() -> Iterator[oci_registry_support.OciRegistry]:
    """Debian's docker-registry on a free loopback port (tools installed when missing)."""
    problem = oci_registry_support.ensure_tools()
    if problem is not None:
        pytest.skip(problem)
    registry = oci_registry_support.start_registry()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def oci_registry_auth() -> Iterator[oci_registry_support.OciRegistry]:
    """Another docker-registry, asking for basic authentication (user alice)."""
    problem = oci_registry_support.ensure_tools()
    if problem is not None:
        pytest.skip(problem)
    registry = oci_registry_support.start_registry(credentials=("alice", "s3cret-pw"))
    try:
        yield registry
    finally:
        registry.stop()
