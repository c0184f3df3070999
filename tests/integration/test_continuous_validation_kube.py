"""Continuous validation end to end, on a real kube-apiserver, a real NATS JetStream and a
real HTTP receiver, with the server's own watcher, re-judging worker and notifier:

1. a Pod is admitted by the webhook (the policy allows what has no finding above MEDIUM),
   and its status is set as a kubelet would (``imageID``); the watcher confirms the row;
2. a real Trivy report with a CRITICAL finding is ingested (``:ingest``) → a violation opens
   within seconds, a Warning Event appears on the pod, and the ``violation.opened``
   CloudEvent reaches both the HMAC-signed webhook and the JetStream subject;
3. an OpenVEX ``not_affected`` for that finding arrives → the violation closes, and
   ``violation.closed`` is delivered too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import nats
import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.domain import webhook_signature
from integration.test_ingest_api import openvex
from integration.test_webhook_support import admission_review
from kube import KubeApiServer, running_kube_apiserver

NS = "shop"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
IMAGE = "registry.example/team/buster@sha256:" + "e" * 64
DIGEST = IMAGE.rsplit("@", 1)[1]
POLICY = {
    "defaultAdmissionRule": {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": {
            "vulnerabilities": {"maximumFixableSeverity": "MEDIUM", "requireScan": False}
        },
    }
}
#: This helper's port range (18100-18199).
HOOK_PORT = 18111


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        yield server


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"CHAINPROOF_CV_{uuid.uuid4().hex[:8].upper()}"
    subject = f"chainproof.cv.{name.lower()}"

    async def make() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().add_stream(name=name, subjects=[subject])
        await nc.close()

    async def drop() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()

    anyio.run(make)
    try:
        yield subject
    finally:
        anyio.run(drop)


def published(subject: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(subject, durable=None)
            try:
                msgs = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                return []
            return [json.loads(m.data) for m in msgs]
        finally:
            await nc.close()

    return anyio.run(read)


def wait_for(check: Any, what: str, within_s: float = 20.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_critical_finding_opens_a_violation_and_vex_closes_it(
    kube: KubeApiServer, tmp_path: Path, receiver: Receiver, stream: str
) -> None:
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
    token = tmp_path / "token"
    token.write_text(kube.token)
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/chainproof.db",
        grpc_enabled=False,
        admission={"project": "prod", "cluster": "prod"},
        runtime={
            "clusters": [
                {
                    "name": "prod",
                    "url": kube.url,
                    "token_file": str(token),
                    "ca_file": str(kube.ca_file),
                }
            ],
            "continuous_validation": {"kubernetes_events": True, "poll_seconds": 0.1},
        },
        notifications={"poll_seconds": 0.1, "nats_servers": "nats://127.0.0.1:4222"},
    )
    with TestClient(build_app(settings)) as app:
        assert app.put("/v1/projects/prod/policy", json=POLICY).status_code == 200
        hook = app.post(
            "/v1/projects/prod/subscriptions",
            params={"subscriptionId": "hook"},
            json={"kinds": ["violation"], "http": {"url": f"http://127.0.0.1:{HOOK_PORT}/cp"}},
        )
        assert hook.status_code == 200, hook.text
        secret = hook.json()["http"]["secret"]
        bus = app.post(
            "/v1/projects/prod/subscriptions",
            params={"subscriptionId": "bus"},
            json={"kinds": ["violation"], "nats": {"subject": stream}},
        )
        assert bus.status_code == 200, bus.text

        # 1. Admitted; the kubelet reports what runs; the watcher confirms it.
        r = app.post("/webhook/admission", json=admission_review(made.json(), namespace=NS))
        assert r.json()["response"]["allowed"] is True, r.text
        pod = k.get(f"/api/v1/namespaces/{NS}/pods/web-1").json()
        pod["status"] = {
            "phase": "Running",
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
        assert k.put(f"/api/v1/namespaces/{NS}/pods/web-1/status", json=pod).status_code == 200

        def violations(state: str = "open") -> list[dict[str, Any]]:
            got = app.get("/v1/projects/prod/violations", params={"state": state})
            assert got.status_code == 200, got.text
            return list(got.json()["violations"])

        time.sleep(1.0)  # the watcher and the first sweep: nothing violates yet
        assert violations() == []

        # 2. A CRITICAL finding arrives.
        report = (FIXTURES / "scans/trivy/debian-buster.json").read_bytes()
        started = time.monotonic()
        r = app.post("/v1/projects/prod:ingest", content=report, params={"resourceUri": IMAGE})
        assert r.status_code == 200, r.text
        [opened] = wait_for(violations, "the violation to open", within_s=10)
        took = time.monotonic() - started
        assert took < 10, f"the violation took {took:.1f}s"
        assert (opened["cluster"], opened["podEvent"]["pod"]) == ("prod", "web-1")
        assert opened["podEvent"]["podNamespace"] == NS
        assert "CVE-2019-18224" in opened["podEvent"]["explanation"]
        assert opened["cause"].startswith("occurrence.created projects/prod/occurrences/")

        def pod_events() -> list[dict[str, Any]]:
            got = k.get(
                f"/api/v1/namespaces/{NS}/events",
                params={"fieldSelector": "involvedObject.name=web-1"},
            ).json()
            return [e for e in got["items"] if e.get("source", {}).get("component") == "chainproof"]

        [event] = wait_for(pod_events, "a Kubernetes Event on the pod")
        assert event["reason"] == "ViolatesPolicy" and event["type"] == "Warning"
        assert opened["name"] in event["message"]

        wait_for(lambda: "dev.chainproof.violation.opened" in receiver.types(), "the webhook")
        headers, body = receiver.got[0]
        assert webhook_signature.verify(secret, headers, body, datetime.now(UTC))
        assert json.loads(body)["data"]["id"] == opened["id"]
        on_bus = wait_for(lambda: published(stream), "the NATS JetStream message")
        assert on_bus[0]["type"] == "dev.chainproof.violation.opened"
        assert on_bus[0]["id"] == json.loads(body)["id"]  # the same event, the same ID

        # 3. VEX: not affected → the violation closes.
        r = app.post(
            "/v1/projects/prod:ingest",
            content=openvex("pkg:deb/debian/libidn2-0"),
            params={"resourceUri": IMAGE},
        )
        assert r.status_code == 200 and r.json()["vexApplied"] == 1, r.text
        wait_for(lambda: violations() == [], "the violation to close", within_s=10)
        [closed] = violations("all")
        assert closed["state"] == "CLOSED" and closed["closeTime"]
        wait_for(lambda: "dev.chainproof.violation.closed" in receiver.types(), "the closing event")
        closing = wait_for(
            lambda: [e for e in pod_events() if e["reason"] == "ConformsToPolicy"],
            "the closing Event on the pod",
        )
        assert closing[0]["type"] == "Normal"
