"""The depth check on a document's text (ADR 0086) agrees with the walk over its parsed
values, whatever the strings hold (brackets, quotes, escapes) and however it is spaced."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.ingest.jsonload import MAX_DEPTH, _text_too_deep, _too_deep, check_depth
from chainproof.ingest.model import DocumentError

_TRICKY = st.text(alphabet='[]{}"\\\n\t/ab\u00e9\U0001f512', max_size=12)
_LEAVES = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TRICKY
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=30,
)


def nested(depth: int, leaf: Any = "]]}}") -> Any:
    value: Any = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k[": value}
    return value


@st.composite
def documents(draw: st.DrawFn) -> Any:
    # Around the limit, in both kinds of container, with tricky strings beside.
    depth = draw(st.integers(MAX_DEPTH - 2, MAX_DEPTH + 3))
    return [draw(_VALUES), nested(depth, draw(_VALUES)), draw(_VALUES)]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_VALUES, documents()), st.booleans())
def test_text_scan_agrees_with_the_walk(data: Any, indent: bool) -> None:
    raw = json.dumps(data, indent=2).encode() if indent else orjson.dumps(data)
    assert _text_too_deep(raw) == _too_deep(orjson.loads(raw))


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2])
def test_the_limit_is_where_it_was(depth: int) -> None:
    raw = orjson.dumps(nested(depth))
    deep = _too_deep(orjson.loads(raw))
    assert _text_too_deep(raw) == deep
    if deep:
        with pytest.raises(DocumentError, match="nested deeper"):
            check_depth("doc", raw)
    else:
        check_depth("doc", raw)


def test_brackets_inside_strings_do_not_count() -> None:
    raw = orjson.dumps({"a": "[" * 500 + '\\"{' * 300})
    assert not _text_too_deep(raw)
