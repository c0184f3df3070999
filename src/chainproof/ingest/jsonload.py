"""Reading untrusted JSON documents: bounded size and depth, errors that say where.

A document larger than :data:`MAX_DOCUMENT_BYTES` or nested deeper than :data:`MAX_DEPTH` is
refused rather than parsed, so one upload cannot exhaust the server. Parse errors name the line
and column, so the 400 tells the uploader exactly where their file is broken.
"""

from __future__ import annotations

import itertools
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
    check_depth(fmt, raw)
    return data


def check_depth(fmt: str, raw: bytes) -> None:
    """DocumentError when ``raw``, a document that parsed as JSON, nests deeper than
    :data:`MAX_DEPTH`."""
    if _text_too_deep(raw):
        raise DocumentError(fmt, "", f"nested deeper than {MAX_DEPTH} levels")


_OPEN = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _OPEN)


def _text_too_deep(raw: bytes) -> bool:
    """:func:`_too_deep` on the text rather than the parsed values (ADR 0086): outside the
    strings of a valid document, brackets are exactly its containers, so the deepest nesting
    is the highest running count of open brackets. The scan runs in C (replace, split,
    translate, accumulate) instead of visiting every value in Python, a tenth of an ingest."""
    # Escapes pair backslashes from the left, as replace() scans: with every escaped
    # backslash and then every escaped quote gone, each remaining quote opens or closes a
    # string, and the even pieces between quotes are what lies outside strings.
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH + 1:
        return False  # too few containers to nest too deeply
    # The top-level container is depth 0: MAX_DEPTH + 1 open at once is still allowed.
    return max(itertools.accumulate(map(_OPEN.__getitem__, brackets))) > MAX_DEPTH + 1


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
