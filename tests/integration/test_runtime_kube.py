"""The server's runtime side against a real kube-apiserver: admission feeds the inventory,
and the watchers of several named clusters, run by the server itself, confirm and extend it.

1. A server with no cluster configured admits a Pod (the AdmissionReview carries the object
   the API server stored, with its UID): the inventory knows the pod at once,
   ``source=admission``, with no watcher anywhere.
2. A server on the same database with two clusters configured (``prod`` and ``east``, both
   this API server) lists through both watchers: the admission row is confirmed in place
   (``source=watcher``, the same ``since``, the kubelet's digest), and ``east`` holds its
   own rows and checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.domain.inventory import RunningContainer
from chainproof.store.factory import create_store
from integration.test_webhook_support import admission_review
from kube import KubeApiServer, running_kube_apiserver

NS = "shop"
DIGEST = "sha256:" + "7" * 64
IMAGE = f"registry.example/web@{DIGEST}"
ALLOW = {
    "defaultAdmissionRule": {
        "evaluationMode": "ALWAYS_ALLOW",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
    }
}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        yield server


def rows(url: str) -> list[RunningContainer]:
    async def read() -> list[RunningContainer]:
        from chainproof.store.runtime_port import InventoryQuery

        store = create_store(url)
        await store.open()
        try:
            async with store.session(readonly=True) as s:
                return await s.inventory.list_rows(InventoryQuery(include_closed=True), 100)
        finally:
            await store.close()

    return anyio.run(read)


def checkpoint(url: str, cluster: str) -> str | None:
    async def read() -> str | None:
        store = create_store(url)
        await store.open()
        try:
            async with store.session(readonly=True) as s:
                return await s.inventory.get_checkpoint(cluster)
        finally:
            await store.close()

    return anyio.run(read)


def wait_for(check: Any, what: str, within_s: float = 30.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_admission_then_two_named_cluster_watchers(kube: KubeApiServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/chainproof.db"
    k = kube.client()
    assert k.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    made = k.post(
        f"/api/v1/namespaces/{NS}/pods",
        json={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": NS},
            "spec": {"containers": [{"name": "app", "image": IMAGE}]},
        },
    )
    assert made.status_code == 201, made.text
    stored = made.json()

    # 1. Admission, no watcher anywhere.
    settings = load_settings(
        database_url=url, grpc_enabled=False, admission={"project": "p", "cluster": "prod"}
    )
    with TestClient(build_app(settings)) as app:
        assert app.put("/v1/projects/p/policy", json=ALLOW).status_code == 200
        r = app.post("/webhook/admission", json=admission_review(stored, namespace=NS))
        assert r.status_code == 200 and r.json()["response"]["allowed"] is True, r.text
        [admitted] = wait_for(lambda: rows(url), "the admitted pod in the inventory")
    assert (admitted.cluster, admitted.namespace, admitted.pod) == ("prod", NS, "web-1")
    assert admitted.source == "admission" and admitted.image == IMAGE
    assert admitted.pod_uid == stored["metadata"]["uid"] and admitted.digest is None

    # The kubelet reports the image it runs.
    pod = k.get(f"/api/v1/namespaces/{NS}/pods/web-1").json()
    pod["status"] = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": IMAGE,
                "imageID": f"docker-pullable://registry.example/web@{DIGEST}",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-12-01T12:00:00Z"}},
            }
        ],
    }
    assert k.put(f"/api/v1/namespaces/{NS}/pods/web-1/status", json=pod).status_code == 200

    # 2. Two named clusters, both watched by the server itself.
    token = tmp_path / "token"
    token.write_text(kube.token)
    cluster = {"url": kube.url, "token_file": str(token), "ca_file": str(kube.ca_file)}
    settings = load_settings(
        database_url=url,
        grpc_enabled=False,
        admission={"project": "p", "cluster": "prod"},
        runtime={
            "clusters": [{"name": "prod", **cluster}, {"name": "east", **cluster}],
            "leader_check_seconds": 0.2,
        },
    )

    def watched() -> list[RunningContainer]:
        got = rows(url)
        by = {r.cluster: r for r in got}
        ready = "east" in by and by["prod"].source == "watcher"
        return got if ready else []

    with TestClient(build_app(settings)) as app:
        runtime = app.app.state.services.runtime  # type: ignore[attr-defined]
        assert runtime.worker.task_names == [
            "notifier",
            "watcher prod",
            "watcher east",
            "re-judging",
        ]
        got = wait_for(watched, "both watchers' lists")
        assert checkpoint(url, "prod") and checkpoint(url, "east")
    by = {r.cluster: r for r in got}
    assert len(got) == 2
    prod, east = by["prod"], by["east"]
    # Confirmed in place: the same row, the same since, now the watcher's, digest known.
    assert prod.since == admitted.since and prod.until is None
    assert (prod.source, prod.digest, prod.pod_uid) == ("watcher", DIGEST, admitted.pod_uid)
    assert (east.source, east.digest, east.pod, east.namespace) == ("watcher", DIGEST, "web-1", NS)
    k.close()
