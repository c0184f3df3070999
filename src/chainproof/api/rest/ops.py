"""Operations endpoints and request metrics: /healthz, /readyz, /metrics.

``/healthz`` says the process serves; ``/readyz`` also checks the store answers, so a
replica whose database is unreachable is taken out of rotation. Metrics use one registry per
application, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainproof.api.rest.auth import collection, public, requires
from chainproof.api.rest.deps import AllServices, MetricsRegistry
from chainproof.iam import permissions as p

log = structlog.get_logger("chainproof.http")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chainproof_http_requests",
            "HTTP requests served, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chainproof_http_request_seconds",
            "Time to serve an HTTP request, by route.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: unbounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if status >= 500:
                log.warning("request failed", method=method, route=template, status=status)


router = APIRouter(tags=["operations"])


@router.get("/healthz", dependencies=[public("liveness probe: says only that the process runs")])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", dependencies=[public("readiness probe: says only whether the store answers")]
)
async def readyz(services: AllServices) -> Response:
    try:
        await services.store.ping()
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("not ready", error=str(exc))
        return Response(
            '{"status":"unavailable","reason":"the store does not answer"}',
            status_code=503,
            media_type="application/json",
        )
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", dependencies=[requires(p.METRICS_GET, on=collection)])
async def metrics(registry: MetricsRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
