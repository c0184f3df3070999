"""``chainproof serve --workers N``: N server processes sharing the REST and gRPC ports.

Owns the processes, not what they serve. The supervisor (the process the user started)
binds the REST socket and reserves the gRPC port (:mod:`chainproof.listeners`), migrates the
database once, then starts N workers. Each worker is a fresh interpreter
(``python -m chainproof.supervisor``) that inherits the REST socket, reads the resolved
settings from its environment, and runs the whole server, :func:`chainproof.bootstrap.serve`:
REST on the inherited socket, gRPC on the shared port (``SO_REUSEPORT``), its own background
workers. The kernel spreads connections over the workers on both ports.

Lifecycle:

* start-up succeeds when every worker says it listens (a byte on a pipe); a worker that
  exits before that fails the start-up: the others are stopped and its exit code returned;
* a worker that dies later is replaced (after a pause); one that keeps dying (5 times in a
  minute) stops the whole server, exit code 1;
* SIGTERM or SIGINT: every worker gets SIGTERM and shuts down in order (see ``serve``); one
  that has not exited after the grace period is killed. The supervisor exits 0;
* workers die with the supervisor: they ask the kernel for SIGTERM when it exits, however
  it exits (``PR_SET_PDEATHSIG`` on Linux), and check at start that it is still there. They run
  in their own session, so a terminal's Ctrl-C reaches only the supervisor, which then stops
  them once, gracefully.

Why processes rather than threads, and why each worker serves both protocols: see
docs/adr/0141-workers-share-ports.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from chainproof.config import Settings
from chainproof.errors import ChainproofError, InvalidArgument, Unavailable
from chainproof.listeners import bind_rest_socket, close_quietly, port_of, reserve_shared_port

log = structlog.get_logger("chainproof.supervisor")

#: After SIGTERM, how long a worker may take to finish in-flight work before it is killed.
#: Above the server's own grace (bootstrap.SHUTDOWN_GRACE_SECONDS) so it is a last resort.
STOP_TIMEOUT_SECONDS = 20.0
#: How long a worker may take to start listening (imports, migrations check, keys).
START_TIMEOUT_SECONDS = 120.0
#: Restarts allowed within RESTART_WINDOW_SECONDS before the server gives up.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
RESTART_PAUSE_SECONDS = 1.0

_PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Task[bytes]
    exited: asyncio.Task[int] = field(init=False)

    def __post_init__(self) -> None:
        self.exited = asyncio.ensure_future(self.process.wait())


class Supervisor:
    """Runs ``workers`` copies of the server on shared sockets until told to stop."""

    def __init__(self, settings: Settings, workers: int) -> None:
        if workers < 2:
            raise InvalidArgument("a supervisor runs 2 or more workers; 1 is `serve` itself")
        if settings.database_url.strip().startswith("memory:"):
            raise InvalidArgument(
                "--workers needs a database the workers share: memory:// is one process's "
                "memory (each worker would see different data); use SQLite or PostgreSQL"
            )
        self._settings = settings
        self._count = workers
        self._rest: socket.socket | None = None
        self._grpc_holder: socket.socket | None = None
        self._workers: list[_Worker] = []
        self._restarts: list[float] = []
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ sockets

    def bind(self) -> Settings:
        """Bind REST, reserve gRPC; the settings the workers get (with the ports bound)."""
        s = self._settings
        self._rest = bind_rest_socket(s.host, s.port)
        updates: dict[str, object] = {"port": port_of(self._rest)}
        if s.grpc_enabled:
            try:
                self._grpc_holder = reserve_shared_port(s.host, s.grpc_port)
            except BaseException:
                close_quietly(self._rest)
                raise
            updates["grpc_port"] = port_of(self._grpc_holder)
        self._settings = s.model_copy(update=updates)
        return self._settings

    def close(self) -> None:
        close_quietly(self._rest)
        close_quietly(self._grpc_holder)

    # ------------------------------------------------------------------ processes

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINPROOF_")}
        # The settings as resolved here (file, environment, options) are the workers' only
        # source: a config file read again would outrank the options given on the command line.
        env.update(self._settings.to_environment())
        return env

    async def _start(self, index: int) -> _Worker:
        assert self._rest is not None
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chainproof.supervisor",
                "--rest-fd",
                str(self._rest.fileno()),
                "--ready-fd",
                str(write_end),
                "--parent",
                str(os.getpid()),
                env=self._environment(),
                pass_fds=(self._rest.fileno(), write_end),
                start_new_session=True,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        reader = asyncio.StreamReader()
        pipe = os.fdopen(read_end, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        worker = _Worker(index, process, asyncio.ensure_future(reader.read(1)))
        log.info("worker started", worker=index, pid=process.pid)
        return worker

    async def _wait_ready(self, worker: _Worker) -> None:
        done, _ = await asyncio.wait(
            (worker.ready, worker.exited),
            timeout=START_TIMEOUT_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if worker.ready in done and worker.ready.result():
            log.info("worker ready", worker=worker.index, pid=worker.process.pid)
            return
        if worker.ready in done or worker.exited in done:
            # The pipe closed without the byte: the worker is exiting; its code says why.
            code = await worker.exited
            raise _WorkerFailed(
                code or 1, f"worker {worker.index} exited with code {code} while starting"
            )
        raise _WorkerFailed(1, f"worker {worker.index} did not start within the time allowed")

    async def _stop_all(self) -> None:
        for w in self._workers:
            if w.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.process.send_signal(signal.SIGTERM)
        pending = [w.exited for w in self._workers if not w.exited.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_TIMEOUT_SECONDS)
            for w in self._workers:
                if w.exited in late:
                    log.warning("worker did not stop in time; killing it", pid=w.process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        w.process.kill()
            if late:
                await asyncio.wait(late)
        for w in self._workers:
            w.ready.cancel()

    async def _replace(self, worker: _Worker) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_SECONDS]
        self._restarts.append(now)
        if len(self._restarts) > MAX_RESTARTS:
            raise _WorkerFailed(
                1, f"workers died {len(self._restarts)} times within a minute; giving up"
            )
        log.warning(
            "worker exited; starting another",
            worker=worker.index,
            pid=worker.process.pid,
            code=worker.exited.result(),
        )
        await asyncio.sleep(RESTART_PAUSE_SECONDS)
        if self._stop.is_set():
            return
        replacement = await self._start(worker.index)
        self._workers[worker.index] = replacement
        await self._wait_ready(replacement)

    async def run(self) -> int:
        """Start the workers, keep them running, stop them; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            try:
                for i in range(self._count):
                    self._workers.append(await self._start(i))
                for w in list(self._workers):
                    await self._wait_for_either(self._wait_ready(w))
                if not self._stop.is_set():
                    log.info(
                        "serving",
                        workers=self._count,
                        pids=[w.process.pid for w in self._workers],
                        rest=f"{self._settings.host}:{self._settings.port}",
                        grpc=f"{self._settings.host}:{self._settings.grpc_port}"
                        if self._settings.grpc_enabled
                        else "off",
                    )
                while not self._stop.is_set():
                    stopping = asyncio.ensure_future(self._stop.wait())
                    exits = {w.exited: w for w in self._workers}
                    done, _ = await asyncio.wait(
                        (stopping, *exits), return_when=asyncio.FIRST_COMPLETED
                    )
                    stopping.cancel()
                    for task in done:
                        if task in exits and not self._stop.is_set():
                            await self._wait_for_either(self._replace(exits[task]))
            except _WorkerFailed as exc:
                log.error("stopping the server", reason=exc.reason)
                return exc.code
            finally:
                log.info("stopping workers", pids=[w.process.pid for w in self._workers])
                await self._stop_all()
            return 0
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _wait_for_either(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` unless a stop request comes first (then it is abandoned)."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            task.result()
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _WorkerFailed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def serve_with_workers(settings: Settings, workers: int) -> int:
    """``chainproof serve --workers N``: the supervisor's whole life; its exit code."""
    from chainproof.bootstrap import event_loop_factory, prepare_store

    supervisor = Supervisor(settings, workers)
    resolved = supervisor.bind()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            # Once, before the workers: they then find the schema at head and the shared
            # page-token secret in place, and a bad database URL fails here, clearly.
            runner.run(prepare_store(resolved))
            return runner.run(supervisor.run())
    finally:
        supervisor.close()


# ---------------------------------------------------------------------------- the worker


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before the request above took effect
        raise SystemExit(1)


def _worker(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chainproof.supervisor",
        description="One worker of `chainproof serve --workers N` (started by the supervisor).",
    )
    parser.add_argument("--rest-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with(args.parent)

    from chainproof.bootstrap import configure_logging, event_loop_factory, serve
    from chainproof.config import load_settings

    try:
        settings = load_settings()
    except ChainproofError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    rest = socket.socket(fileno=args.rest_fd)

    def started() -> None:
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(settings, rest_socket=rest, grpc_reuse_port=True, on_started=started))
    except ChainproofError as exc:
        log.error("worker stopped", error=str(exc))
        return 3 if isinstance(exc, Unavailable) else 2
    finally:
        rest.close()
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
