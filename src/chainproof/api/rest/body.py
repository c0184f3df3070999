"""Reading request bodies: size limit, JSON decoding, and query parameters, with clear errors.

Bodies are read here rather than by FastAPI's models because the schema is protobuf's
(see domain.messages), and because every failure must name what was wrong.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainproof.api.rest.errors import error_body
from chainproof.domain.jsontext import parse_request_json
from chainproof.errors import InvalidArgument, PayloadTooLarge


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, before they are buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send, declared)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self._message(seen))
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return (
            f"request body is over the limit of {self.max_bytes} bytes "
            f"({size} bytes or more): split it, e.g. into smaller batches"
        )

    async def _refuse(self, send: Send, size: int) -> None:
        body = orjson.dumps(error_body(413, "RESOURCE_EXHAUSTED", self._message(size), ()))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def decode_json(raw: bytes) -> Any:
    """Decode a JSON body; InvalidArgument saying what is wrong (see domain.jsontext)."""
    return parse_request_json(raw, "request body")


def int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, got {value!r}") from None
