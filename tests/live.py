"""A real chainproof server on loopback, in a background thread, for tests that need a socket
(the official grafeas client, gRPC, webhook over HTTPS).

It runs :func:`chainproof.bootstrap.serve`, the same composition as ``chainproof serve``: REST,
gRPC (unless ``grpc_enabled=False``) and the background workers as siblings, one shutdown.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from chainproof.bootstrap import serve
from chainproof.config import Settings, TLSSettings, load_settings
from chainproof.store.port import MetadataStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    settings: Settings
    base_url: str
    grpc_target: str


def _rest_tls(ssl: dict[str, Any] | None) -> TLSSettings:
    """REST's TLS from the uvicorn options a test passes (``ssl=…``): REST is plain unless it
    does, whatever ``tls=`` says for gRPC."""
    if not ssl:
        return TLSSettings()
    return TLSSettings(
        cert_file=ssl["ssl_certfile"],
        key_file=ssl["ssl_keyfile"],
        client_ca_file=ssl.get("ssl_ca_certs"),
    )


@dataclass
class _Started:
    settings: Settings
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    failure: BaseException | None = None


def _port_taken(exc: BaseException) -> bool:
    """Whether a start failed because a listening port was taken meanwhile."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "the port is taken" in text or "Failed to bind" in text or "in use" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _start(
    store: MetadataStore | None, ssl: dict[str, Any] | None, overrides: dict[str, Any]
) -> _Started:
    """Start one server in a thread; return once it serves or has failed."""
    settings = load_settings(**overrides)
    started = threading.Event()
    result = _Started(settings, threading.Thread(daemon=True))

    async def run() -> None:
        result.loop = asyncio.get_running_loop()
        result.stop = asyncio.Event()
        await serve(
            settings,
            store=store,
            stop=result.stop,
            on_started=started.set,
            rest_tls=_rest_tls(ssl),
        )

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # reported to the caller
            result.failure = exc
        finally:
            started.set()

    result.thread = threading.Thread(target=thread_main, daemon=True)
    result.thread.start()
    if not started.wait(timeout=30):
        result.failure = RuntimeError("the server did not start within 30 s")
    elif result.failure is not None:
        result.thread.join(timeout=5)
    return result


@contextmanager
def live_server(
    store: MetadataStore | None = None,
    *,
    ssl: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """Serve REST (and gRPC unless ``grpc_enabled=False``) until the block ends."""
    # The server runs in this process without the logging set-up of `chainproof serve`:
    # its background workers' lines would go to whatever sys.stdout is at that moment,
    # which is a CLI runner's captured output while a test invokes the CLI. Send them to the
    # process's own stderr instead (capfd still sees them).
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    # A port from free_port() is free when asked for, not when bound: another test process
    # may take it in between. When the test did not choose its ports, a start that failed
    # for a taken port is tried again on fresh ones; any other failure is reported at once.
    chosen = "port" in overrides or "grpc_port" in overrides
    for _attempt in range(1 if chosen else 5):
        attempt_overrides = dict(overrides)
        attempt_overrides.setdefault("port", free_port())
        attempt_overrides.setdefault("grpc_port", free_port())
        attempt_overrides.setdefault("database_url", "memory://")
        attempt_overrides.setdefault("log_level", "warning")
        started_server = _start(store, ssl, attempt_overrides)
        if started_server.failure is None or not _port_taken(started_server.failure):
            break
    if started_server.failure is not None or not started_server.thread.is_alive():
        started_server.thread.join(timeout=5)
        raise RuntimeError("chainproof test server did not start") from started_server.failure
    settings, loop, stop = started_server.settings, started_server.loop, started_server.stop
    scheme = "https" if ssl else "http"
    try:
        yield LiveServer(
            settings,
            f"{scheme}://127.0.0.1:{settings.port}",
            f"127.0.0.1:{settings.grpc_port}",
        )
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        started_server.thread.join(timeout=30)
