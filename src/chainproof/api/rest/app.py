"""The ASGI application: routes, error handlers and middleware around wired services.

The app builds nothing and opens nothing: it is handed the :class:`Services` (and the metrics
registry the server shares with gRPC) and serves them until its server stops. Opening and
closing them is the composition root's job (:func:`chainproof.bootstrap.serve`); handlers
reach them through :mod:`chainproof.api.rest.deps`, which alone keeps them on the app.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chainproof import __version__
from chainproof.api import mutate, webhook
from chainproof.api.fast_path import LeanWebhooks, lean_routes
from chainproof.api.rest import (
    access,
    auth,
    deps,
    errors,
    grafeas,
    impact,
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
from chainproof.services.wiring import Services


def create_app(services: Services, metrics: ops.Metrics, *, lean_webhooks: bool = True) -> FastAPI:
    """The REST app (Grafeas, the judge, webhooks, the UI, probes) serving ``services``.

    ``lean_webhooks``: answer the admission webhooks' POSTs from :mod:`chainproof.api.fast_path`
    (off only to compare the two paths in tests)."""
    app = FastAPI(
        title="chainproof",
        version=__version__,
        description=(
            "The scribe: a Grafeas v1 metadata API (notes and occurrences about artifacts). "
            "The judge: attestors, policies and admission decisions."
        ),
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
    app.include_router(impact.router)
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
    deps.provide(app, services, metrics)
    if lean_webhooks:  # innermost: the body limit and the metrics apply to it as to any route
        app.add_middleware(
            LeanWebhooks,
            routes=lean_routes(
                app,
                {
                    "/webhook/admission": webhook.answer_admission,
                    "/webhook/imagepolicy": webhook.answer_image_review,
                    "/webhook/mutate": mutate.answer_mutation,
                },
            ),
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(ops.MetricsMiddleware, metrics=metrics)
    return app
