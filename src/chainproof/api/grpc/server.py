"""The ``grpc.aio`` server, run beside the REST app by :func:`chainproof.bootstrap.serve`.

Owns: binding ``settings.host:settings.grpc_port`` (plain, TLS, or mutual TLS when a client CA
is configured), the message size limits (``settings.max_body_bytes``, the same budget as a
REST body), the generic handlers of both Grafeas services, the standard health service and
server reflection. It does not own RPC semantics (:mod:`.handlers` and the services do), nor
when it starts and stops (the caller does).

The port is bound exclusively unless the caller says otherwise: ``reuse_port=True`` is for
the worker processes of one ``chainproof serve --workers N``, which share it (see
docs/adr/0141-workers-share-ports.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from chainproof.api.grpc.auth import AuthInterceptor
from chainproof.api.grpc.descriptors import (
    GRAFEAS_METHODS,
    GRAFEAS_SERVICE,
    PROJECTS_SERVICE,
    Method,
    schema,
)
from chainproof.api.grpc.handlers import GrafeasRpcs, ProjectsRpcs, unary_handler
from chainproof.api.grpc.metrics import GrpcMetricsInterceptor
from chainproof.config import Settings, TLSSettings
from chainproof.errors import InvalidArgument, Unavailable
from chainproof.services.access.control import AccessControl
from chainproof.services.scribe.grafeas import GrafeasService

log = structlog.get_logger("chainproof.api.grpc")

HEALTH_SERVICE = "grpc.health.v1.Health"


def _generic_handler(service_name: str, methods: Sequence[Method], impl: object) -> Any:
    handlers = {
        m.name: grpc.unary_unary_rpc_method_handler(
            # Requests arrive as bytes and are decoded inside the handler (see unary_handler).
            unary_handler(m.name, getattr(impl, m.name), m.request),
            response_serializer=m.response.SerializeToString,
        )
        for m in methods
    }
    return grpc.method_handlers_generic_handler(service_name, handlers)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(
            f"cannot read {setting} {path}: {exc.strerror}; fix the path or unset it"
        ) from exc


def server_credentials(tls: TLSSettings) -> Any | None:
    """Credentials for ``tls``, or None to serve plaintext. Mutual TLS when a client CA is set."""
    if tls.cert_file is None and tls.key_file is None:
        if tls.client_ca_file is not None:
            raise InvalidArgument(
                "tls.client_ca_file needs tls.cert_file and tls.key_file: mutual TLS is TLS "
                "with client certificates"
            )
        return None
    if tls.cert_file is None or tls.key_file is None:
        raise InvalidArgument("tls.cert_file and tls.key_file must be set together")
    key = _read(tls.key_file, "tls.key_file")
    cert = _read(tls.cert_file, "tls.cert_file")
    client_ca = _read(tls.client_ca_file, "tls.client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


class GrafeasGrpcServer(grpc.aio.Server):  # type: ignore[misc]  # grpc ships no type hints
    """The aio server, plus a health flip to NOT_SERVING before it stops.

    Delegates everything to the real server; its owner only calls ``stop``.
    """

    def __init__(self, inner: Any, health_servicer: Any, port: int) -> None:
        self._inner = inner
        self._health = health_servicer
        #: The port actually bound (useful when grpc_port is 0).
        self.port = port

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._inner.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._inner.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return int(self._inner.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: Any) -> int:
        return int(self._inner.add_secure_port(address, server_credentials))

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self, grace: float | None) -> None:
        # Load balancers and probes learn first, so they drain traffic during the grace period.
        await self._health.enter_graceful_shutdown()
        await self._inner.stop(grace)

    # The signature is grpc's own, timeout included.
    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        return bool(await self._inner.wait_for_termination(timeout))


async def start_grpc_server(
    grafeas: GrafeasService,
    access: AccessControl,
    *,
    settings: Settings,
    collectors: CollectorRegistry,
    reuse_port: bool = False,
) -> GrafeasGrpcServer:
    """Build, bind and start the gRPC server for ``grafeas``, authenticating and authorizing
    every call through ``access`` and counting it in ``collectors``; the caller stops it."""
    credentials = server_credentials(settings.tls)
    options = [
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        ("grpc.max_send_message_length", settings.max_body_bytes),
        # gRPC sets SO_REUSEPORT by default on Linux, so a second server on a taken port would
        # start "fine" and share traffic; a port conflict must be an error instead. Only the
        # workers of one server share it, on purpose (their supervisor checked it was free).
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    inner = grpc.aio.server(
        options=options,
        interceptors=[GrpcMetricsInterceptor(collectors), AuthInterceptor(access)],
    )

    inner.add_generic_rpc_handlers(
        (
            _generic_handler(GRAFEAS_SERVICE, GRAFEAS_METHODS, GrafeasRpcs(grafeas)),
            _generic_handler(PROJECTS_SERVICE, schema().projects_methods, ProjectsRpcs(grafeas)),
        )
    )

    health_servicer = health.aio.HealthServicer()
    for name in ("", GRAFEAS_SERVICE, PROJECTS_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, inner)

    reflection.enable_server_reflection(
        (GRAFEAS_SERVICE, PROJECTS_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME),
        inner,
        pool=schema().pool,
    )

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{settings.grpc_port}"
    try:
        if credentials is None:
            port = inner.add_insecure_port(address)
        else:
            port = inner.add_secure_port(address, credentials)
    except RuntimeError as exc:
        port = 0
        reason = str(exc)
    else:
        reason = "the port is taken or the address is not local"
    if not port:
        raise Unavailable(
            f"cannot listen for gRPC on {address}: {reason}; choose another grpc_port "
            "(CHAINPROOF_GRPC_PORT) or turn gRPC off (CHAINPROOF_GRPC_ENABLED=false)"
        )
    await inner.start()
    log.info(
        "grpc server started",
        address=f"{host}:{port}",
        tls="mutual" if settings.tls.client_ca_file else ("on" if credentials else "off"),
    )
    return GrafeasGrpcServer(inner, health_servicer, port)
