"""PostgreSQL for the test suite: find a server, or start a throwaway one, and make databases.

Owns the test-side life cycle of PostgreSQL: ``find_or_start_server`` first tries the server
this kind of machine runs on 127.0.0.1:5432 (user ``postgres``, trust auth); when nothing
answers there it runs ``initdb`` and ``pg_ctl`` from /usr/lib/postgresql/*/bin in a temporary
directory on a free port. Those binaries refuse to run as root, so as root they run through
``runuser -u postgres --`` in a directory owned by that user. ``create_database`` and
``drop_database`` give each test session a database of its own. Fixtures live in
tests/conftest.py; this module has no pytest in it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
SUPERUSER = "postgres"


@dataclass
class PgServer:
    """A PostgreSQL server the tests may use; ``stop`` ends it if the tests started it."""

    host: str
    port: int
    user: str = SUPERUSER
    #: Set when the tests started this server themselves (a throwaway cluster).
    data_dir: Path | None = None
    _run_as: list[str] = field(default_factory=list)

    @property
    def throwaway(self) -> bool:
        return self.data_dir is not None

    def url(self, database: str) -> str:
        """A user-facing URL, as a chainproof operator would write it."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def stop(self) -> None:
        if self.data_dir is None:
            return
        pg_ctl = _binary("pg_ctl")
        subprocess.run(
            [*self._run_as, pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        self.data_dir = None


def answers(host: str, port: int, user: str = SUPERUSER) -> bool:
    """Whether a PostgreSQL server accepts ``user`` without a password at host:port."""
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _binary(name: str) -> str:
    # The newest installed major version wins.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        found = shutil.which(name)
        if found is None:
            raise RuntimeError(
                f"no PostgreSQL server answers and {name} was not found in "
                "/usr/lib/postgresql/*/bin: install the postgresql package"
            )
        return found
    return candidates[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((DEFAULT_HOST, 0))
        port: int = s.getsockname()[1]
        return port


def start_throwaway_server() -> PgServer:
    """initdb + pg_ctl start in a temporary directory on a free port; trust auth, no TCP
    listener but 127.0.0.1. The caller must call ``stop()``, which also deletes the files."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="chainproof-pg-"))
    data_dir = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root; the cluster belongs to "postgres".
        shutil.chown(root, user=SUPERUSER)
        run_as = ["runuser", "-u", SUPERUSER, "--"]
    port = free_port()
    server = PgServer(DEFAULT_HOST, port, SUPERUSER, data_dir, run_as)
    try:
        subprocess.run(
            [
                *run_as,
                initdb,
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-h {DEFAULT_HOST} -p {port} -k {root} -F -c fsync=off"
        subprocess.run(
            [
                *run_as,
                pg_ctl,
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 30
        while not answers(DEFAULT_HOST, port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"throwaway PostgreSQL on port {port} did not answer")
            time.sleep(0.1)
    except BaseException:
        server.stop()
        raise
    return server


def find_or_start_server(*, force_throwaway: bool = False) -> PgServer:
    if not force_throwaway and answers(DEFAULT_HOST, DEFAULT_PORT):
        return PgServer(DEFAULT_HOST, DEFAULT_PORT)
    return start_throwaway_server()


def create_database(server: PgServer, prefix: str = "chainproof_test") -> str:
    """A new, uniquely named, empty database; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with server.admin_connection() as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    return name


def drop_database(server: PgServer, name: str) -> None:
    with contextlib.suppress(psycopg.Error), server.admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
