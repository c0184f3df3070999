"""REST error bodies: one translation from the error tree to HTTP, used by every route.

The body carries both shapes clients look for: the Grafeas/grpc-gateway one
(``code`` = gRPC code number, ``message``, ``details``) at the top, and the Google API one
(``error{code, message, status, details}``) that the official ``grafeas`` REST client reads.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from chainproof.errors import GRPC_CODE_NUMBERS, ChainproofError, Internal, Unauthenticated

log = structlog.get_logger("chainproof.api")

_STATUS_FOR_HTTP: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ALREADY_EXISTS",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(http_status: int, grpc_status: str, message: str, details: tuple[str, ...]) -> Any:
    detail_objs: list[dict[str, Any]] = []
    if details:
        detail_objs.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "", "description": d} for d in details],
            }
        )
    full = message if not details else message + ": " + "; ".join(details)
    return {
        "code": GRPC_CODE_NUMBERS.get(grpc_status, 2),
        "message": full,
        "details": detail_objs,
        "error": {
            "code": http_status,
            "message": full,
            "status": grpc_status,
            "details": detail_objs,
        },
    }


def error_response(exc: ChainproofError) -> JSONResponse:
    headers = None
    if isinstance(exc, Unauthenticated):
        # RFC 6750: how to authenticate. The reason stays in the body: a header value must
        # not carry text we do not control.
        headers = {"WWW-Authenticate": 'Bearer realm="chainproof"'}
    return JSONResponse(
        error_body(exc.http_status, exc.grpc_code, exc.message, exc.details),
        status_code=exc.http_status,
        headers=headers,
    )


async def handle_chainproof_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChainproofError)
    if isinstance(exc, Internal):
        log.error("internal error", path=request.url.path, error=exc.message)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = _STATUS_FOR_HTTP.get(exc.status_code, "UNKNOWN")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}: see /docs for the API"
    headers: dict[str, str] = {}
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"method {request.method} is not allowed on {request.url.path}: expected " + (
            " or ".join(allowed) or "none"
        )
    return JSONResponse(
        error_body(exc.status_code, status, message, ()),
        status_code=exc.status_code,
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (RFC 9110 §15.5.6: 405 carries Allow).

    Starlette names only the methods of the first route whose path matched, and one path
    often has a route per method, so each method is tried against every route.
    """
    methods: set[str] = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(r.matches(scope)[0] is Match.FULL for r in request.app.router.routes):
            methods.add(method)
    return sorted(methods)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = tuple(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
        for err in exc.errors()
    )
    return JSONResponse(
        error_body(400, "INVALID_ARGUMENT", "the request is malformed", details), status_code=400
    )


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug: log it with the traceback, tell the caller as little as is useful.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return JSONResponse(
        error_body(500, "INTERNAL", "internal error; the server log has the details", ()),
        status_code=500,
    )
