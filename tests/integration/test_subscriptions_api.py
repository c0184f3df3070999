"""Subscriptions over REST: create (a generated webhook secret shown once), get, list with
kind and event-type filters, delete, the per-project bound, every bad input refused with a
400 that says what was wrong, and a subscription's delivery log with its dead letters, filled
by the server's own notifier."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.domain import webhook_signature
from chainproof.store.memory import MemoryStore

BASE = "/v1/projects/p/subscriptions"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = load_settings(
        grpc_enabled=False,
        notifications={
            "max_subscriptions_per_project": 3,
            "max_attempts": 1,
            "poll_seconds": 0.05,
        },
    )
    with TestClient(build_app(settings, MemoryStore()), raise_server_exceptions=False) as c:
        yield c


def create(c: TestClient, sid: str, body: dict[str, Any]) -> Any:
    return c.post(BASE, params={"subscriptionId": sid}, json=body)


def test_create_get_list_delete(client: TestClient) -> None:
    r = create(
        client,
        "hook",
        {
            "description": "security team",
            "kinds": ["occurrence", "violation"],
            "eventTypes": ["occurrence.created", "dev.chainproof.violation.opened"],
            "http": {"url": "https://hooks.example/cp"},
        },
    )
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["name"] == "projects/p/subscriptions/hook"
    assert made["kinds"] == ["occurrence", "violation"]
    assert made["eventTypes"] == ["occurrence.created", "violation.opened"]
    secret = made["http"]["secret"]
    assert webhook_signature.check_secret(secret) == secret  # generated, shown this once

    mine = webhook_signature.new_secret()
    r = create(client, "bus", {"nats": {"subject": "chainproof.events.p"}, "kinds": ["decision"]})
    assert r.status_code == 200, r.text
    r = create(client, "all", {"http": {"url": "http://127.0.0.1:9/x", "secret": mine}})
    assert r.status_code == 200 and "secret" not in r.json()["http"]

    got = client.get(f"{BASE}/hook").json()
    assert got["http"] == {"url": "https://hooks.example/cp"} and secret not in str(got)
    listed = client.get(BASE).json()["subscriptions"]
    assert [s["name"].rsplit("/", 1)[1] for s in listed] == ["all", "bus", "hook"]
    assert mine not in str(listed) and secret not in str(listed)

    def ids(**params: str) -> list[str]:
        r = client.get(BASE, params=params)
        assert r.status_code == 200, r.text
        return [s["name"].rsplit("/", 1)[1] for s in r.json()["subscriptions"]]

    assert ids(kind="decision") == ["all", "bus"]
    assert ids(kind="occurrence") == ["all", "hook"]
    assert ids(eventType="occurrence.deleted") == ["all"]
    assert ids(eventType="violation.opened") == ["all", "hook"]
    assert ids(kind="occurrence", eventType="occurrence.created") == ["all", "hook"]

    assert client.delete(f"{BASE}/bus").status_code == 200
    assert client.get(f"{BASE}/bus").status_code == 404
    assert client.delete(f"{BASE}/bus").status_code == 404
    assert create(client, "hook", {"nats": {"subject": "x"}}).status_code == 409


def test_the_per_project_bound_is_refused_with_a_reason(client: TestClient) -> None:
    for i in range(3):
        assert create(client, f"s{i}", {"nats": {"subject": f"s.{i}"}}).status_code == 200
    r = create(client, "s3", {"nats": {"subject": "s.3"}})
    assert r.status_code == 400
    assert "holds 3 subscriptions already" in r.json()["error"]["message"]
    # Another project has its own bound.
    r = client.post(
        "/v1/projects/q/subscriptions",
        params={"subscriptionId": "s"},
        json={"nats": {"subject": "q"}},
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("sid", "body", "says"),
    [
        ("", {"nats": {"subject": "x"}}, "subscriptionId is required"),
        ("a b", {"nats": {"subject": "x"}}, "subscription ID"),
        ("s", [], "JSON object"),
        ("s", {"nats": {"subject": "x"}, "filter": "x"}, "unknown fields filter"),
        ("s", {}, "exactly one destination"),
        ("s", {"nats": {"subject": "x"}, "http": {"url": "https://a"}}, "exactly one destination"),
        ("s", {"http": {"url": "ftp://a/b"}}, "not an absolute http:// or https:// URL"),
        ("s", {"http": {"url": "/relative"}}, "not an absolute"),
        ("s", {"http": {"url": "https://u:pw@hooks.example/"}}, "user name or password"),
        ("s", {"http": {"url": "http://hooks.example/"}}, "plain http"),
        # Server-side request forgery: the cloud metadata service, however it is spelled.
        ("s", {"http": {"url": "https://169.254.169.254/latest/"}}, "169.254.0.0/16"),
        ("s", {"http": {"url": "https://[::ffff:169.254.169.254]/"}}, "169.254.0.0/16"),
        ("s", {"http": {"url": "https://[fd00:ec2::254]/"}}, "fd00:ec2::254"),
        ("s", {"http": {"url": "https://0.0.0.0:8080/"}}, "0.0.0.0/8"),
        ("s", {"http": {"url": "https://a/", "secret": "hunter2"}}, "whsec_"),
        ("s", {"http": {"url": "https://a/", "secret": "whsec_AAAA"}}, "24 random bytes"),
        ("s", {"http": {"url": "https://a/", "token": "x"}}, "http must be"),
        ("s", {"http": {"url": "https://a/" + "x" * 3000}}, "longer than 2048"),
        ("s", {"nats": {"subject": "events.>"}}, "not a NATS subject"),
        ("s", {"nats": {"subject": "a..b"}}, "not a NATS subject"),
        ("s", {"nats": {"subject": "x", "servers": "nats://evil:4222"}}, "server's own"),
        ("s", {"nats": {"subject": "x"}, "kinds": ["occurrences"]}, "unknown event kind"),
        ("s", {"nats": {"subject": "x"}, "kinds": "occurrence"}, "kinds must be a list"),
        ("s", {"nats": {"subject": "x"}, "eventTypes": ["occurrence.made"]}, "unknown event type"),
        (
            "s",
            {"nats": {"subject": "x"}, "kinds": ["decision"], "eventTypes": ["occurrence.created"]},
            "would never receive them",
        ),
        ("s", {"nats": {"subject": "x"}, "description": 7}, "description must be a string"),
    ],
)
def test_bad_subscriptions_are_400_saying_why(
    client: TestClient, sid: str, body: Any, says: str
) -> None:
    r = client.post(BASE, params={"subscriptionId": sid}, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert says in error["message"] + " ".join(str(d) for d in error.get("details", []))
    assert client.get(BASE).json()["subscriptions"] == []


def test_bad_list_and_delivery_queries_are_400(client: TestClient) -> None:
    assert client.get(BASE, params={"kind": "pods"}).status_code == 400
    assert client.get(BASE, params={"eventType": "nope"}).status_code == 400
    r = client.get(BASE, params={"kind": "decision", "eventType": "occurrence.created"})
    assert r.status_code == 400 and "not of kind decision" in r.text
    assert create(client, "s", {"nats": {"subject": "x"}}).status_code == 200
    assert client.get(f"{BASE}/s/deliveries", params={"state": "lost"}).status_code == 400
    assert client.get(f"{BASE}/s/deliveries", params={"pageSize": "0"}).status_code == 400
    assert client.get(f"{BASE}/s/deliveries", params={"pageSize": "x"}).status_code == 400
    assert client.get(f"{BASE}/nobody/deliveries").status_code == 404


def test_an_unreachable_receiver_ends_in_the_dead_letter_list(client: TestClient) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    assert create(client, "down", {"http": {"url": url}, "kinds": ["note"]}).status_code == 200
    r = client.post("/v1/projects/p/notes", params={"noteId": "n1"}, json={"vulnerability": {}})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while True:
        dead = client.get(f"{BASE}/down/deliveries", params={"state": "dead"}).json()
        if dead["deliveries"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [letter] = dead["deliveries"]
    assert letter["subject"] == "projects/p/notes/n1" and letter["state"] == "dead"
    assert letter["attempts"] == 1 and url in letter["lastError"]
    every = client.get(f"{BASE}/down/deliveries").json()["deliveries"]
    assert every == [letter]
