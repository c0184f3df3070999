"""The REST API: JSON mapping, error bodies, bad input. Every bad request gets a 4xx that says
what was wrong, and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore

D = "sha256:" + "9" * 64
ATT = {
    "serializedPayload": "cGF5bG9hZA==",
    "signatures": [{"signature": "c2ln", "publicKeyId": "k1"}],
}


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(grpc_enabled=False, max_body_bytes=64 * 1024), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/v1/projects/sec/notes?noteId=qa", json={"attestation": {}})
        yield c


def occurrences(c: TestClient) -> list[dict]:
    return (
        c.get("/v1/projects/app/occurrences", params={"pageSize": 1000})
        .json()
        .get("occurrences", [])
    )


def test_error_body_has_both_shapes(client: TestClient) -> None:
    r = client.get("/v1/projects/sec/notes/nope")
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == 5 and body["message"] == "note projects/sec/notes/nope does not exist"
    assert body["error"] == {
        "code": 404,
        "message": body["message"],
        "status": "NOT_FOUND",
        "details": [],
    }


def test_json_mapping_round_trip(client: TestClient) -> None:
    r = client.post(
        "/v1/projects/app/occurrences",
        json={
            "resourceUri": f"https://gcr.io/x/a@{D}",
            "noteName": "projects/sec/notes/qa",
            "attestation": ATT,
        },
    )
    assert r.status_code == 200, r.text
    occ = r.json()
    assert occ["kind"] == "ATTESTATION" and occ["attestation"] == ATT
    assert occ["createTime"].endswith("Z")
    # Enums by number are accepted too, as the official client sends them.
    r = client.post(
        "/v1/projects/sec/notes?noteId=b", json={"kind": 2, "build": {"builderVersion": "1"}}
    )
    assert r.status_code == 200 and r.json()["kind"] == "BUILD"
    # The scheme does not hide the occurrence from a filter without it.
    listed = client.get(
        "/v1/projects/app/occurrences", params={"filter": f'resourceUrl="gcr.io/x/a@{D}"'}
    )
    assert [o["name"] for o in listed.json()["occurrences"]] == [occ["name"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("post", "/v1/projects/app/occurrences", b"{not json", 400, "not valid JSON"),
        ("post", "/v1/projects/app/occurrences", b"[1]", 400, "must be a JSON object"),
        ("post", "/v1/projects/app/occurrences", b"", 400, "body is empty"),
        ("post", "/v1/projects/app/occurrences", b"\xff\xfe{}", 400, "not UTF-8"),
        ("post", "/v1/projects/app/occurrences", b'{"resourceUri": 5}', 400, "resourceUri"),
        ("post", "/v1/projects/app/occurrences", b'{"bogusField": 1}', 400, "bogusField"),
        (
            "post",
            "/v1/projects/sec/notes?noteId=a%2Fb",
            b'{"attestation":{}}',
            400,
            "must not contain '/'",
        ),
        (
            "post",
            "/v1/projects/sec/notes?noteId=%E2%80%AEx",
            b'{"attestation":{}}',
            400,
            "not valid",
        ),
        ("post", "/v1/projects/sec/notes", b'{"attestation":{}}', 400, "noteId is required"),
        ("get", "/v1/projects/sec/notes/a%2Fb", None, 400, "must not contain '/'"),
        ("get", "/v1/projects/bad%20project/notes", None, 400, "not a valid project ID"),
        (
            "get",
            "/v1/projects/app/occurrences?filter=createTime%3D%22x%22",
            None,
            400,
            "not supported",
        ),
        (
            "get",
            "/v1/projects/app/occurrences?pageToken=forged",
            None,
            400,
            "pageToken is not valid",
        ),
        (
            "get",
            "/v1/projects/app/occurrences?pageSize=ten",
            None,
            400,
            "pageSize must be an integer",
        ),
        ("get", "/v1/projects/app/occurrences?pageSize=-1", None, 400, "negative"),
        (
            "patch",
            "/v1/projects/sec/notes/qa?updateMask=nope",
            b'{"attestation":{}}',
            400,
            "names no field",
        ),
        (
            "post",
            "/v1/projects/app/occurrences:batchCreate",
            b'{"occurrences": {}}',
            400,
            "JSON array",
        ),
        ("post", "/v1/projects/sec/notes:batchCreate", b'{"notes": []}', 400, "mapping note IDs"),
        ("delete", "/v1/projects/app/occurrences/nope", None, 404, "does not exist"),
        ("put", "/v1/projects/sec/notes/qa", b"{}", 405, "not allowed"),
        ("get", "/v2/whatever", None, 404, "no route"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    client: TestClient, method: str, path: str, body: bytes | None, status: int, says: str
) -> None:
    r = client.request(method.upper(), path, content=body)
    assert r.status_code == status, r.text
    assert says in r.json()["message"]
    assert occurrences(client) == []


def test_oversized_body_is_refused_with_413(client: TestClient) -> None:
    big = b'{"resourceUri": "' + b"x" * (70 * 1024) + b'"}'
    r = client.post("/v1/projects/app/occurrences", content=big)
    assert r.status_code == 413
    assert "over the limit of 65536 bytes" in r.json()["message"]
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_oversized_chunked_body_is_refused_too(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"resourceUri": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    r = client.post("/v1/projects/app/occurrences", content=chunks())
    assert r.status_code == 413


def test_bad_batch_leaves_nothing(client: TestClient) -> None:
    good = {
        "resourceUri": f"gcr.io/x/a@{D}",
        "noteName": "projects/sec/notes/qa",
        "attestation": ATT,
    }
    r = client.post(
        "/v1/projects/app/occurrences:batchCreate",
        json={"occurrences": [good, {**good, "attestation": {"signatures": []}}, good]},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["message"].startswith("1 of 3 occurrences are invalid; nothing was created")
    violations = body["error"]["details"][0]["fieldViolations"]
    assert violations[0]["description"].startswith("occurrences[1]: attestation.serializedPayload")
    assert occurrences(client) == []


def test_update_mask_and_immutability_over_rest(client: TestClient) -> None:
    occ = client.post(
        "/v1/projects/app/occurrences",
        json={
            "resourceUri": f"gcr.io/x/a@{D}",
            "noteName": "projects/sec/notes/qa",
            "attestation": ATT,
        },
    ).json()
    path = "/v1/" + occ["name"]
    r = client.patch(path, params={"updateMask": "remediation"}, json={"remediation": "upgrade"})
    assert r.status_code == 200 and r.json()["remediation"] == "upgrade"
    assert r.json()["attestation"] == ATT
    r = client.patch(path, params={"updateMask": "resourceUri"}, json={"resourceUri": "other"})
    assert r.status_code == 400 and "immutable" in r.json()["message"]


def test_nul_is_refused_for_every_backend(client: TestClient) -> None:
    r = client.post(
        "/v1/projects/sec/notes?noteId=nul",
        json={"shortDescription": "a\u0000b", "attestation": {}},
    )
    assert r.status_code == 400
    assert "U+0000" in r.json()["message"]
    assert client.get("/v1/projects/sec/notes/nul").status_code == 404


def test_odd_unicode_is_stored_exactly(client: TestClient) -> None:
    text = "héllo \u202e 🚀 \U0001f600 \ufeff end"
    r = client.post(
        "/v1/projects/sec/notes?noteId=uni", json={"shortDescription": text, "attestation": {}}
    )
    assert r.status_code == 200
    assert client.get("/v1/projects/sec/notes/uni").json()["shortDescription"] == text


def test_ops_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert (
        'chainproof_http_requests_total{method="POST",route="/v1/projects/{project}/notes"'
        in metrics
    )
    spec = client.get("/openapi.json").json()
    assert "/v1/projects/{project}/occurrences:batchCreate" in spec["paths"]


def test_v1alpha1_prefix_accepts_the_walkthrough(client: TestClient) -> None:
    r = client.post(
        "/v1alpha1/projects/image-signing/notes?noteId=qa",
        json={
            "name": "projects/image-signing/notes/qa",
            "shortDescription": "Image Signing Authority",
            "kind": "ATTESTATION_AUTHORITY",
            "attestationAuthority": {"hint": {"humanReadableName": "qa"}},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "ATTESTATION"
