"""storable(): any value made JSON- and PostgreSQL-storable, every change named by its path."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.domain.jsonsafe import storable


def test_clean_values_are_kept_as_they_are() -> None:
    value = {"a": [1, 2.5, None, True, "text ✓"], "b": {"c": -(2**63)}}
    assert storable(value) == (value, [])


def test_what_cannot_be_stored_is_written_out_and_named() -> None:
    clean, changed = storable(
        {"m": "x\ud800y", "n": "a\x00b", "big": 2**70, "raw": b"\x01", 3: "k", "f": float("nan")}
    )
    assert clean == {
        "m": "x\\ud800y",
        "n": "a\\u0000b",
        "big": str(2**70),
        "raw": "b'\\x01'",
        "3": "k",
        "f": "nan",
    }
    assert changed == [
        "$.m: text escaped",
        "$.n: text escaped",
        "$.big: integer kept as text",
        "$.raw: bytes kept as text",
        "$.3: key made text",
        "$.f: non-finite number kept as text",
    ]


def test_depth_and_the_number_of_paths_are_bounded() -> None:
    deep: object = "end"
    for _ in range(100):
        deep = [deep]
    _, changed = storable(deep)
    assert changed == ["$" + "[0]" * 64 + ": nested too deep, kept as text"]
    _, many = storable({f"k{i}": b"" for i in range(30)})
    assert len(many) == 21 and many[-1] == "... and 10 more"


_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(codec=None))
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_anything)
def test_the_result_always_encodes_without_nul(value: object) -> None:
    clean, _ = storable(value)
    # It encodes (no exception), and read back it holds no NUL anywhere, keys included.
    assert "\x00" not in repr(orjson.loads(orjson.dumps(clean)))
