"""The admission webhooks answered straight from ASGI: the lean path of the hot routes.

Every AdmissionReview the API server sends goes through here, thousands a second on a busy
cluster, and most of a review's cost in the server was the web framework's generic work
(routing, dependency resolution, response classes, the exception middleware; ADR 0133). For
the exact ``POST`` of each webhook route this ASGI layer, placed inside the metrics and the
body-limit middleware and in front of FastAPI's router, does the route's work itself:

* the same authentication (:func:`chainproof.api.rest.auth.authenticate`) and the same
  permission check — the very declaration the FastAPI route carries, so the two cannot
  disagree about who may call it;
* the same handler (``answer_admission`` and its siblings), which reads the body through the
  body-limit middleware and decodes it with the same bounds;
* the same error bodies: a :class:`~chainproof.errors.ChainproofError` as
  :func:`~chainproof.api.rest.errors.error_response` renders it (401 with
  ``WWW-Authenticate``, 400, 413, 504…), anything else as a logged 500 saying little;
* the metrics under the route's template, as the metrics middleware labels any route.

Anything else (another method, a trailing slash, any other path) goes on to FastAPI, which
answers it as before; the FastAPI routes stay for the OpenAPI document and the route table
that checks every route declares a permission. The permission check runs as the same
dependency FastAPI would run, so a write (an admission review is one) is audited with the
outcome of the call, as on any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from chainproof.api.rest import auth, errors
from chainproof.api.rest.deps import services_of
from chainproof.errors import ChainproofError
from chainproof.services.wiring import Services

#: What a lean route does with a request: the JSON answer (errors are raised).
Answer = Callable[[Request, Services], Awaitable[Any]]

_JSON_HEADERS = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class LeanRoute:
    route: APIRoute  # the FastAPI route it stands in for: its template and its declaration
    guard: Callable[[Request], AbstractAsyncContextManager[None]]  # its permission check
    answer: Answer


def lean_routes(app: FastAPI, answers: Mapping[str, Answer]) -> dict[str, LeanRoute]:
    """The ``POST`` routes of ``app`` named in ``answers`` (path → answer), with the
    declaration each carries; ValueError if one is missing or public."""
    found = {path: route for path, methods, route in auth.route_table(app) if "POST" in methods}
    lean: dict[str, LeanRoute] = {}
    for path, answer in answers.items():
        route = found.get(path)
        if route is None:
            raise ValueError(f"no POST route {path} to take a lean path for")
        guard = auth.guard_of(route)
        if guard is None:
            raise ValueError(f"POST {path} must declare a permission to take the lean path")
        lean[path] = LeanRoute(route, guard, answer)
    return lean


class LeanWebhooks:
    """ASGI middleware answering the exact ``POST`` of each lean route itself."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, LeanRoute]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = (
            self.routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if lean is None:
            await self.app(scope, receive, send)
            return
        # What routing would have put in the scope: the metrics label and the permission
        # check read the route from there.
        scope["route"] = lean.route
        scope["path_params"] = {}
        request = Request(scope, receive)
        try:
            await auth.authenticate(request)
            async with lean.guard(request):
                body = orjson.dumps(await lean.answer(request, services_of(request)))
        except ChainproofError as exc:
            await errors.error_response(exc)(scope, receive, send)
            return
        except Exception as exc:  # a bug: logged, and answered as every route answers one
            await (await errors.handle_unexpected(request, exc))(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
