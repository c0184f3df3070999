"""Acting on violating pods through a real kube-apiserver, with the server's own watcher and
re-judging worker (a policy that denies everything, so every running pod violates):

* eviction is opt-in per namespace: the opted-in namespace's pod is evicted through the
  Eviction subresource (gone from the API server) and the violation records the attempt and
  its result; the pod of a namespace that did not opt in is not touched; a
  PodDisruptionBudget that forbids the eviction (the API server's 429) is tried again a
  bounded number of times and recorded as refused, and the worker goes on;
* a real refusal: chainproof reaches the cluster with a ServiceAccount that has only the
  shipped read-only watcher role, so every action is a 403 from the API server's RBAC; each
  is recorded once and not tried again.

There is no kubelet, scheduler or disruption controller: the test writes pod status as a
kubelet would, and the budget's status as the disruption controller would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from kube import KubeApiServer, running_kube_apiserver

IMAGE = "registry.example/team/app@sha256:" + "c" * 64
DENY_ALL = {
    "defaultAdmissionRule": {
        "evaluationMode": "ALWAYS_DENY",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
    }
}
RBAC = Path(__file__).parents[2] / "deploy" / "runtime" / "watcher-rbac.yaml"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        yield server


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def running_pod(k: httpx.Client, namespace: str, name: str) -> None:
    """A pod in its own namespace, reported running by a kubelet."""
    made_ns = k.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
    assert made_ns.status_code in (201, 409), made_ns.text
    made = _ok(
        k.post(
            f"/api/v1/namespaces/{namespace}/pods",
            json={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": IMAGE}]},
            },
        )
    )
    made["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "app",
                "image": IMAGE,
                "imageID": f"docker-pullable://{IMAGE}",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-12-01T12:00:00Z"}},
            }
        ],
    }
    _ok(k.put(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json=made))


def guard(k: httpx.Client, namespace: str, app: str) -> None:
    """A budget that needs the one pod it selects, with the status the disruption
    controller would give it: no disruption allowed."""
    base = f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets"
    pdb = _ok(
        k.post(
            base,
            json={
                "apiVersion": "policy/v1beta1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": f"{app}-budget", "namespace": namespace},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
            },
        )
    )
    pdb["status"] = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": 0,
        "currentHealthy": 1,
        "desiredHealthy": 1,
        "expectedPods": 1,
    }
    _ok(k.put(f"{base}/{app}-budget/status", json=pdb))


def settings_for(kube: KubeApiServer, tmp_path: Path, token: str, **cv: Any) -> Any:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    return load_settings(
        database_url=f"sqlite:///{tmp_path}/chainproof.db",
        grpc_enabled=False,
        admission={"project": "prod", "cluster": "prod"},
        runtime={
            "clusters": [
                {
                    "name": "prod",
                    "url": kube.url,
                    "token_file": str(token_file),
                    "ca_file": str(kube.ca_file),
                }
            ],
            "continuous_validation": {"poll_seconds": 0.1, **cv},
        },
        notifications={"poll_seconds": 0.2},
    )


def wait_for(check: Any, what: str, within_s: float = 30.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def violation_of(app: TestClient, namespace: str, pod: str) -> dict[str, Any] | None:
    r = app.get("/v1/projects/prod/violations", params={"state": "all", "namespace": namespace})
    assert r.status_code == 200, r.text
    found = [v for v in r.json()["violations"] if v["podEvent"]["pod"] == pod]
    return found[0] if found else None


def pod_exists(k: httpx.Client, namespace: str, pod: str) -> bool:
    r = k.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def test_eviction_is_opt_in_recorded_and_a_budget_refusal_is_not_a_crash(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    k = kube.client()
    running_pod(k, "evict-me", "web-1")
    running_pod(k, "leave-me", "web-2")
    running_pod(k, "guarded", "web-3")
    guard(k, "guarded", "web-3")
    settings = settings_for(
        kube,
        tmp_path,
        kube.token,
        evict_namespaces=["evict-me", "prod/guarded"],
        action_attempts=3,
        action_retry_seconds=0.05,
        action_max_retry_seconds=0.2,
    )
    with TestClient(build_app(settings)) as app:
        assert app.put("/v1/projects/prod/policy", json=DENY_ALL).status_code == 200

        # The opted-in namespace: evicted, gone from the API server, and recorded.
        evicted = wait_for(
            lambda: (v := violation_of(app, "evict-me", "web-1")) and v["actions"] and v,
            "the eviction to be recorded",
        )
        assert [(a["action"], a["result"], a["attempt"]) for a in evicted["actions"]] == [
            ("evict", "done", 1)
        ]
        wait_for(lambda: not pod_exists(k, "evict-me", "web-1"), "the evicted pod to be gone")
        closed = wait_for(
            lambda: (v := violation_of(app, "evict-me", "web-1")) and v["state"] == "CLOSED" and v,
            "the violation of the evicted pod to close",
        )
        assert closed["closeReason"] == "the pod no longer runs"
        assert closed["actions"] == evicted["actions"]  # the record stays with it

        # A budget forbids it: tried three times, refused each time, the pod still there.
        refused = wait_for(
            lambda: (v := violation_of(app, "guarded", "web-3")) and len(v["actions"]) == 3 and v,
            "the refused eviction to be recorded",
        )
        assert [(a["action"], a["attempt"]) for a in refused["actions"]] == [
            ("evict", 1),
            ("evict", 2),
            ("evict", 3),
        ]
        first, _, last = (a["result"] for a in refused["actions"])
        assert first.startswith("refused, retrying in ") and "HTTP 429" in first
        assert last.startswith("refused: HTTP 429: Cannot evict pod")
        assert "disruption budget" in last
        assert refused["state"] == "OPEN"
        assert pod_exists(k, "guarded", "web-3")

        # Not opted in: violating, recorded, untouched.
        untouched = wait_for(lambda: violation_of(app, "leave-me", "web-2"), "its violation")
        assert untouched["state"] == "OPEN" and untouched["actions"] == []
        assert pod_exists(k, "leave-me", "web-2")
        # The worker goes on after the refusal: a pod started since is judged and evicted.
        running_pod(k, "evict-me", "web-4")
        wait_for(lambda: not pod_exists(k, "evict-me", "web-4"), "the later pod to be evicted")
    k.close()


def _read_only_token(k: httpx.Client) -> str:
    """The shipped watcher ServiceAccount (read-only), without the enforcer role."""
    paths = {
        "ServiceAccount": "/api/v1/namespaces/chainproof/serviceaccounts",
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }
    k.post("/api/v1/namespaces", json={"metadata": {"name": "chainproof"}})
    for doc in yaml.safe_load_all(RBAC.read_text()):
        r = k.post(paths[doc["kind"]], json=doc)
        assert r.status_code in (201, 409), r.text
    made = _ok(
        k.post(
            "/api/v1/namespaces/chainproof/serviceaccounts/chainproof-watcher/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
    )
    return str(made["status"]["token"])


def test_a_403_from_rbac_is_recorded_once_and_not_retried(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    k = kube.client()
    token = _read_only_token(k)
    running_pod(k, "locked", "web-5")
    settings = settings_for(
        kube,
        tmp_path,
        token,
        kubernetes_events=True,
        annotate_pods=True,
        evict_namespaces=["locked"],
        action_attempts=4,
        action_retry_seconds=0.05,
    )
    with TestClient(build_app(settings)) as app:
        assert app.put("/v1/projects/prod/policy", json=DENY_ALL).status_code == 200
        v = wait_for(
            lambda: (v := violation_of(app, "locked", "web-5")) and len(v["actions"]) >= 3 and v,
            "the refused actions to be recorded",
        )
        assert [(a["action"], a["attempt"]) for a in v["actions"]] == [
            ("event", 1),
            ("annotate", 1),
            ("evict", 1),
        ]
        for a in v["actions"]:
            assert a["result"].startswith("failed: HTTP 403: "), a
            assert "system:serviceaccount:chainproof:chainproof-watcher" in a["result"]
        assert pod_exists(k, "locked", "web-5")
        pod = _ok(k.get("/api/v1/namespaces/locked/pods/web-5"))
        assert "chainproof.dev/violation" not in (pod["metadata"].get("annotations") or {})
    k.close()
