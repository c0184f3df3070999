"""Reading untrusted JSON documents: bounded size and depth, errors that say where.

A document larger than :data:`MAX_DOCUMENT_BYTES` or nested deeper than :data:`MAX_DEPTH` is
refused rather than parsed, so one upload cannot exhaust the server. Parse errors name the line
and column, so the 400 tells the uploader exactly where their file is broken.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from chainproof.ingest.model import DocumentError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64


def check_size(fmt: str, raw: bytes) -> None:
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            fmt, "", f"{len(raw)} bytes exceeds the limit of {MAX_DOCUMENT_BYTES} bytes"
        )


def load_json(fmt: str, raw: bytes) -> Any:
    """Parse ``raw`` as JSON; DocumentError naming line and column on failure."""
    check_size(fmt, raw)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson's message gives a byte offset only; the stdlib parser gives line and column.
        try:
            json.loads(raw.decode("utf-8", errors="replace"))
        except json.JSONDecodeError as exc:
            raise DocumentError(fmt, f"line {exc.lineno} column {exc.colno}", exc.msg) from None
        except RecursionError:
            raise DocumentError(fmt, "", f"nested deeper than {MAX_DEPTH} levels") from None
        raise DocumentError(fmt, "", "not valid UTF-8 JSON") from None
    check_depth(fmt, data)
    return data


def check_depth(fmt: str, data: Any) -> None:
    """DocumentError when ``data`` (parsed JSON) nests deeper than :data:`MAX_DEPTH`."""
    if _too_deep(data):
        raise DocumentError(fmt, "", f"nested deeper than {MAX_DEPTH} levels")


def _too_deep(data: Any) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def need_object(fmt: str, data: Any, where: str = "top level") -> dict[str, Any]:
    if not isinstance(data, dict):
        got = "null" if data is None else type(data).__name__
        raise DocumentError(fmt, where, f"expected a JSON object, got {got}")
    return data


def text(value: Any) -> str:
    """A string field, or "" for anything that is not a non-empty string."""
    return value.strip() if isinstance(value, str) else ""


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
