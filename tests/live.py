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
    overrides.setdefault("port", free_port())
    overrides.setdefault("grpc_port", free_port())
    overrides.setdefault("database_url", "memory://")
    overrides.setdefault("log_level", "warning")
    settings = load_settings(**overrides)
    started = threading.Event()
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    failure: list[BaseException] = []

    async def run() -> None:
        nonlocal loop, stop
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        await serve(
            settings, store=store, stop=stop, on_started=started.set, rest_tls=_rest_tls(ssl)
        )

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    if not started.wait(timeout=30) or failure or not thread.is_alive():
        thread.join(timeout=5)
        raise RuntimeError("chainproof test server did not start") from (
            failure[0] if failure else None
        )
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
        thread.join(timeout=30)
