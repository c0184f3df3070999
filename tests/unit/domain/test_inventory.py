"""The inventory's pure rules: imageIDs, owner chains, pod observation, reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chainproof.domain.inventory import (
    OwnerRef,
    WorkloadRef,
    controller_of,
    observe_pod,
    reconcile,
    resolve_workload,
    running_digest,
    validate_cluster_name,
)
from chainproof.errors import InvalidArgument

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        (f"docker-pullable://nginx@{D1}", D1),
        (f"docker.io/library/nginx@{D1}", D1),
        (f"registry.example/app@{D1.upper().replace('SHA256', 'sha256')}", D1),
        (D1, None),  # a local image configuration ID names no manifest
        ("docker://" + D1, None),
        ("nginx@sha256:1234", None),
        ("", None),
    ],
)
def test_running_digest(image_id: str, digest: str | None) -> None:
    assert running_digest(image_id) == digest


def test_owner_chain_follows_replicaset_to_deployment_and_stops_at_unknown() -> None:
    rs = OwnerRef("ReplicaSet", "web-5d8f", "u-rs")
    parents = {"u-rs": OwnerRef("Deployment", "web", "u-d")}
    assert resolve_workload("web-5d8f-x", rs, lambda r: parents.get(r.uid)) == WorkloadRef(
        "Deployment", "web"
    )
    # An orphaned ReplicaSet is its own workload; a bare pod is the workload.
    assert resolve_workload("p", rs, lambda r: None) == WorkloadRef("ReplicaSet", "web-5d8f")
    assert resolve_workload("p", None, lambda r: None) == WorkloadRef("Pod", "p")
    # A StatefulSet is the top: its owner is never looked up.
    asked: list[OwnerRef] = []
    sts = OwnerRef("StatefulSet", "db", "u-s")
    assert resolve_workload("db-0", sts, lambda r: asked.append(r) or None).kind == "StatefulSet"
    assert asked == []


def test_owner_chain_is_bounded() -> None:
    loop = OwnerRef("ReplicaSet", "a", "u")
    assert resolve_workload("p", loop, lambda r: loop) == WorkloadRef("ReplicaSet", "a")


def test_controller_of_ignores_non_controller_owners() -> None:
    meta = {
        "ownerReferences": [
            {"kind": "Other", "name": "x", "uid": "1"},
            {"kind": "Job", "name": "j", "uid": "2", "controller": True},
        ]
    }
    assert controller_of(meta) == OwnerRef("Job", "j", "2")
    assert controller_of({}) is None


def _pod(uid: str = "uid-1", image_id: str | None = None, phase: str = "Running") -> dict:
    status: dict = {"phase": phase}
    if image_id is not None:
        status["containerStatuses"] = [{"name": "app", "imageID": image_id}]
    return {
        "metadata": {"name": "web-1", "namespace": "shop", "uid": uid},
        "spec": {
            "serviceAccountName": "web",
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "app", "image": "registry.example/shop/web:1.0"},
                {"name": "side", "image": "nginx"},
            ],
        },
        "status": status,
    }


def test_observe_pod_reads_spec_and_running_digest() -> None:
    rows = observe_pod(
        "prod", _pod(image_id=f"docker-pullable://x@{D1}"), WorkloadRef("Deployment", "web"), T0
    )
    assert [r.container for r in rows] == ["app", "side"]  # init containers have finished
    app, side = rows
    assert app.image == f"registry.example/shop/web@{D1}"
    assert app.digest == D1 and app.service_account == "web"
    assert (app.workload_kind, app.workload_name) == ("Deployment", "web")
    assert side.digest is None and side.image == "docker.io/library/nginx"
    assert observe_pod("prod", _pod(phase="Succeeded"), WorkloadRef("Pod", "web-1"), T0) == []


def test_observe_pod_refuses_a_non_pod() -> None:
    with pytest.raises(InvalidArgument):
        observe_pod("prod", {"metadata": {}}, WorkloadRef("Pod", "x"), T0)


def test_reconcile_opens_updates_and_closes() -> None:
    w = WorkloadRef("Deployment", "web")
    pending = observe_pod("prod", _pod(), w, T0)
    first = reconcile([], pending, T0)
    assert len(first.opened) == 2 and not first.closed
    # The kubelet reports the digest: the row updates in place and keeps its start time.
    later = T0 + timedelta(seconds=5)
    running = observe_pod("prod", _pod(image_id=f"x@{D1}"), w, later)
    step = reconcile(pending, running, later)
    assert not step.opened and not step.closed
    assert [r.digest for r in step.changed] == [D1] and step.changed[0].since == T0
    # A new pod UID under the same name is a new life: close and open.
    current = [step.changed[0], pending[1]]
    reborn = observe_pod("prod", _pod(uid="uid-2", image_id=f"x@{D2}"), w, later)
    step2 = reconcile(current, reborn, later)
    assert {r.pod_uid for r in step2.closed} == {"uid-1"} and len(step2.closed) == 2
    assert {r.pod_uid for r in step2.opened} == {"uid-2"}
    # Gone from the scope: closed with until set.
    gone = reconcile(reborn, [], later)
    assert all(r.until == later for r in gone.closed) and len(gone.closed) == 2
    assert not reconcile(reborn, reborn, later)


def test_cluster_names() -> None:
    assert validate_cluster_name("prod-eu.1") == "prod-eu.1"
    for bad in ("", "Prod", "-x", "a" * 64, "a/b"):
        with pytest.raises(InvalidArgument):
            validate_cluster_name(bad)


def _admitted_pod(uid: str = "uid-1") -> dict:
    return {
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "uid": uid,
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-5d8f", "uid": "u-rs", "controller": True}
            ],
        },
        "spec": {"containers": [{"name": "app", "image": f"registry.example/web@{D1}"}]},
    }


def test_an_admitted_pod_opens_rows_a_watcher_confirms_in_place() -> None:
    from chainproof.domain.inventory import observe_admitted_pod

    [admitted] = observe_admitted_pod("prod", _admitted_pod(), T0)
    assert admitted.source == "admission" and admitted.digest is None
    assert admitted.image == f"registry.example/web@{D1}"
    assert (admitted.workload_kind, admitted.workload_name) == ("ReplicaSet", "web-5d8f")
    # The watcher sees the same pod (owner chain followed up, the kubelet's imageID): the
    # same life, so the row is updated in place, keeps its since and is now the watcher's.
    later = T0 + timedelta(seconds=3)
    pod = {
        **_admitted_pod(),
        "status": {"containerStatuses": [{"name": "app", "imageID": f"x@{D1}"}]},
    }
    [seen] = observe_pod("prod", pod, WorkloadRef("Deployment", "web"), later)
    step = reconcile([admitted], [seen], later)
    assert not step.opened and not step.closed
    [row] = step.changed
    assert (row.source, row.since, row.digest, row.workload_kind) == (
        "watcher",
        T0,
        D1,
        "Deployment",
    )
    # Same facts but told by the watcher: still an update, so the source is right.
    bare = observe_pod("prod", _admitted_pod(), WorkloadRef("ReplicaSet", "web-5d8f"), later)
    assert [r.source for r in reconcile([admitted], bare, later).changed] == ["watcher"]
    # A row from a request made before the API server gave the pod a UID is the same life.
    [no_uid] = observe_admitted_pod("prod", _admitted_pod(uid=""), T0)
    assert not reconcile([no_uid], [seen], later).closed
    # A pod with no name yet (generateName at mutation time) gives nothing to key a row on.
    nameless = _admitted_pod()
    nameless["metadata"] = {**nameless["metadata"], "name": ""}
    assert observe_admitted_pod("prod", nameless, T0) == []
