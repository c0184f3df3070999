"""The subscription repository, on memory, SQLite and PostgreSQL: put (insert or replace),
get, list per project or all, and delete (with the subscription's deliveries)."""

from __future__ import annotations

from dataclasses import replace

from chainproof.store.port import MetadataStore
from contract.runtime_samples import delivery, subscription


async def test_subscriptions_put_get_list_delete(store: MetadataStore) -> None:
    a = subscription("p", "a")
    b = subscription("p", "b", kinds=(), types=(), sink={"nats": {"subject": "cp.events"}})
    c = subscription("q", "a")
    async with store.session() as s:
        for r in (b, c, a):
            await s.subscriptions.put(r)
    async with store.session() as s:
        subs = s.subscriptions
        assert await subs.get("p", "a") == a
        assert await subs.get("p", "b") == b
        assert await subs.get("p", "zz") is None
        assert await subs.list_rows("p") == [a, b]
        assert await subs.list_rows(None) == [a, b, c]
        await subs.put(replace(a, description="changed"))
    async with store.session() as s:
        subs = s.subscriptions
        got = await subs.get("p", "a")
        assert got is not None and got.description == "changed"
        await s.deliveries.add([delivery(7, sid="a"), delivery(8, sid="b")])
        assert await subs.delete("p", "a") is True
        assert await subs.delete("p", "a") is False
        # Its deliveries went with it; another subscription's stay.
        assert await s.deliveries.list_rows("p", "a", None, 10) == []
        assert len(await s.deliveries.list_rows("p", "b", None, 10)) == 1
    async with store.session() as s:
        assert await s.subscriptions.list_rows(None) == [b, c]
