"""Admission feeds the inventory: an admitted Pod's containers are known (source=admission)
before any watcher sees them; a denial, a dry run, or a pod the inventory knows already
adds nothing; admitted rows no watcher confirms are closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chainproof.config import AdmissionSettings
from chainproof.domain.pagination import PageTokenCodec
from chainproof.domain.workloads import workload_from_object
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.memory import MemoryStore
from chainproof.store.runtime_port import InventoryQuery, runtime_sessions
from unit.services.test_admission import BAD, GOOD, FakeJudge, FakeLog

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def pod(name: str, image: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


class System:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = [NOW]
        self.inventory = InventoryUpdater(runtime_sessions(self.store), lambda: self.clock[0])
        self.service = AdmissionService(
            FakeJudge(),  # type: ignore[arg-type]
            FakeLog(),  # type: ignore[arg-type]
            GrafeasService(self.store, PageTokenCodec(b"k" * 32)),
            AdmissionSettings(project="p", cluster="prod"),
            clock=lambda: NOW,
            admitted_pods=lambda p: self.inventory.admitted("prod", p),
        )

    async def review(self, obj: dict[str, Any], **kw: Any) -> bool:
        result = await self.service.review(workload_from_object(obj), pod=obj, **kw)
        await self.service.close()  # the background writes are done
        return result.allowed

    async def rows(self) -> list[Any]:
        async with runtime_sessions(self.store)() as repos:
            return await repos.inventory.list_rows(InventoryQuery(include_closed=True), 100)


async def test_an_admitted_pod_is_in_the_inventory_before_any_watcher() -> None:
    sys = System()
    assert await sys.review(pod("web-1", GOOD))
    [row] = await sys.rows()
    assert (row.cluster, row.namespace, row.pod, row.container) == ("prod", "shop", "web-1", "app")
    assert row.source == "admission" and row.image == GOOD and row.until is None


async def test_denied_dry_run_and_known_pods_add_nothing() -> None:
    sys = System()
    assert not await sys.review(pod("bad", BAD))
    assert await sys.review(pod("dry", GOOD), dry_run=True)
    assert await sys.rows() == []
    assert await sys.review(pod("web-1", GOOD))
    # The same pod admitted again (a retried request) or already watched: left as it is.
    sys.clock[0] = NOW + timedelta(minutes=1)
    assert await sys.review(pod("web-1", GOOD))
    [row] = await sys.rows()
    assert row.since == NOW


async def test_admitted_rows_no_watcher_confirms_are_closed() -> None:
    sys = System()
    assert await sys.review(pod("ghost", GOOD))
    sys.clock[0] = NOW + timedelta(minutes=20)
    assert await sys.inventory.expire_unconfirmed("prod", NOW + timedelta(minutes=10)) == 1
    [row] = await sys.rows()
    assert row.until == NOW + timedelta(minutes=20)
    assert await sys.inventory.expire_unconfirmed("prod", NOW + timedelta(minutes=30)) == 0
