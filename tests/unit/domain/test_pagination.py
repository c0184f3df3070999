"""Page tokens: opaque, bound to their list, unforgeable, never expiring."""

import base64

import pytest

from chainproof.domain.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ListScope,
    PageTokenCodec,
    page_size,
)
from chainproof.errors import InvalidArgument

SCOPE = ListScope("occurrences", "projects/p", "kind='BUILD'")


def test_round_trip_and_opacity() -> None:
    codec = PageTokenCodec(b"k" * 32)
    token = codec.encode(SCOPE, "occ-42")
    assert "occ-42" not in token and "occ-42" not in base64.urlsafe_b64decode(token + "==").decode(
        "latin-1"
    )
    assert codec.decode(SCOPE, token) == "occ-42"


@pytest.mark.parametrize(
    "other",
    [
        ListScope("notes", "projects/p", "kind='BUILD'"),
        ListScope("occurrences", "projects/q", "kind='BUILD'"),
        ListScope("occurrences", "projects/p", ""),
    ],
)
def test_token_is_refused_by_another_list(other: ListScope) -> None:
    codec = PageTokenCodec(b"k" * 32)
    with pytest.raises(InvalidArgument, match="not valid for this list"):
        codec.decode(other, codec.encode(SCOPE, "x"))


def test_forged_tampered_or_foreign_tokens_are_refused() -> None:
    codec = PageTokenCodec(b"k" * 32)
    token = codec.encode(SCOPE, "x")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "garbage", "", "!!!", PageTokenCodec(b"z" * 32).encode(SCOPE, "x")):
        with pytest.raises(InvalidArgument):
            codec.decode(SCOPE, bad)


def test_page_size_rules() -> None:
    assert page_size(None) == DEFAULT_PAGE_SIZE == page_size(0)
    assert page_size(5000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument, match="negative"):
        page_size(-1)
