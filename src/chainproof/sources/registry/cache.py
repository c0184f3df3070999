"""Registry answers kept in process: by digest forever, by tag briefly, misses boundedly.

This module owns :class:`RegistryCache`:

* content addressed by digest (manifests, blobs, verified reads of them) never changes, so
  those entries have no TTL — only an LRU bound;
* what a tag or a referrers list points at does change, so those entries live ``tag_ttl``;
* "not there" (no ``.sig`` tag, no referrers) is remembered ``negative_ttl``, in its own
  bounded LRU, so that a flood of unsigned images cannot evict the positive entries;
* concurrent misses for one key share one request (single flight); a failure is not cached
  and reaches every waiter.

Time comes from an injected monotonic clock, so tests control expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

__all__ = ["MISSING", "RegistryCache"]

T = TypeVar("T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What a lookup returns for a remembered absence.
MISSING: Any = _Missing()


class _Lru:
    def __init__(self, max_entries: int) -> None:
        self.entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.max = max_entries

    def get(self, key: Hashable, now: float) -> tuple[bool, Any]:
        item = self.entries.get(key)
        if item is None:
            return False, None
        expires, value = item
        if expires <= now:
            del self.entries[key]
            return False, None
        self.entries.move_to_end(key)
        return True, value

    def put(self, key: Hashable, value: Any, expires: float) -> None:
        self.entries[key] = (expires, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max:
            self.entries.popitem(last=False)


class RegistryCache:
    """See the module docstring; ``on_lookup(kind, hit)`` feeds metrics."""

    def __init__(
        self,
        *,
        max_entries: int = 20_000,
        max_negative: int = 10_000,
        tag_ttl: float = 30.0,
        negative_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[str, str, bool], None] | None = None,
    ) -> None:
        self._immutable = _Lru(max_entries)
        self._mutable = _Lru(max_entries)
        self._negative = _Lru(max_negative)
        self.tag_ttl = tag_ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._on_lookup = on_lookup

    def _lookup(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        now = self._clock()
        found, _ = self._negative.get(key, now)
        if found:
            return True, MISSING
        if key[0] == "digest":
            return self._immutable.get(key, now)
        return self._mutable.get(key, now)

    def _store(self, key: tuple[Any, ...], value: Any) -> None:
        now = self._clock()
        if value is None:
            self._negative.put(key, MISSING, now + self.negative_ttl)
        elif key[0] == "digest":
            self._immutable.put(key, value, float("inf"))
        else:
            self._mutable.put(key, value, now + self.tag_ttl)

    async def get_or_fetch(
        self,
        kind: str,
        registry: str,
        key: tuple[Any, ...],
        fetch: Callable[[], Awaitable[T | None]],
        *,
        immutable: bool,
    ) -> T | None:
        """The cached answer, or ``fetch()``'s (None = absent, remembered briefly)."""
        full = ("digest" if immutable else "tag", kind, registry, *key)
        found, value = self._lookup(full)
        if self._on_lookup is not None:
            self._on_lookup(registry, kind, found)
        if found:
            return None if value is MISSING else value
        pending = self._inflight.get(full)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[full] = future
        try:
            result = await fetch()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a future no one awaited does not warn
            raise
        else:
            self._store(full, result)
            future.set_result(result)
            return result
        finally:
            del self._inflight[full]

    def clear(self) -> None:
        self._immutable.entries.clear()
        self._mutable.entries.clear()
        self._negative.entries.clear()
