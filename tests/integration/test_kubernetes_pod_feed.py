"""The pod feed against a real kube-apiserver: the inventory follows pods (list, then
watch, owner chain to the Deployment) and a restarted watcher resumes from the stored
resourceVersion without listing again.

There is no kubelet: the test writes each pod's status (``imageID``) itself, as a kubelet
would, through the status subresource.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chainproof.domain.inventory import RunningContainer
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.sources.kubernetes.client import ClusterConnection, api_client
from chainproof.sources.kubernetes.feed import KubernetesPodFeed
from chainproof.store.memory_runtime import MemoryRuntimeStore
from kube import KubeApiServer, running_kube_apiserver

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
NS = "shop"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        yield server


def _create(c: httpx.Client, path: str, body: dict) -> dict:
    r = c.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _pod(name: str, image: str, owner: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": NS}
    if owner:
        meta["ownerReferences"] = [{**owner, "controller": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def _set_running(c: httpx.Client, name: str, image_id: str) -> None:
    pod = c.get(f"/api/v1/namespaces/{NS}/pods/{name}").json()
    pod["status"] = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": pod["spec"]["containers"][0]["image"],
                "imageID": image_id,
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-12-01T12:00:00Z"}},
            }
        ],
    }
    r = c.put(f"/api/v1/namespaces/{NS}/pods/{name}/status", json=pod)
    assert r.status_code == 200, r.text


async def _until(check: Callable[[], bool], what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _open(store: MemoryRuntimeStore) -> dict[str, RunningContainer]:
    s = store.state
    return {k.pod: s.rows[i] for k, i in s.open.items()}


async def test_inventory_follows_pods_and_resumes_after_restart(kube: KubeApiServer) -> None:
    c = kube.client()
    _create(c, "/api/v1/namespaces", {"metadata": {"name": NS}})
    dep = _create(
        c,
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1"}]},
                },
            },
        },
    )
    rs = _create(
        c,
        f"/apis/apps/v1/namespaces/{NS}/replicasets",
        {
            "metadata": {
                "name": "web-5d8f",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                        "uid": dep["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1"}]},
                },
            },
        },
    )
    rs_owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-5d8f",
        "uid": rs["metadata"]["uid"],
    }
    _create(
        c, f"/api/v1/namespaces/{NS}/pods", _pod("web-5d8f-a", "registry.example/web:1", rs_owner)
    )
    _set_running(c, "web-5d8f-a", f"docker-pullable://registry.example/web@{D1}")

    store = MemoryRuntimeStore()
    updater = InventoryUpdater(store.session, lambda: datetime.now(UTC))
    conn = ClusterConnection("prod", url=kube.url, token=kube.token, ca_file=Path(kube.ca_file))
    api = await api_client(conn)
    feed = KubernetesPodFeed("prod", api, watch_timeout_s=30)
    task = asyncio.create_task(feed.run(await updater.resume_point("prod"), updater))
    try:
        # The list sees the running pod, with the owner chain up to the Deployment.
        await _until(lambda: "web-5d8f-a" in _open(store), "the listed pod")
        row = _open(store)["web-5d8f-a"]
        assert (row.workload_kind, row.workload_name) == ("Deployment", "web")
        assert row.image == f"registry.example/web@{D1}" and row.cluster == "prod"

        # The watch sees a new bare pod, its status, and a deletion.
        _create(c, f"/api/v1/namespaces/{NS}/pods", _pod("debug", "busybox:1.36"))
        await _until(lambda: "debug" in _open(store), "the watched pod")
        assert _open(store)["debug"].digest is None
        assert _open(store)["debug"].workload_kind == "Pod"
        _set_running(c, "debug", f"docker.io/library/busybox@{D2}")
        await _until(lambda: _open(store)["debug"].digest == D2, "the reported digest")
        assert c.delete(f"/api/v1/namespaces/{NS}/pods/debug").status_code == 200
        await _until(lambda: "debug" not in _open(store), "the deletion")
        closed = [r for r in store.state.rows.values() if r.pod == "debug"]
        assert closed and all(r.until is not None for r in closed)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Restart while a pod is created and one deleted: resumes from the stored resourceVersion
    # without listing again.
    _create(c, f"/api/v1/namespaces/{NS}/pods", _pod("job-x", "registry.example/job:2"))
    resume = await updater.resume_point("prod")
    assert resume
    feed2 = KubernetesPodFeed("prod", api, watch_timeout_s=30)
    task = asyncio.create_task(feed2.run(resume, updater))
    try:
        await _until(lambda: "job-x" in _open(store), "the pod created while down")
        assert feed2.lists == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await api.close()
        c.close()


RBAC = Path(__file__).parents[2] / "deploy" / "runtime" / "watcher-rbac.yaml"
_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/chainproof/serviceaccounts",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}


async def test_the_shipped_watcher_rbac_reads_pods_and_writes_nothing(kube: KubeApiServer) -> None:
    import yaml

    c = kube.client()
    c.post("/api/v1/namespaces", json={"metadata": {"name": "chainproof"}})
    for doc in yaml.safe_load_all(RBAC.read_text()):
        _create(c, _PATHS[doc["kind"]], doc)
    r = c.post(
        "/api/v1/namespaces/chainproof/serviceaccounts/chainproof-watcher/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert r.status_code == 201, r.text
    token = r.json()["status"]["token"]
    _create(c, "/api/v1/namespaces", {"metadata": {"name": "rbac-check"}})
    _create(
        c, "/api/v1/namespaces/rbac-check/pods", {**_pod("p", "busybox"), "metadata": {"name": "p"}}
    )

    store = MemoryRuntimeStore()
    updater = InventoryUpdater(store.session, lambda: datetime.now(UTC))
    conn = ClusterConnection("edge", url=kube.url, token=token, ca_file=Path(kube.ca_file))
    api = await api_client(conn)
    feed = KubernetesPodFeed("edge", api, watch_timeout_s=30)
    task = asyncio.create_task(feed.run(None, updater))
    try:
        await _until(lambda: "p" in _open(store), "the watcher's list with its own token")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await api.close()
    ctx = ssl.create_default_context(cafile=str(kube.ca_file))
    async with httpx.AsyncClient(
        base_url=kube.url, verify=ctx, headers={"Authorization": f"Bearer {token}"}
    ) as w:
        assert (await w.delete("/api/v1/namespaces/rbac-check/pods/p")).status_code == 403
        made = await w.post("/api/v1/namespaces/rbac-check/pods", json=_pod("q", "x"))
        assert made.status_code == 403
        assert (await w.get("/api/v1/namespaces/rbac-check/secrets")).status_code == 403
    c.close()


async def test_pod_actions_write_an_event_and_an_annotation(kube: KubeApiServer) -> None:
    from chainproof.sources.kubernetes.actions import KubernetesPodActions
    from chainproof.sources.kubernetes.port import PodActionFailed

    c = kube.client()
    c.post("/api/v1/namespaces", json={"metadata": {"name": "acts"}})
    _create(c, "/api/v1/namespaces/acts/pods", {**_pod("w", "busybox"), "metadata": {"name": "w"}})
    api = await api_client(
        ClusterConnection("prod", url=kube.url, token=kube.token, ca_file=Path(kube.ca_file))
    )
    actions = KubernetesPodActions(api)
    try:
        await actions.record_event(
            "acts", "w", "PolicyViolation", "CVE-2026-1 is CRITICAL", warning=True
        )
        await actions.annotate("acts", "w", {"chainproof.dev/violation": "v1"})
        # A pod that is gone: the API server's 404, as the port's error, said briefly.
        with pytest.raises(PodActionFailed) as gone:
            await actions.record_event("acts", "nobody", "PolicyViolation", "x", warning=True)
        assert gone.value.status == 404 and gone.value.retry_after is None
        assert str(gone.value) == 'HTTP 404: pods "nobody" not found'
    finally:
        await api.close()
    pod = c.get("/api/v1/namespaces/acts/pods/w").json()
    events = c.get("/api/v1/namespaces/acts/events").json()["items"]
    c.close()
    [event] = [e for e in events if e["involvedObject"]["name"] == "w"]
    assert event["reason"] == "PolicyViolation" and event["type"] == "Warning"
    assert event["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert event["source"]["component"] == "chainproof"
    assert pod["metadata"]["annotations"]["chainproof.dev/violation"] == "v1"
