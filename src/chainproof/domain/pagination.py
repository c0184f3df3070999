"""Page sizes and page tokens.

A page holds at most ``pageSize`` items and at most :data:`MAX_PAGE_BYTES` of them encoded
(:func:`bounded_count`): a page that would outgrow gRPC's 4 MiB message limit stops early and
carries a next page token, so a client pages on and nothing is skipped.

A page token is the position after the last item returned (keyset pagination), bound to the
list it came from (what is listed, the parent, the filter). It is encrypted and authenticated
with AES-GCM under a server secret, so it is opaque, cannot be forged or moved to another list,
and never expires: a list can always be finished. The secret comes from the caller; this module
does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chainproof.errors import InvalidArgument, PayloadTooLarge

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
#: The items of one list page, encoded, stay within this: under the 4 MiB a gRPC client
#: receives by default, with room for the response's envelope and its next page token.
MAX_PAGE_BYTES = 4 * 1024 * 1024 - 64 * 1024
_VERSION = b"\x01"
_NONCE_BYTES = 12


def page_size(requested: int | None) -> int:
    """Grafeas semantics: 0 or absent means the default; above the maximum is capped."""
    if requested is None or requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0:
        raise InvalidArgument(
            f"pageSize {requested} is negative: expected 0 (default {DEFAULT_PAGE_SIZE}) "
            f"up to {MAX_PAGE_SIZE}"
        )
    return min(requested, MAX_PAGE_SIZE)


T = TypeVar("T")


def bounded_count(
    items: Sequence[T],
    limit: int,
    size_of: Callable[[T], int],
    name_of: Callable[[T], str],
    *,
    budget: int = MAX_PAGE_BYTES,
) -> int:
    """How many of ``items`` (in order) fit a page: at most ``limit``, and ``size_of`` them
    together at most ``budget`` bytes. The page stops before the item that would overflow;
    the caller gives a next page token when fewer than ``len(items)`` fit.

    A first item larger than the whole budget can never be listed: PayloadTooLarge names it,
    rather than skipping it or answering with a message the client would refuse.
    """
    total = 0
    for count, item in enumerate(items[:limit]):
        size = size_of(item)
        if total + size > budget:
            if count == 0:
                raise PayloadTooLarge(
                    f"{name_of(item)} is {size:,} bytes encoded, more than one list page may "
                    f"carry ({budget:,} bytes), so the list cannot go past it: read it on its "
                    "own (get it by name), and list the others with a filter that leaves it out"
                )
            return count
        total += size
    return min(len(items), limit)


#: Bytes one item takes in a list response.
JsonSizer = Callable[[Any], int]


def json_size(item: Any) -> int:
    """Bytes ``item`` takes as one element of a JSON array (its comma included)."""
    return len(orjson.dumps(item)) + 1


def proto_size(message: Any) -> int:
    """Bytes ``message`` takes as one element of a repeated field: tag, length, body."""
    n: int = message.ByteSize()
    return 1 + _varint_len(n) + n


def _varint_len(n: int) -> int:
    length = 1
    while n >= 0x80:
        n >>= 7
        length += 1
    return length


@dataclass(frozen=True, slots=True)
class ListScope:
    """What a token is bound to: a token of one list is refused by every other list."""

    collection: str
    parent: str
    filter: str

    def digest(self) -> str:
        raw = "\x00".join((self.collection, self.parent, self.filter)).encode()
        return hashlib.sha256(raw).hexdigest()[:32]


class PageTokenCodec:
    """Turns (scope, last key) into an opaque token and back."""

    def __init__(self, secret: bytes, nonce: Callable[[int], bytes] = os.urandom) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        # Derive a dedicated key so the configured secret can serve other purposes later.
        self._aead = AESGCM(hashlib.sha256(b"chainproof page token v1\x00" + secret).digest())
        self._nonce = nonce

    def encode(self, scope: ListScope, after: str) -> str:
        body = json.dumps({"s": scope.digest(), "a": after}, separators=(",", ":")).encode()
        nonce = self._nonce(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, body, _VERSION)
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).rstrip(b"=").decode()

    def decode(self, scope: ListScope, token: str) -> str:
        """The key after which the next page starts; InvalidArgument for any bad token."""
        invalid = InvalidArgument(
            "pageToken is not valid for this list: pass back the nextPageToken of the previous "
            "response of the same call, with the same parent and filter, unchanged"
        )
        if len(token) > 4096:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        if len(raw) < 1 + _NONCE_BYTES + 16 or raw[:1] != _VERSION:
            raise invalid
        try:
            body = self._aead.decrypt(raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :], _VERSION)
            data = json.loads(body)
        except (InvalidTag, ValueError):
            raise invalid from None
        if not isinstance(data, dict) or data.get("s") != scope.digest():
            raise invalid
        after = data.get("a")
        if not isinstance(after, str):
            raise invalid
        return after
