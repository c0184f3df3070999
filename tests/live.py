"""A real chainproof server on loopback, in a background thread, for tests that need a socket
(the official grafeas client, gRPC, webhook over HTTPS).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from chainproof.api.rest.tls_identity import TlsIdentityProtocol
from chainproof.bootstrap import build_app
from chainproof.config import Settings, load_settings
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


@contextmanager
def live_server(
    store: MetadataStore | None = None,
    *,
    ssl: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """Serve REST (and gRPC unless ``grpc_enabled=False``) until the block ends."""
    overrides.setdefault("port", free_port())
    overrides.setdefault("grpc_port", free_port())
    overrides.setdefault("database_url", "memory://")
    settings = load_settings(**overrides)
    app = build_app(settings, store)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=TlsIdentityProtocol if ssl and ssl.get("ssl_ca_certs") else "auto",
        **(ssl or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("chainproof test server did not start")
        time.sleep(0.02)
    scheme = "https" if ssl else "http"
    try:
        yield LiveServer(
            settings,
            f"{scheme}://127.0.0.1:{settings.port}",
            f"127.0.0.1:{settings.grpc_port}",
        )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
