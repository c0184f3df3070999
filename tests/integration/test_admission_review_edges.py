"""AdmissionReviews are judged by what the API server says, and what cannot be understood is
denied (issue 9 item 7). Each review below was admitted unjudged before.

The project has no policy, so every workload that is judged is denied: ``allowed: true``
here can only mean "not judged".
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "k8s"
UNVETTED = "docker.io/mallory/tools@sha256:" + "e" * 64


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = build_app(
        load_settings(database_url="memory://", grpc_enabled=False, admission={"project": "edge"})
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def pod(image: str = UNVETTED) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FIXTURES / "pod.json").read_text())
    obj["spec"]["containers"][0]["image"] = image
    obj["metadata"]["namespace"] = "prod"
    return obj


def review(obj: Any, **request: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "prod",
        "operation": "CREATE",
        "object": obj,
    }
    req.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def answer(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/webhook/admission?timeout=10s", json=body)
    assert r.status_code == 200, r.text
    response: dict[str, Any] = r.json()["response"]
    assert response["uid"] == body["request"]["uid"]
    return response


def test_a_plain_pod_is_judged(client: TestClient) -> None:
    assert answer(client, review(pod()))["allowed"] is False


@pytest.mark.parametrize("operation", ["create", "Update", "PATCH", "delete"])
def test_odd_operations_are_denied(client: TestClient, operation: str) -> None:
    response = answer(client, review(pod(), operation=operation))
    assert response["allowed"] is False
    assert "request.operation" in response["status"]["message"]


@pytest.mark.parametrize(
    "kind",
    [
        {"group": "", "version": "v1", "kind": "pod"},
        {"group": "", "version": "v1", "kind": "POD"},
        {"group": "apps", "version": "v1", "kind": "deployment"},
        {"group": "", "version": "v1"},
        None,
    ],
)
def test_odd_or_missing_kinds_are_denied(client: TestClient, kind: Any) -> None:
    body = review(pod())
    if kind is None:
        del body["request"]["kind"]
    else:
        body["request"]["kind"] = kind
    assert answer(client, body)["allowed"] is False


def test_the_object_cannot_override_the_kind(client: TestClient) -> None:
    # A Pod that claims to be a Deployment: its real containers would be ignored.
    obj = pod()
    obj["kind"] = "Deployment"
    obj["spec"]["template"] = {"spec": {"containers": [{"name": "x", "image": "gcr.io/ok:1"}]}}
    response = answer(client, review(obj))
    assert response["allowed"] is False
    assert "request.kind says 'Pod'" in response["status"]["message"]


def test_a_review_without_a_namespace_is_denied(client: TestClient) -> None:
    body = review(pod())
    del body["request"]["namespace"]
    response = answer(client, body)
    assert response["allowed"] is False
    assert "request.namespace is missing" in response["status"]["message"]


def test_the_object_cannot_choose_another_namespace(client: TestClient) -> None:
    # The decision is recorded (and rules selected) in the request's namespace, not "dev".
    obj = pod()
    obj["metadata"]["namespace"] = "dev"
    response = answer(client, review(obj))
    assert response["allowed"] is False
    assert "Pod prod/" in response["status"]["message"]


def test_an_update_of_a_dying_object_that_changes_the_image_is_judged(client: TestClient) -> None:
    old = pod("gcr.io/x/app@sha256:" + "a" * 64)
    new = copy.deepcopy(old)
    for o in (old, new):
        o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    new["spec"]["containers"][0]["image"] = UNVETTED
    assert answer(client, review(new, operation="UPDATE", oldObject=old))["allowed"] is False
    # Finalizers removed, images unchanged: still not judged, so deletion is never blocked.
    same = answer(client, review(old, operation="UPDATE", oldObject=copy.deepcopy(old)))
    assert same["allowed"] is True


def test_an_image_volume_is_judged(client: TestClient) -> None:
    obj = pod("gcr.io/x/app@sha256:" + "a" * 64)
    obj["spec"]["volumes"] = [{"name": "tools", "image": {"reference": UNVETTED}}]
    response = answer(client, review(obj))
    assert response["allowed"] is False
    assert "volumes[0] (tools)" in response["status"]["message"]


def test_an_invalid_service_account_name_is_denied(client: TestClient) -> None:
    obj = pod()
    obj["spec"]["serviceAccountName"] = "Deployer"
    response = answer(client, review(obj))
    assert response["allowed"] is False
    assert "not a valid Kubernetes name" in response["status"]["message"]
