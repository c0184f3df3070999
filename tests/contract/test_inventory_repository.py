"""The inventory repository, on memory, SQLite and PostgreSQL: open rows per container (one
at a time), updates in place, closing and reopening, listing newest first, running images,
running workloads counted, and each cluster's watch checkpoint; a unit of work that raises leaves none of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chainproof.domain.inventory import InventoryChanges
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import InventoryQuery
from contract.runtime_samples import D1, D2, T0, Boom, row


async def test_inventory_opens_updates_closes_and_reopens(store: MetadataStore) -> None:
    a, b = row("web-a"), row("web-b", namespace="other")
    c = row("web-c", cluster="edge")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a, b, c)))
    async with store.session() as s:
        inv = s.inventory
        assert sorted(r.pod for r in await inv.open_rows("prod")) == ["web-a", "web-b"]
        assert [r.pod for r in await inv.open_rows("prod", "shop")] == ["web-a"]
        assert await inv.open_rows("prod", "shop", "web-a") == [a]
        assert await inv.open_rows("prod", "shop", "nobody") == []
        assert await inv.open_rows("edge") == [c]
    # An imageID appears: the open row is updated in place and keeps its since.
    later = T0 + timedelta(minutes=1)
    seen = replace(a, image_id="docker://x@" + D1, workload_name="web2")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(changed=(seen,)))
    async with store.session() as s:
        assert await s.inventory.open_rows("prod", "shop", "web-a") == [seen]
    # A new life of the same container: close and open in one write.
    closed = replace(seen, until=later)
    again = row("web-a", digest=D2, since=later, uid="uid-2")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(again,), closed=(closed,)))
    async with store.session() as s:
        inv = s.inventory
        assert await inv.open_rows("prod", "shop", "web-a") == [again]
        everything = await inv.list_rows(InventoryQuery(include_closed=True), 100)
        assert closed in everything and again in everything and len(everything) == 4


async def test_opening_an_open_container_again_fails_and_writes_nothing(
    store: MetadataStore,
) -> None:
    a = row("web-a")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a,)))
    with pytest.raises(Exception):  # noqa: B017,PT011 - each adapter has its own error type
        async with store.session() as s:
            await s.inventory.write(
                InventoryChanges(opened=(row("other"), replace(a, pod_uid="x")))
            )
    async with store.session() as s:
        assert await s.inventory.open_rows("prod") == [a]


async def test_inventory_list_filters_and_orders_newest_first(store: MetadataStore) -> None:
    rows = [
        row("p1", since=T0),
        row("p2", since=T0 + timedelta(seconds=2), container="db", digest=D2),
        row("p3", since=T0 + timedelta(seconds=1), cluster="edge"),
        row("p4", since=T0 + timedelta(seconds=3), namespace="ops"),
    ]
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=tuple(rows)))
        await s.inventory.write(
            InventoryChanges(closed=(replace(rows[3], until=T0 + timedelta(seconds=4)),))
        )
    async with store.session(readonly=True) as s:
        inv = s.inventory
        pods = lambda got: [r.pod for r in got]  # noqa: E731
        assert pods(await inv.list_rows(InventoryQuery(), 10)) == ["p2", "p3", "p1"]
        assert pods(await inv.list_rows(InventoryQuery(), 2)) == ["p2", "p3"]
        assert pods(await inv.list_rows(InventoryQuery(include_closed=True), 10)) == [
            "p4",
            "p2",
            "p3",
            "p1",
        ]
        assert pods(await inv.list_rows(InventoryQuery(clusters=("edge",)), 10)) == ["p3"]
        assert pods(await inv.list_rows(InventoryQuery(namespace="shop"), 10)) == [
            "p2",
            "p3",
            "p1",
        ]
        by_image = InventoryQuery(images=(rows[1].image, "registry.example/none@" + D1))
        assert pods(await inv.list_rows(by_image, 10)) == ["p2"]
        # Many images at once (more than one IN list's worth) still filter and order.
        many = (*(f"registry.example/x{i}@{D1}" for i in range(2500)), rows[0].image)
        assert pods(await inv.list_rows(InventoryQuery(images=many), 10)) == ["p3", "p1"]
        assert pods(await inv.list_rows(InventoryQuery(), 0)) == []


async def test_running_images_are_distinct_sorted_and_open_only(store: MetadataStore) -> None:
    a, b = row("p1"), row("p2")  # the same image twice
    c = row("p3", container="db", digest=D2, cluster="edge")
    d = row("p4", container="zz")
    async with store.session() as s:
        await s.inventory.write(InventoryChanges(opened=(a, b, c, d)))
        await s.inventory.write(InventoryChanges(closed=(replace(d, until=T0),)))
    async with store.session() as s:
        inv = s.inventory
        assert await inv.running_images([]) == sorted({a.image, c.image})
        assert await inv.running_images(["prod"]) == [a.image]
        assert await inv.running_images(["edge", "nowhere"]) == [c.image]
        # Two pods of one Deployment are one workload; the same name in another cluster is
        # another; closed rows run nothing.
        assert await inv.count_workloads() == 2
        await inv.write(InventoryChanges(opened=(replace(row("p5"), workload_name="api"),)))
        assert await inv.count_workloads() == 3


async def test_checkpoints_per_cluster(store: MetadataStore) -> None:
    async with store.session() as s:
        assert await s.inventory.get_checkpoint("prod") is None
        await s.inventory.set_checkpoint("prod", "100")
        await s.inventory.set_checkpoint("edge", "7")
    async with store.session() as s:
        await s.inventory.set_checkpoint("prod", "250")
    async with store.session() as s:
        assert await s.inventory.get_checkpoint("prod") == "250"
        assert await s.inventory.get_checkpoint("edge") == "7"


async def test_a_failed_session_leaves_no_inventory_or_checkpoint(store: MetadataStore) -> None:
    async def fail() -> None:
        async with store.session() as s:
            await s.inventory.write(InventoryChanges(opened=(row("p1"),)))
            await s.inventory.set_checkpoint("prod", "9")
            raise Boom

    with pytest.raises(Boom):
        await fail()
    async with store.session() as s:
        assert await s.inventory.open_rows("prod") == []
        assert await s.inventory.get_checkpoint("prod") is None
