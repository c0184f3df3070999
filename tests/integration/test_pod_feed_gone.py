"""The pod watcher against a real kube-apiserver whose history is gone: 410 Gone → relist.

The API server runs without its watch cache (``--watch-cache=false``), so a watch is served
from etcd itself; compacting etcd while the watcher is down then makes the stored
resourceVersion too old for real, and the restarted watcher is answered 410 Gone (a watch
ERROR event with code 410). The feed lists again, and the relist closes the pod deleted
while it was down and opens the one created meanwhile. The inventory is a SQLite store, so
the rows and checkpoint survive the restart as they would in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chainproof.domain.inventory import RunningContainer
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.sources.kubernetes.client import ClusterConnection, api_client
from chainproof.sources.kubernetes.feed import KubernetesPodFeed
from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import InventoryQuery, runtime_sessions
from kube import KubeApiServer, running_kube_apiserver

NS = "gone"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    scratch = tmp_path_factory.mktemp("kube-nocache")
    with running_kube_apiserver(scratch, ("--watch-cache=false",)) as server:
        yield server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    store = create_store(f"sqlite:///{tmp_path}/inventory.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [{"name": "app", "image": f"registry.example/{name}:1"}]},
    }


def compact_etcd(etcd: str) -> int:
    """Compact etcd's history up to its current revision; returns that revision."""
    with httpx.Client(base_url=etcd, timeout=30) as c:
        head = c.post("/v3/kv/range", json={"key": "AA=="}).json()
        revision = int(head["header"]["revision"])
        r = c.post("/v3/kv/compaction", json={"revision": str(revision), "physical": True})
        assert r.status_code == 200, r.text
    return revision


async def _until(check: Callable[[], Awaitable[bool]], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _open(store: MetadataStore) -> dict[str, RunningContainer]:
    async with store.session(readonly=True) as s:
        return {r.pod: r for r in await s.inventory.open_rows("prod")}


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_compacted_resource_version_is_410_and_the_relist_catches_up(
    kube: KubeApiServer, store: MetadataStore
) -> None:
    c = kube.client()
    assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    for name in ("keep", "doomed"):
        assert c.post(f"/api/v1/namespaces/{NS}/pods", json=_pod(name)).status_code == 201
    updater = InventoryUpdater(runtime_sessions(store), lambda: datetime.now(UTC))
    conn = ClusterConnection("prod", url=kube.url, token=kube.token, ca_file=kube.ca_file)
    api = await api_client(conn)
    try:
        feed = KubernetesPodFeed("prod", api, watch_timeout_s=30)
        task = asyncio.create_task(feed.run(await updater.resume_point("prod"), updater))

        async def both_seen() -> bool:
            return set(await _open(store)) == {"keep", "doomed"}

        await _until(both_seen, "the first list")
        await _stop(task)
        stored = await updater.resume_point("prod")
        assert stored

        # While the watcher is down: one pod goes, one comes, and etcd forgets the history.
        assert c.delete(f"/api/v1/namespaces/{NS}/pods/doomed").status_code == 200
        assert c.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("late")).status_code == 201
        assert compact_etcd(kube.etcd) > int(stored)

        restarted = KubernetesPodFeed("prod", api, watch_timeout_s=30)
        task = asyncio.create_task(restarted.run(stored, updater))

        async def caught_up() -> bool:
            return set(await _open(store)) == {"keep", "late"}

        await _until(caught_up, "the relist after 410 Gone")
        await _stop(task)
        assert restarted.relists_on_gone == 1 and restarted.lists == 1
        async with store.session(readonly=True) as s:
            rows = await s.inventory.list_rows(InventoryQuery(include_closed=True), 100)
        closed = [r for r in rows if r.pod == "doomed"]
        assert closed and all(r.until is not None for r in closed)
        assert int(await updater.resume_point("prod") or 0) > int(stored)
    finally:
        await api.close()
        c.close()
