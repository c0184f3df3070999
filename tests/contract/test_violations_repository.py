"""The violation repository, on memory, SQLite and PostgreSQL: put by ID, the open one of a
pod, lists newest first by project, cluster and namespace, and open counts for gauges."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import ViolationQuery
from contract.runtime_samples import T0, violation


async def test_violations_put_open_for_list_and_count(store: MetadataStore) -> None:
    v1 = violation("v1", "web-a", T0)
    v2 = violation("v2", "web-b", T0 + timedelta(seconds=1))
    v3 = violation("v3", "web-c", T0 + timedelta(seconds=2), namespace="ops", cluster="edge")
    v4 = violation("v4", "web-d", T0 + timedelta(seconds=3), project="q")
    async with store.session() as s:
        for v in (v1, v2, v3, v4):
            await s.violations.put(v)
    async with store.session() as s:
        vs = s.violations
        assert await vs.open_for("prod", "shop", "web-a") == v1
        assert await vs.open_for("prod", "shop", "nobody") is None
        assert [v.violation_id for v in await vs.list_rows(ViolationQuery("p"), 10)] == [
            "v3",
            "v2",
            "v1",
        ]
        assert await vs.count_open() == {
            ("p", "prod", "shop"): 2,
            ("p", "edge", "ops"): 1,
            ("q", "prod", "shop"): 1,
        }
        closed = replace(v1, closed=T0 + timedelta(minutes=1), close_reason="VEX not_affected")
        await vs.put(closed)
    async with store.session() as s:
        vs = s.violations
        assert await vs.open_for("prod", "shop", "web-a") is None
        assert [v.violation_id for v in await vs.list_rows(ViolationQuery("p"), 10)] == [
            "v3",
            "v2",
        ]
        every = await vs.list_rows(ViolationQuery("p", open_only=False), 10)
        assert [v.violation_id for v in every] == ["v3", "v2", "v1"]
        assert every[2] == closed
        edge = ViolationQuery("p", clusters=("edge",), open_only=False)
        assert [v.violation_id for v in await vs.list_rows(edge, 10)] == ["v3"]
        shop = ViolationQuery("p", namespace="shop", open_only=False)
        assert [v.violation_id for v in await vs.list_rows(shop, 1)] == ["v2"]
        assert (await vs.count_open())[("p", "prod", "shop")] == 1
