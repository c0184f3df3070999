"""The ASGI application: routes, error handlers and middleware around a built Container.

The app does not build anything itself; :mod:`chainproof.bootstrap` hands it a factory for the
container, called once at start-up (lifespan) and closed at shutdown.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chainproof import __version__
from chainproof.api import mutate, webhook
from chainproof.api.rest import (
    access,
    auth,
    errors,
    grafeas,
    ingest,
    judge,
    openapi,
    ops,
    scanning,
    subscriptions,
)
from chainproof.api.rest.body import BodyLimitMiddleware
from chainproof.api.ui import policy_rule as ui_policy_rule
from chainproof.api.ui import routes as ui
from chainproof.api.ui import signin as ui_signin
from chainproof.errors import ChainproofError

if TYPE_CHECKING:
    from chainproof.bootstrap import Container


def create_app(
    open_container: Callable[[], Awaitable[Container]], *, max_body_bytes: int
) -> FastAPI:
    metrics = ops.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await open_container()
        container.metrics = metrics
        container.decisions.metrics.register(metrics.registry)
        if container.registry is not None and container.registry.client.metrics is not None:
            container.registry.client.metrics.register(metrics.registry)
        app.state.container = container
        # Everything built so far (modules, settings, the wired services) lives as long as
        # the process: move it out of the collector's sight, and collect the young
        # generation less often, so that collection pauses stay out of request latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        try:
            # Servers that share the container (gRPC) live and die with the REST app.
            await container.start_companions()
            yield
        finally:
            await container.close()

    app = FastAPI(
        title="chainproof",
        version=__version__,
        description=(
            "The scribe: a Grafeas v1 metadata API (notes and occurrences about artifacts). "
            "The judge: attestors, policies and admission decisions."
        ),
        lifespan=lifespan,
        # Every route: who is calling, and refuse routes that declare no permission.
        dependencies=[Depends(auth.authenticate)],
    )
    app.add_exception_handler(ChainproofError, errors.handle_chainproof_error)
    app.add_exception_handler(StarletteHTTPException, errors.handle_http_exception)
    app.add_exception_handler(RequestValidationError, errors.handle_validation_error)
    app.add_exception_handler(Exception, errors.handle_unexpected)
    # Routes are matched in order: the webhook, on the admission hot path, comes first.
    app.include_router(webhook.router)
    app.include_router(mutate.router)
    app.include_router(ops.router)
    app.include_router(judge.router)
    app.include_router(scanning.router)
    app.include_router(access.router)
    app.include_router(ingest.router)
    app.include_router(subscriptions.router)
    app.include_router(grafeas.router)
    app.include_router(ui_signin.router)
    app.include_router(ui_policy_rule.router)
    app.include_router(ui.router)  # the web UI, last: its paths are outside /v1 and /webhook
    openapi.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(ops.MetricsMiddleware, metrics=metrics)
    return app
