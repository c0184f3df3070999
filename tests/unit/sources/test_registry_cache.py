"""RegistryCache: digest entries never expire, tags do, misses are bounded, flights shared."""

from __future__ import annotations

import asyncio

import pytest

from chainproof.sources.registry.cache import RegistryCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counter:
    def __init__(self, value):
        self.calls = 0
        self.value = value

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(0)
        return self.value


async def test_digest_entries_outlive_any_ttl_and_tags_expire():
    clock = Clock()
    cache = RegistryCache(tag_ttl=30, clock=clock)
    by_digest, by_tag = Counter("m"), Counter("sha256:x")
    await cache.get_or_fetch("manifest", "r", ("a", "sha256:1"), by_digest, immutable=True)
    await cache.get_or_fetch("tag", "r", ("a", "v1"), by_tag, immutable=False)
    clock.now = 10_000
    await cache.get_or_fetch("manifest", "r", ("a", "sha256:1"), by_digest, immutable=True)
    await cache.get_or_fetch("tag", "r", ("a", "v1"), by_tag, immutable=False)
    assert (by_digest.calls, by_tag.calls) == (1, 2)


async def test_absence_is_remembered_briefly():
    clock = Clock()
    cache = RegistryCache(negative_ttl=5, clock=clock)
    missing = Counter(None)
    assert await cache.get_or_fetch("manifest", "r", ("a", "t"), missing, immutable=False) is None
    assert await cache.get_or_fetch("manifest", "r", ("a", "t"), missing, immutable=False) is None
    assert missing.calls == 1
    clock.now = 6
    await cache.get_or_fetch("manifest", "r", ("a", "t"), missing, immutable=False)
    assert missing.calls == 2


async def test_negative_cache_is_bounded_and_does_not_evict_positive_entries():
    cache = RegistryCache(max_entries=10, max_negative=3)
    present = Counter("x")
    await cache.get_or_fetch("blob", "r", ("keep",), present, immutable=True)
    for i in range(50):
        await cache.get_or_fetch("tag", "r", (f"miss{i}",), Counter(None), immutable=False)
    assert len(cache._negative.entries) == 3
    await cache.get_or_fetch("blob", "r", ("keep",), present, immutable=True)
    assert present.calls == 1


async def test_concurrent_misses_share_one_fetch():
    cache = RegistryCache()
    fetch = Counter("v")
    results = await asyncio.gather(
        *(cache.get_or_fetch("manifest", "r", ("k",), fetch, immutable=True) for _ in range(20))
    )
    assert results == ["v"] * 20
    assert fetch.calls == 1


async def test_a_failure_reaches_every_waiter_and_is_not_cached():
    cache = RegistryCache()
    calls = 0

    async def failing():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("registry down")

    outcomes = await asyncio.gather(
        *(cache.get_or_fetch("manifest", "r", ("k",), failing, immutable=True) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert calls == 1
    with pytest.raises(RuntimeError):
        await cache.get_or_fetch("manifest", "r", ("k",), failing, immutable=True)
    assert calls == 2


async def test_lookups_are_reported():
    seen = []
    cache = RegistryCache(on_lookup=lambda r, k, hit: seen.append((r, k, hit)))
    await cache.get_or_fetch("blob", "reg", ("d",), Counter(b"x"), immutable=True)
    await cache.get_or_fetch("blob", "reg", ("d",), Counter(b"x"), immutable=True)
    assert seen == [("reg", "blob", False), ("reg", "blob", True)]
