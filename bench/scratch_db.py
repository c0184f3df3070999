"""A PostgreSQL database that lives as long as one benchmark run.

Benchmarks that fill a store make their own database on the local server (trust auth), and
drop it when they end, also when they fail; ``keep`` leaves it for a second look.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """Create ``<prefix>_<random>`` and yield its URL; drop it afterwards unless ``keep``."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
