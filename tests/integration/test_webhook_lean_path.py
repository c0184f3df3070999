"""The admission webhooks' lean ASGI path (api.fast_path) answers exactly as the FastAPI
routes it stands in for: same status, same body, same headers, same audit record — for
admitted, denied, unreadable and refused reviews, bad bodies, oversized bodies, missing and
bad credentials, and a caller without the permission.

Both apps serve the same services, so each request is sent to one and then the other and
the two answers are compared field by field; nothing here is hard-coded but the cases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from chainproof.api import mutate, webhook
from chainproof.api.fast_path import LeanWebhooks, lean_routes
from chainproof.api.rest.app import create_app
from chainproof.api.rest.ops import Metrics
from chainproof.bootstrap import AppOpenedOnStartup, build_app
from chainproof.config import load_settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "k8s"
UNVETTED = "docker.io/mallory/tools@sha256:" + "e" * 64
PROJECT = "lean"
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[TestClient, TestClient]]:
    app = build_app(
        load_settings(
            database_url="memory://",
            grpc_enabled=False,
            max_body_bytes=LIMIT,
            admission={"project": PROJECT},
        )
    )
    assert isinstance(app, AppOpenedOnStartup)
    with TestClient(app, raise_server_exceptions=False) as lean:
        services = app.state.services
        full = TestClient(
            create_app(services, Metrics(), lean_webhooks=False), raise_server_exceptions=False
        )
        yield lean, full


def _pod(image: str | None = UNVETTED) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FIXTURES / "pod.json").read_text())
    if image is None:
        del obj["spec"]["containers"][0]["image"]
    else:
        obj["spec"]["containers"][0]["image"] = image
    return obj


def _review(obj: Any, **request: Any) -> bytes:
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "prod",
        "operation": "CREATE",
        "object": obj,
    }
    req.update(request)
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
    return json.dumps(body).encode()


def _image_review(image: str | None) -> bytes:
    containers = [{"image": image}] if image is not None else []
    return json.dumps(
        {
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "spec": {"containers": containers, "namespace": "prod"},
        }
    ).encode()


CASES: dict[str, tuple[str, bytes]] = {
    "denied": ("/webhook/admission?timeout=10s", _review(_pod())),
    "not judged": ("/webhook/admission", _review(_pod(), operation="DELETE")),
    "unreadable": ("/webhook/admission", _review(_pod(None))),
    "odd operation": ("/webhook/admission", _review(_pod(), operation="create")),
    "not JSON": ("/webhook/admission", b"{not json"),
    "not a review": ("/webhook/admission", b'{"kind": "Pod"}'),
    "duplicate keys": ("/webhook/admission", b'{"kind": "AdmissionReview", "kind": "x"}'),
    "image review": ("/webhook/imagepolicy", _image_review(UNVETTED)),
    "image review, no containers": ("/webhook/imagepolicy", _image_review(None)),
    "mutate, resolution off": ("/webhook/mutate", _review(_pod("nginx:1.27"))),
    "mutate, not a review": ("/webhook/mutate", b"[]"),
}


def _compare(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers.get("content-type") == b.headers.get("content-type")
    assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
    assert a.json() == b.json()


@pytest.mark.parametrize("case", sorted(CASES))
def test_lean_and_full_paths_answer_alike(apps: tuple[TestClient, TestClient], case: str) -> None:
    lean, full = apps
    url, body = CASES[case]
    headers = {"content-type": "application/json"}
    a = lean.post(url, content=body, headers=headers)
    b = full.post(url, content=body, headers=headers)
    _compare(a, b)
    # And the cases mean what they say: a review is answered as a review, bad input as 400.
    if case in {"not JSON", "not a review", "duplicate keys", "mutate, not a review"}:
        assert a.status_code == 400
        assert a.json()["error"]["status"] == "INVALID_ARGUMENT"
    elif case == "image review, no containers":
        assert a.status_code == 400
    else:
        assert a.status_code == 200
    if case == "denied":
        assert a.json()["response"]["allowed"] is False


@pytest.mark.parametrize("path", ["/webhook/admission", "/webhook/imagepolicy", "/webhook/mutate"])
def test_an_oversized_body_is_refused_alike(apps: tuple[TestClient, TestClient], path: str) -> None:
    lean, full = apps
    big = _review(_pod(), padding="x" * (2 * LIMIT))
    a, b = lean.post(path, content=big), full.post(path, content=big)
    _compare(a, b)
    assert a.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    a, b = lean.post(path, content=chunks()), full.post(path, content=chunks())
    _compare(a, b)
    assert a.status_code == 413


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer cp_not-a-token", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
def test_bad_credentials_are_refused_alike(
    apps: tuple[TestClient, TestClient], authorization: str
) -> None:
    lean, full = apps
    url, body = CASES["denied"]
    headers = {"authorization": authorization}
    a, b = (
        lean.post(url, content=body, headers=headers),
        full.post(url, content=body, headers=headers),
    )
    _compare(a, b)
    assert a.status_code == 401
    assert a.headers["www-authenticate"].startswith("Bearer")


def _token(client: TestClient, name: str, role: str) -> str:
    r = client.post(f"/v1/projects/{PROJECT}/tokens", json={"name": name, "role": role})
    assert r.status_code == 200, r.text
    secret: str = r.json()["secret"]
    return secret


def _audit(client: TestClient, principal: str) -> list[dict[str, Any]]:
    r = client.get(
        f"/v1/projects/{PROJECT}/auditLogs",
        params={"principal": principal, "permission": "chainproof.admission.review"},
    )
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json().get("auditLogs", [])
    return entries


def test_the_permission_and_its_audit_are_the_routes(apps: tuple[TestClient, TestClient]) -> None:
    lean, full = apps
    url, body = CASES["denied"]
    # A caller holding another role is refused, with the permission named, on both paths,
    # and each path audits the refusal once (granted reviews are in the decision log).
    role = "roles/containeranalysis.occurrences.viewer"
    viewer = {"authorization": "Bearer " + _token(lean, "viewer", role)}
    before = _audit(lean, "token:viewer")
    a, b = (
        lean.post(url, content=body, headers=viewer),
        full.post(url, content=body, headers=viewer),
    )
    _compare(a, b)
    assert a.status_code == 403
    assert "chainproof.admission.review" in a.json()["message"]
    new = [e for e in _audit(lean, "token:viewer") if e not in before]
    assert len(new) == 2, new
    assert {(e["outcome"], e["method"]) for e in new} == {("denied", "POST /webhook/admission")}
    # The admission caller is answered alike.
    caller = {
        "authorization": "Bearer " + _token(lean, "caller", "roles/chainproof.admissionCaller")
    }
    a, b = (
        lean.post(url, content=body, headers=caller),
        full.post(url, content=body, headers=caller),
    )
    _compare(a, b)
    assert a.status_code == 200
    assert a.json()["response"]["allowed"] is False  # no policy: the unvetted image is denied


def test_other_methods_and_paths_go_on_to_the_routes(
    apps: tuple[TestClient, TestClient],
) -> None:
    lean, full = apps
    for method, path in [("GET", "/webhook/admission"), ("POST", "/webhook/admission/")]:
        a, b = lean.request(method, path), full.request(method, path)
        _compare(a, b)
        assert a.status_code >= 400  # neither is a review answered


def test_the_lean_path_answers_its_routes_itself(apps: tuple[TestClient, TestClient]) -> None:
    """Without this, the comparisons above would pass with the lean path switched off."""
    _, full = apps
    app = full.app
    assert isinstance(app, FastAPI)
    reached: list[str] = []

    async def routes(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(f"{scope['method']} {scope['path']}")
        await app.router(scope, receive, send)

    lean = LeanWebhooks(
        routes,
        lean_routes(
            app,
            {
                "/webhook/admission": webhook.answer_admission,
                "/webhook/imagepolicy": webhook.answer_image_review,
                "/webhook/mutate": mutate.answer_mutation,
            },
        ),
    )

    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette's app does before its middleware
        await lean(scope, receive, send)

    client = TestClient(stack, raise_server_exceptions=False)
    for case in ("denied", "image review", "mutate, resolution off", "not JSON"):
        url, body = CASES[case]
        expected = full.post(url, content=body)
        _compare(client.post(url, content=body), expected)
    assert reached == []
    client.get("/webhook/admission")  # (the bare router answers a 405 as an error)
    client.post("/webhook/admission/", content=b"{}")
    assert reached == ["GET /webhook/admission", "POST /webhook/admission/"]


def test_a_lean_route_must_exist_and_declare_a_permission(
    apps: tuple[TestClient, TestClient],
) -> None:
    _, full = apps
    app = full.app
    assert isinstance(app, FastAPI)
    with pytest.raises(ValueError, match="no POST route /webhook/nothing"):
        lean_routes(app, {"/webhook/nothing": webhook.answer_admission})
    with pytest.raises(ValueError, match="must declare a permission"):
        lean_routes(app, {"/v1/projects/{project}:testIamPermissions": webhook.answer_admission})
