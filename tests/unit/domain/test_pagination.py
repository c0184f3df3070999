"""Page tokens: opaque, bound to their list, unforgeable, never expiring."""

import base64

import pytest

from chainproof.domain.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_BYTES,
    MAX_PAGE_SIZE,
    ListScope,
    PageTokenCodec,
    bounded_count,
    page_size,
    proto_size,
)
from chainproof.errors import InvalidArgument, PayloadTooLarge

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


# ---------------------------------------------------------------- pages bounded by bytes


def test_a_page_stops_before_the_item_that_would_overflow_the_budget() -> None:
    sizes = [40, 40, 30, 10]
    assert bounded_count(sizes, 10, lambda n: n, str, budget=100) == 2
    assert bounded_count(sizes, 10, lambda n: n, str, budget=110) == 3
    assert bounded_count(sizes, 10, lambda n: n, str, budget=120) == 4
    # The count bound still applies, and a page never returns more items than it was given.
    assert bounded_count(sizes, 1, lambda n: n, str, budget=1000) == 1
    assert bounded_count([], 10, lambda n: n, str) == 0


def test_a_first_item_larger_than_the_page_is_an_error_naming_it() -> None:
    with pytest.raises(PayloadTooLarge, match=r"item-7 is 200 bytes encoded, more than one list"):
        bounded_count([200, 1], 10, lambda n: n, lambda n: "item-7", budget=100)


def test_proto_size_counts_tag_length_and_body() -> None:
    from google.protobuf import wrappers_pb2

    small = wrappers_pb2.BytesValue(value=b"x" * 10)  # body 12 bytes: 1 + 1 + 12
    large = wrappers_pb2.BytesValue(value=b"x" * 300)  # body 303 bytes: 1 + 2 + 303
    assert proto_size(small) == 14
    assert proto_size(large) == 306
    assert MAX_PAGE_BYTES < 4 * 1024 * 1024
