"""A real kube-apiserver (with etcd) on loopback for a test session.

Builds the binary with the copied scripts in ``fixtures/kube-apiserver/`` when
``/tmp/k8s/bin/kube-apiserver`` is missing (the build is cached outside the repository), then
starts it on a free secure port (16443 when free) and gives its URL, CA, an admin token and
its ServiceAccount issuer. ``fail`` says in one line why when it truly cannot be had.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SCRIPTS = Path(__file__).parent / "fixtures" / "kube-apiserver"
BINARY = Path(os.environ.get("KUBE_APISERVER", "/tmp/k8s/bin/kube-apiserver"))


@dataclass(frozen=True)
class KubeApiServer:
    url: str
    token: str
    ca_file: Path
    issuer: str
    #: etcd's client URL (start.sh puts etcd on the API server's port + 7000).
    etcd: str = ""

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    # start.sh also takes PORT+7000 and PORT+7001 for etcd.
    for port in [16443, *range(16444, 16600)]:
        if all(_free(p) for p in (port, port + 7000, port + 7001)):
            return port
    pytest.fail("no free port for kube-apiserver between 16443 and 16600")


def _lost_a_port(work: Path) -> bool:
    logs = [work / "apiserver.log", work / "etcd.log"]
    return any(
        "address already in use" in log.read_text(errors="replace") for log in logs if log.exists()
    )


def ensure_binary() -> Path:
    if BINARY.exists():
        return BINARY
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    # Test runs on one machine (a session's suite beside CI's) take turns to build: the
    # second waits for the first and then finds the binary, instead of building into the
    # same work directory at the same time.
    with open(BINARY.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if BINARY.exists():
            return BINARY
        _build()
    return BINARY


def _build() -> None:
    if shutil.which("etcd") is None or shutil.which("go") is None:
        subprocess.run(["bash", str(SCRIPTS / "setup-machine.sh")], check=True)
    work = Path("/tmp/k8s/recipe")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "build.sh")],
        env={**os.environ, "W": str(work)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not (work / "bin" / "kube-apiserver").exists():
        pytest.fail(
            "kube-apiserver cannot be built here: "
            + (result.stderr.strip().splitlines() or ["no output"])[-1]
        )
    install(work / "bin" / "kube-apiserver", BINARY)


def install(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target`` in one rename: a process running the old
    ``target`` keeps its file (writing into it would fail with "Text file busy"), and no
    reader ever finds a half-copied binary."""
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.copy2(source, partial)
    os.replace(partial, target)


@contextmanager
def running_kube_apiserver(
    scratch: Path, extra_args: tuple[str, ...] = ()
) -> Iterator[KubeApiServer]:
    """``extra_args`` go to kube-apiserver after start.sh's own (through a wrapper script,
    since start.sh takes none), e.g. ``("--watch-cache=false",)``."""
    binary = ensure_binary()
    if extra_args:
        wrapper = scratch / "kube-apiserver-wrapper"
        wrapper.write_text(
            f'#!/bin/sh\nexec {shlex.quote(str(binary))} "$@" {shlex.join(extra_args)}\n'
        )
        wrapper.chmod(0o755)
        binary = wrapper
    # The ports are free when picked, but other test runs on this machine may take them
    # before etcd or the API server binds: such a start is tried again on other ports.
    for attempt in range(3):
        port = _pick_port()
        work = scratch / f"attempt{attempt}"
        out = subprocess.run(
            ["bash", str(SCRIPTS / "start.sh"), str(work), str(port)],
            env={**os.environ, "KUBE_APISERVER": str(binary)},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if out.returncode == 0 or not _lost_a_port(work):
            break
    if out.returncode != 0:
        pytest.fail(f"kube-apiserver did not start: {out.stderr.strip()[-300:]}")
    values = dict(pair.split("=", 1) for pair in shlex.split(out.stdout.strip()))
    pids = [int(p) for p in values["KUBE_PIDS"].split()]
    try:
        yield KubeApiServer(
            url=values["KUBE"],
            token=values["KUBE_TOKEN"],
            ca_file=Path(values["KUBE_CA"]),
            issuer=values["KUBE_SA_ISSUER"],
            etcd=f"http://127.0.0.1:{port + 7000}",
        )
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in pids:
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
