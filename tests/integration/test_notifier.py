"""The notifier with in-memory repositories and a real HTTP receiver: routing by
subscription filter, delivery surviving a down receiver, order per subject, dead letters."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web

from chainproof.domain import webhook_signature as ws
from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.events import ChangeEvent, EventType
from chainproof.services.judge.notifier import Notifier
from chainproof.sinks.http_webhook import HttpWebhookSink
from chainproof.sinks.port import Sink
from chainproof.store.memory_runtime import MemoryRuntimeStore
from chainproof.store.runtime_port import SubscriptionRecord

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(t: EventType, subject: str) -> ChangeEvent:
    return ChangeEvent(str(uuid.uuid4()), "p", t, subject, T0, {"name": subject})


async def test_delivery_survives_a_down_receiver_in_order_once() -> None:
    store = MemoryRuntimeStore()
    now = [T0]
    secret = ws.new_secret()
    port = _port()
    url = f"http://127.0.0.1:{port}/hook"
    async with store.session() as repos:
        await repos.subscriptions.put(
            SubscriptionRecord(
                "p", "occ", ("occurrence",), (), {"http": {"url": url, "secret": secret}}, T0
            )
        )
        await repos.subscriptions.put(
            SubscriptionRecord(
                "p",
                "refuse",
                ("violation",),
                (),
                {"http": {"url": url + "?refuse=1", "secret": secret}},
                T0,
            )
        )
        await repos.subscriptions.put(
            SubscriptionRecord("other", "x", (), (), {"http": {"url": url, "secret": secret}}, T0)
        )
        a1 = _event(EventType.OCCURRENCE_CREATED, "projects/p/occurrences/a")
        b1 = _event(EventType.OCCURRENCE_CREATED, "projects/p/occurrences/b")
        a2 = _event(EventType.OCCURRENCE_DELETED, "projects/p/occurrences/a")
        v1 = _event(EventType.VIOLATION_OPENED, "projects/p/violations/v")
        await repos.outbox.append([a1, b1, a2, v1])

    def sink_for(sub: SubscriptionRecord) -> Sink:
        return HttpWebhookSink(
            sub.sink["http"]["url"],
            sub.sink["http"]["secret"],
            timeout_s=2,
            clock=lambda: datetime.now(UTC),
        )

    notifier = Notifier(
        store.session,
        sink_for,
        lambda: now[0],
        source="//test",
        retry=RetryPolicy(base_s=10, cap_s=60, max_attempts=5),
        jitter=lambda: 0.0,
    )
    assert await notifier.route() == 4
    assert await notifier.route() == 0
    # The receiver is down: nothing is delivered; a1 and b1 wait 10 s, a2 waits behind a1.
    assert await notifier.deliver_due() == 0
    async with store.session() as repos:
        pending = await repos.deliveries.list_rows("p", "occ", "pending", 10)
    assert [d.event_id for d in pending] == [a1.event_id, b1.event_id, a2.event_id]
    assert pending[0].attempts == 1 and pending[0].next_attempt == T0 + timedelta(seconds=10)
    assert pending[2].attempts == 0

    got: list[tuple[str, bool]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        got.append(
            (
                request.headers["webhook-id"],
                ws.verify(secret, dict(request.headers), body, datetime.now(UTC)),
            )
        )
        return web.Response(status=400 if request.query.get("refuse") else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await notifier.deliver_due() == 0  # not due yet
        now[0] = T0 + timedelta(seconds=11)
        assert await notifier.deliver_due() == 2  # a1 and b1; a2 was behind a1
        assert await notifier.deliver_due() == 1  # now a2
        assert await notifier.deliver_due() == 0
    finally:
        await notifier.close()
        await runner.cleanup()
    occ_ids = [i for i, ok in got if ok and i != v1.event_id]
    assert occ_ids == [a1.event_id, b1.event_id, a2.event_id]
    assert all(ok for _, ok in got)
    async with store.session() as repos:
        dead = await repos.deliveries.list_rows("p", "refuse", "dead", 10)
        others = await repos.deliveries.list_rows("other", "x", None, 10)
    # The receiver refused the violation event with a 400: dead-lettered on the first try.
    assert [d.event_id for d in dead] == [v1.event_id] and "HTTP 400" in dead[0].last_error
    assert others == []  # another project's subscription sees none of p's events
