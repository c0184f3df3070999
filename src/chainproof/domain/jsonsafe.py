"""Making any value storable as JSON on every backend, saying what had to change.

Owns the one lossy conversion the system allows itself: for an audit record that must be kept
even when part of it cannot be stored as it is (the decision log). Text keeps its content,
with what JSON or PostgreSQL cannot hold written out as escapes (a lone surrogate ``\\ud800``
becomes the six characters ``\\ud800``, NUL the six characters ``\\u0000``); numbers too large
for a 64-bit integer become their decimal text; anything else becomes its ``repr``. Every
change is reported by its path, so the stored record says it was altered and where.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Deeper than any record the system writes; past it the rest is kept as text.
_MAX_DEPTH = 64
#: Paths reported, at most (the rest are counted).
_MAX_PATHS = 20
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class _Changes:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.count = 0

    def add(self, path: str, why: str) -> None:
        self.count += 1
        if len(self.paths) < _MAX_PATHS:
            self.paths.append(f"{path}: {why}")


def safe_text(value: str) -> tuple[str, bool]:
    """``value`` with lone surrogates and NUL written as escapes; whether anything changed."""
    if "\x00" not in value:
        try:
            value.encode("utf-8")
            return value, False
        except UnicodeEncodeError:
            pass
    escaped = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\u0000"), True


def storable(value: Any) -> tuple[Any, list[str]]:
    """A JSON-storable copy of ``value`` and the changes made (empty when none were)."""
    changes = _Changes()
    clean = _clean(value, "$", 0, changes)
    if changes.count > len(changes.paths):
        changes.paths.append(f"... and {changes.count - len(changes.paths)} more")
    return clean, changes.paths


def _clean(value: Any, path: str, depth: int, changes: _Changes) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text, changed = safe_text(value)
        if changed:
            changes.add(path, "text escaped")
        return text
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return int(value)
        changes.add(path, "integer kept as text")
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changes.add(path, "non-finite number kept as text")
        return repr(value)
    if depth >= _MAX_DEPTH:
        changes.add(path, "nested too deep, kept as text")
        return _as_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else repr(key)
            name, changed = safe_text(name)
            if changed or not isinstance(key, str):
                changes.add(f"{path}.{name}", "key made text")
            out[name] = _clean(item, f"{path}.{name}", depth + 1, changes)
        return out
    if isinstance(value, list | tuple):
        return [_clean(v, f"{path}[{i}]", depth + 1, changes) for i, v in enumerate(value)]
    changes.add(path, f"{type(value).__name__} kept as text")
    return _as_text(value)


def _as_text(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that fails is still a value we were handed
        text = f"<unprintable {type(value).__name__}>"
    return safe_text(text[:1000])[0]
