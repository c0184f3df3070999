"""Delivery that survives the server: real ``chainproof serve`` processes on PostgreSQL,
killed with SIGKILL, a real HTTP receiver and NATS JetStream.

* Killed between commit and delivery: the occurrence is committed (with its outbox event),
  its webhook delivery is in flight (the receiver holds the request unanswered) when the
  server is killed. After a restart the event is delivered again, with the same event ID and
  a valid signature, and then once only (the delivery is recorded with one attempt); the
  NATS subscriber has it exactly once (JetStream drops a re-publish by ``Nats-Msg-Id``).
* A receiver that is down: the delivery is retried with backoff until it comes up.
* Two replicas: only the leader delivers; when it is killed the other takes over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from chainproof.domain import webhook_signature

pytestmark = pytest.mark.postgres

CHAINPROOF = Path(sys.executable).parent / "chainproof"
NATS = "nats://127.0.0.1:4222"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], what: str, within_s: float = 60.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------- the receiver


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: bool = False


@dataclass
class Receiver:
    """An HTTP webhook receiver on loopback. ``hold`` makes it take requests and leave them
    unanswered until released (a delivery in flight); otherwise it answers 204."""

    port: int
    received: list[Received] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                got = Received({k.lower(): v for k, v in self.headers.items()}, body)
                receiver.received.append(got)
                if receiver.hold.is_set():
                    receiver.release.wait(120)
                    return  # the sender is gone by now; nothing to answer
                self.send_response(204)
                self.end_headers()
                got.answered = True

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def events(self, event_type: str) -> list[Received]:
        return [r for r in self.received if json.loads(r.body)["type"] == event_type]


# ---------------------------------------------------------------------------- the server


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def is_leader(self) -> bool:
        r = httpx.get(f"{self.url}/metrics", timeout=10)
        return "chainproof_runtime_leader 1.0" in r.text


def serve(database_url: str, log: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "CHAINPROOF_DATABASE_URL": database_url,
        "CHAINPROOF_PORT": str(port),
        "CHAINPROOF_GRPC_ENABLED": "false",
        "CHAINPROOF_LOG_FORMAT": "json",
        "CHAINPROOF_NOTIFICATIONS__POLL_SECONDS": "0.05",
        "CHAINPROOF_NOTIFICATIONS__RETRY_BASE_SECONDS": "0.2",
        "CHAINPROOF_NOTIFICATIONS__RETRY_CAP_SECONDS": "1",
        "CHAINPROOF_NOTIFICATIONS__HTTP_TIMEOUT_SECONDS": "100",
        "CHAINPROOF_NOTIFICATIONS__MAX_ATTEMPTS": "1000",
        "CHAINPROOF_RUNTIME__LEADER_CHECK_SECONDS": "0.2",
    }
    out = log.open("ab")
    process = subprocess.Popen(
        [str(CHAINPROOF), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"chainproof serve exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, "chainproof serve to answer")
    return server


# ---------------------------------------------------------------------------- helpers


def create_occurrence(api: httpx.Client, project: str, note_id: str) -> str:
    r = api.post(f"/v1/projects/{project}/notes", params={"noteId": note_id},
                 json={"vulnerability": {"severity": "CRITICAL"}})  # fmt: skip
    assert r.status_code in (200, 409), r.text
    r = api.post(
        f"/v1/projects/{project}/occurrences",
        json={
            "resourceUri": "registry.example/web@sha256:" + "c" * 64,
            "noteName": f"projects/{project}/notes/{note_id}",
            "vulnerability": {
                "severity": "CRITICAL",
                "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "zlib"}],
            },
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["name"])


def subscribe(api: httpx.Client, project: str, sid: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/v1/projects/{project}/subscriptions", params={"subscriptionId": sid}, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def deliveries(api: httpx.Client, project: str, sid: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/projects/{project}/subscriptions/{sid}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def nats_stream(subject: str) -> str:
    stream = f"CP_RESTART_{uuid.uuid4().hex[:8].upper()}"
    nc = await nats.connect(NATS)
    try:
        await nc.jetstream().add_stream(name=stream, subjects=[subject])
    finally:
        await nc.close()
    return stream


async def nats_messages(stream: str, subject: str) -> list[Any]:
    nc = await nats.connect(NATS)
    try:
        js = nc.jetstream()
        count = (await js.stream_info(stream)).state.messages
        if not count:
            return []
        sub = await js.pull_subscribe(subject, durable=None, stream=stream)
        return list(await sub.fetch(count, timeout=10))
    finally:
        await nc.close()


async def drop_stream(stream: str) -> None:
    nc = await nats.connect(NATS)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port()).start()
    yield r
    r.stop()


# ---------------------------------------------------------------------------- the tests


def test_killed_between_commit_and_delivery_delivers_after_restart_once_per_subscriber(
    fresh_pg_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    project = "restart"
    subject = f"chainproof.restart.{uuid.uuid4().hex[:8]}"
    stream = asyncio.run(nats_stream(subject))
    log = tmp_path / "serve.log"
    server = serve(fresh_pg_url, log)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            hook = subscribe(api, project, "hook", {
                "kinds": ["occurrence"], "http": {"url": f"http://127.0.0.1:{receiver.port}/h"},
            })  # fmt: skip
            secret = hook["http"]["secret"]
            subscribe(api, project, "bus", {"kinds": ["occurrence"], "nats": {"subject": subject}})
            receiver.hold.set()  # deliveries arrive and stay unanswered
            name = create_occurrence(api, project, "cve-1")
            # Committed, and its delivery is in flight: the receiver holds the request.
            wait_for(lambda: receiver.events("dev.chainproof.occurrence.created"), "in flight")
        server.kill()
        first = receiver.received[0]
        assert not first.answered
        receiver.release.set()
        receiver.hold.clear()

        server = serve(fresh_pg_url, log)
        with httpx.Client(base_url=server.url, timeout=30) as api:

            def delivered() -> list[dict[str, Any]]:
                rows = deliveries(api, project, "hook")
                return rows if rows and rows[0]["state"] == "delivered" else []

            [row] = wait_for(delivered, "the delivery after the restart")
            [bus] = wait_for(
                lambda: [d for d in deliveries(api, project, "bus") if d["state"] == "delivered"],
                "the NATS delivery",
            )
    finally:
        server.stop()

    copies = receiver.events("dev.chainproof.occurrence.created")
    event_id = first.headers["webhook-id"]
    # Every copy is the same event, with the same ID, signed with the subscription's secret.
    assert {c.headers["webhook-id"] for c in copies} == {event_id}
    now = datetime.now(UTC)
    for c in copies:
        assert webhook_signature.verify(secret, c.headers, c.body, now)
        event = json.loads(c.body)
        assert event["id"] == event_id and event["subject"] == name
        assert event["data"]["name"] == name and event["data"]["kind"] == "VULNERABILITY"
        assert event["data"]["notificationTime"].endswith("Z")
    # Delivered once after the restart: one answered copy, one recorded attempt.
    assert [c.answered for c in copies] == [False, True]
    assert row["eventId"] == event_id and row["attempts"] == 1
    # NATS: the same event, exactly once in the stream.
    messages = asyncio.run(nats_messages(stream, subject))
    asyncio.run(drop_stream(stream))
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [event_id]
    assert json.loads(messages[0].data)["data"]["name"] == name
    assert bus["eventId"] == event_id


def test_a_down_receiver_gets_the_event_when_it_comes_up(fresh_pg_url: str, tmp_path: Path) -> None:
    project = "down"
    port = free_port()  # nothing listens there yet
    server = serve(fresh_pg_url, tmp_path / "serve.log")
    late: Receiver | None = None
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            subscribe(api, project, "late", {
                "kinds": ["occurrence"], "http": {"url": f"http://127.0.0.1:{port}/h"},
            })  # fmt: skip
            name = create_occurrence(api, project, "cve-2")

            def retrying() -> list[dict[str, Any]]:
                rows = deliveries(api, project, "late")
                return rows if rows and rows[0]["attempts"] >= 2 else []

            [pending] = wait_for(retrying, "failed attempts against the down receiver")
            assert pending["state"] == "pending" and "POST" in pending["lastError"]
            late = Receiver(port).start()

            def delivered() -> list[dict[str, Any]]:
                rows = deliveries(api, project, "late")
                return rows if rows[0]["state"] == "delivered" else []

            [row] = wait_for(delivered, "the delivery once the receiver is up")
    finally:
        server.stop()
        if late is not None:
            late.stop()
    assert late is not None
    [copy] = late.events("dev.chainproof.occurrence.created")
    assert json.loads(copy.body)["data"]["name"] == name and copy.answered
    assert row["attempts"] >= 3 and copy.headers["webhook-id"] == row["eventId"]


def test_the_follower_delivers_when_the_leader_is_killed(
    fresh_pg_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    project = "replicas"
    a = serve(fresh_pg_url, tmp_path / "a.log")
    b = serve(fresh_pg_url, tmp_path / "b.log")
    try:
        leader, follower = wait_for(
            lambda: (a, b) if a.is_leader() else (b, a) if b.is_leader() else None,
            "one replica to lead",
        )
        assert not follower.is_leader()
        leader.kill()
        with httpx.Client(base_url=follower.url, timeout=30) as api:
            subscribe(api, project, "hook", {
                "kinds": ["occurrence"], "http": {"url": f"http://127.0.0.1:{receiver.port}/h"},
            })  # fmt: skip
            name = create_occurrence(api, project, "cve-3")
            wait_for(follower.is_leader, "the follower to take over")
            wait_for(lambda: receiver.events("dev.chainproof.occurrence.created"), "delivery")
    finally:
        a.stop()
        b.stop()
    [copy] = receiver.events("dev.chainproof.occurrence.created")
    assert json.loads(copy.body)["data"]["name"] == name
