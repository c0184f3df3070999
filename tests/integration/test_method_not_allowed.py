"""A 405 says which methods the path does serve, in ``Allow`` (RFC 9110 §15.5.6; issue 9
item 19). Before, no ``Allow`` header was sent at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(database_url="memory://", grpc_enabled=False))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/projects/p/policy", "GET, PUT"),
        ("DELETE", "/v1/projects/p/notes", "GET, POST"),
        ("PUT", "/v1/projects/p/notes/n", "DELETE, GET, PATCH"),
        ("GET", "/webhook/admission", "POST"),
    ],
)
def test_405_names_the_allowed_methods(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert r.json()["error"]["status"] == "UNIMPLEMENTED"
    assert allow.replace(", ", " or ") in r.json()["message"]
