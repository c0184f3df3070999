"""Reading JSON text that comes from outside: one decoder with one set of bounds.

Two entry points, for two kinds of input:

* :func:`parse_request_json` reads request bodies (Grafeas messages, judge documents,
  AdmissionReviews). It takes orjson's fast path and falls back to the standard library only
  to tolerate raw control characters inside strings (an armored signature pasted into a
  heredoc, as in the Grafeas walkthrough).
* :func:`parse_signed_json` reads JSON that a signature vouches for (simple-signing payloads,
  in-toto statements, DSSE envelopes). It is stricter: a key given twice is refused, because
  two readers of the same signed bytes could otherwise see different claims (one takes the
  first value, another the last).

Both refuse, with an InvalidArgument that says what was wrong and what is expected, rather
than crash or pass on something no later step can handle:

* text that is not UTF-8, or not JSON;
* ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, though Python's parser takes them);
* lone UTF-16 surrogates (``"\\ud800"``), which no store, encoder or protobuf string accepts;
* nesting deeper than :data:`MAX_JSON_DEPTH` (arrays and objects), so that no recursive
  consumer further on can run out of stack;
* integers of more than :data:`MAX_INTEGER_DIGITS` digits.

Pure: bytes in, Python values out; no I/O.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from chainproof.errors import InvalidArgument

#: Deepest nesting of arrays and objects accepted anywhere. Grafeas messages nest about 8
#: levels, policy documents about 6, Kubernetes objects (with managedFields) about 20.
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted (Python refuses more than 4300 digits with a ValueError).
MAX_INTEGER_DIGITS = 400


def _refuse_constant(name: str) -> Any:
    raise InvalidArgument(f"{name} is not a JSON value: expected a number, string, or null")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise InvalidArgument(
            f"an integer of {len(text)} digits is too long: at most {MAX_INTEGER_DIGITS} digits"
        )
    return int(text)


def _bounded_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidArgument(
            f"the number {text[:40]} is beyond the range of a double: expected a finite number"
        )
    return value


def _unique_pairs(what: str) -> Any:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InvalidArgument(
                    f"{what} gives the key {key[:80]!r} twice: every key of a JSON object "
                    "must be unique in signed data, so that every reader sees the same claim"
                )
            out[key] = value
        return out

    return build


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is depth 0); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


def check_json_bounds(value: Any, what: str) -> Any:
    """``value`` if it is within the bounds above (depth, surrogates); else InvalidArgument."""
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgument(
            f"{what} nests arrays and objects {depth} deep: at most {MAX_JSON_DEPTH} levels "
            "are accepted"
        )
    try:
        orjson.dumps(value)  # refuses lone surrogates anywhere, in keys or in values
    except orjson.JSONEncodeError as exc:
        raise InvalidArgument(
            f"{what} contains text that is not valid Unicode ({exc}): a lone UTF-16 "
            "surrogate such as \\ud800 has no meaning on its own; send the whole pair"
        ) from None
    return value


def _stdlib_loads(raw: bytes, what: str, *, strict: bool, unique_keys: bool) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{what} is not UTF-8 (byte {exc.start}): expected JSON") from None
    try:
        return json.loads(
            text,
            strict=strict,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            object_pairs_hook=_unique_pairs(what) if unique_keys else None,
        )
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidArgument(
            f"{what} nests arrays and objects too deeply: at most {MAX_JSON_DEPTH} levels "
            "are accepted"
        ) from None
    except ValueError as exc:  # e.g. a float literal Python cannot represent
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None


def parse_request_json(raw: bytes, what: str = "request body") -> Any:
    """Decode a request body (see the module docstring for what is refused)."""
    if not raw.strip():
        raise InvalidArgument(f"{what} is empty: expected a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Raw control characters inside strings are tolerated; everything else that orjson
        # refused (lone surrogates, NaN, deep nesting) is refused below too, with a reason.
        value = _stdlib_loads(raw, what, strict=False, unique_keys=False)
    return check_json_bounds(value, what)


def parse_signed_json(raw: bytes | str, what: str) -> Any:
    """Decode JSON that a signature covers: strict, and every key of an object unique."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    value = _stdlib_loads(data, what, strict=True, unique_keys=True)
    return check_json_bounds(value, what)
