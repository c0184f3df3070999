"""``chainproof serve --workers 2`` as an operator runs it: a real process tree.

With default settings (SQLite under ./data, gRPC on) and on PostgreSQL, both workers start,
REST and gRPC (the official grafeas client) answer, a worker that dies is replaced, and SIGTERM
stops everything; a killed supervisor takes its workers with it. Nothing here measures time:
the deadlines only stop a broken server from hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import grafeas as g
from grafeas.grafeas_v1.types import package

from live import free_port

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")
DEADLINE = 120.0


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    rest: str
    grpc_target: str
    log: Path

    def ready_pids(self) -> set[int]:
        """Workers the supervisor has logged as serving (its JSON log lines)."""
        pids = set()
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "worker ready":
                    pids.add(int(event["pid"]))
        return pids

    def workers(self) -> list[int]:
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _eventually(check: Callable[[], bool], what: str, server: Running) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}; server log:\n{server.log.read_text()[-4000:]}")
        time.sleep(0.2)


def _rest_answers(server: Running) -> bool:
    try:
        return httpx.get(f"{server.rest}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _grpc_roundtrip(server: Running, note_id: str) -> str:
    with grpc.insecure_channel(server.grpc_target) as channel:
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
        made = client.create_note(
            parent="projects/workers",
            note_id=note_id,
            note=g.Note(package=package.PackageNote(name="openssl")),
        )
        return str(client.get_note(name=made.name).package.name)


@contextmanager
def serve_workers(tmp_path: Path, **env: str) -> Iterator[Running]:
    port, grpc_port = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAINPROOF_")}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                CHAINPROOF,
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
            ],
            cwd=tmp_path,  # default settings: sqlite:///./data/chainproof.db
            env={**clean, "CHAINPROOF_LOG_LEVEL": "info", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Running(process, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for pid in server.workers():
            os.kill(pid, signal.SIGKILL)


def _serves_and_stops(tmp_path: Path, **env: str) -> None:
    with serve_workers(tmp_path, **env) as server:
        _eventually(lambda: len(server.workers()) == 2, "two workers did not start", server)
        _eventually(lambda: _rest_answers(server), "REST did not answer", server)
        # Fresh channels land on either worker: every one of them must serve gRPC.
        for i in range(6):
            assert _grpc_roundtrip(server, f"n{i}") == "openssl"
        listed = httpx.get(f"{server.rest}/v1/projects/workers/notes", timeout=5).json()
        assert len(listed["notes"]) == 6  # one database behind both workers

        # A worker that dies is replaced; the server keeps answering meanwhile.
        first, second = server.workers()
        os.kill(first, signal.SIGKILL)
        _eventually(
            lambda: first not in server.workers() and len(server.workers()) == 2,
            "the dead worker was not replaced",
            server,
        )
        [replacement] = set(server.workers()) - {second}
        _eventually(
            lambda: replacement in server.ready_pids(),
            "the replacement did not start serving",
            server,
        )
        assert _rest_answers(server)
        assert _grpc_roundtrip(server, "after-restart") == "openssl"

        workers = server.workers()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DEADLINE) == 0
        assert not any(_alive(pid) for pid in workers), "a worker outlived the supervisor"
        with socket.socket() as probe:  # both ports are free again
            probe.bind(("127.0.0.1", int(server.grpc_target.rsplit(":", 1)[1])))
        log = server.log.read_text()
        assert "Traceback" not in log
        assert log.count('"Finished server process') == 2  # both stopped in order


def test_two_workers_with_default_settings_serve_rest_and_grpc(tmp_path: Path) -> None:
    _serves_and_stops(tmp_path)
    assert (tmp_path / "data" / "chainproof.db").exists()


@pytest.mark.postgres
def test_two_workers_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    _serves_and_stops(tmp_path, CHAINPROOF_DATABASE_URL=fresh_pg_url)


def test_a_killed_supervisor_takes_its_workers_with_it(tmp_path: Path) -> None:
    with serve_workers(tmp_path) as server:
        _eventually(lambda: _rest_answers(server), "REST did not answer", server)
        workers = server.workers()
        assert len(workers) == 2
        server.process.kill()
        server.process.wait(timeout=30)
        _eventually(
            lambda: not any(_alive(pid) for pid in workers),
            "workers were orphaned by a killed supervisor",
            server,
        )


def test_a_taken_grpc_port_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        # Taken the way gRPC servers take ports: with SO_REUSEPORT, which a careless
        # shared bind would silently join.
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAINPROOF_")}
        result = subprocess.run(
            [
                CHAINPROOF,
                "serve",
                "--workers",
                "2",
                "--port",
                str(free_port()),
                "--grpc-port",
                str(port),
            ],
            cwd=tmp_path,
            env=clean,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    assert result.returncode == 3
    assert f"cannot listen for gRPC on 127.0.0.1:{port}: the port is taken" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_memory_storage_is_refused_for_several_workers(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAINPROOF_")}
    result = subprocess.run(
        [CHAINPROOF, "serve", "--workers", "2", "--database-url", "memory://"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert "memory:// is one process's memory" in result.stderr
