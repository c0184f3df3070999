"""Violations over REST: one project's, open by default or ``state=all``, filtered by
cluster and namespace, paged with sealed tokens bound to the query, and bad input refused
with a 400 that names what was wrong; another project sees none of them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore
from contract.runtime_samples import T0, violation

BASE = "/v1/projects/p/violations"


@pytest.fixture
def client() -> Iterator[TestClient]:
    store = MemoryStore()
    rows = [violation(f"v{i}", f"web-{i}", T0 + timedelta(seconds=i)) for i in range(5)]
    rows.append(replace(violation("edge1", "api-0", T0), cluster="edge", namespace="ops"))
    rows.append(violation("gone", "old-0", T0, closed=T0 + timedelta(hours=1), close_reason="x"))
    rows.append(violation("q1", "web-q", T0, project="q", cluster="other"))

    async def seed() -> None:
        async with store.session() as s:
            await s.violations.put_many(rows)

    asyncio.run(seed())
    settings = load_settings(
        grpc_enabled=False, runtime={"continuous_validation": {"enabled": False}}
    )
    with TestClient(build_app(settings, store), raise_server_exceptions=False) as c:
        yield c


def ids(c: TestClient, **params: str) -> list[str]:
    r = c.get(BASE, params=params)
    assert r.status_code == 200, r.text
    return [v["id"] for v in r.json()["violations"]]


def test_lists_filters_and_shape(client: TestClient) -> None:
    assert ids(client) == ["v4", "v3", "v2", "v1", "v0", "edge1"]
    assert "gone" in ids(client, state="all")
    assert ids(client, cluster="edge") == ["edge1"]
    assert ids(client, namespace="ops") == ["edge1"]
    assert ids(client, cluster="prod", namespace="ops") == []
    first = client.get(BASE).json()["violations"][0]
    assert first["name"] == "projects/p/violations/v4"
    assert first["state"] == "OPEN" and first["closeTime"] is None
    assert first["podEvent"]["pod"] == "web-4"
    assert first["podEvent"]["images"][0]["checkResults"][0]["verdict"] == "NON_CONFORMANT"
    # Another project's violations stay there.
    r = client.get("/v1/projects/q/violations").json()
    assert [v["id"] for v in r["violations"]] == ["q1"]


def test_pages_follow_each_other_and_tokens_are_bound(client: TestClient) -> None:
    seen: list[str] = []
    token = ""
    while True:
        r = client.get(BASE, params={"pageSize": "2", "pageToken": token}).json()
        seen += [v["id"] for v in r["violations"]]
        token = r.get("nextPageToken", "")
        if not token:
            break
    assert seen == ["v4", "v3", "v2", "v1", "v0", "edge1"]
    first = client.get(BASE, params={"pageSize": "2"}).json()["nextPageToken"]
    # A token of this list means nothing to another filter or project.
    for url, params in (
        (BASE, {"pageToken": first, "state": "all"}),
        ("/v1/projects/q/violations", {"pageToken": first}),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 400 and "pageToken" in r.json()["message"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"state": "closed-ish"}, "state"),
        ({"cluster": "Not A Cluster"}, "cluster name"),
        ({"namespace": "n" * 64}, "namespace"),
        ({"pageSize": "-1"}, "pageSize"),
        ({"pageSize": "many"}, "pageSize"),
        ({"pageToken": "garbage"}, "pageToken"),
    ],
)
def test_bad_queries_are_400_saying_why(
    client: TestClient, params: dict[str, str], says: str
) -> None:
    r = client.get(BASE, params=params)
    assert r.status_code == 400, r.text
    assert says in r.json()["message"]
