"""The delivery sinks against real receivers: an HTTP server that checks the HMAC
signature and reads the CloudEvent with the SDK, and the NATS JetStream server on
127.0.0.1:4222 (each test makes and deletes its own stream)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime

import nats
import pytest
from aiohttp import web
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat

from chainproof.domain import webhook_signature as ws
from chainproof.domain.events import ChangeEvent, EventType, occurrence_notice, structured_body
from chainproof.sinks.http_webhook import HttpWebhookSink
from chainproof.sinks.nats_jetstream import NatsJetStreamSink
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _outgoing() -> OutgoingEvent:
    name = "projects/p/occurrences/abc"
    event = ChangeEvent(
        str(uuid.uuid4()),
        "p",
        EventType.OCCURRENCE_CREATED,
        name,
        T0,
        occurrence_notice(name, "VULNERABILITY", T0),
    )
    return OutgoingEvent(event.event_id, name, event.type.value, structured_body(event, "//t"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_sink_signs_and_classifies_failures() -> None:
    secret = ws.new_secret()
    received: list[tuple[bool, str]] = []
    answer = {"status": 204}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = ws.verify(secret, dict(request.headers), body, datetime.now(UTC))
        event = from_structured(HTTPMessage(dict(request.headers), body), JSONFormat())
        received.append((ok, event.get_id()))
        return web.Response(status=answer["status"])

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sink = HttpWebhookSink(f"http://127.0.0.1:{port}/hook", secret, timeout_s=5)
    try:
        out = _outgoing()
        await sink.deliver(out)
        assert received == [(True, out.event_id)]
        answer["status"] = 503
        with pytest.raises(DeliveryFailed) as busy:
            await sink.deliver(out)
        assert busy.value.retryable
        answer["status"] = 400
        with pytest.raises(DeliveryFailed) as refused:
            await sink.deliver(out)
        assert not refused.value.retryable
    finally:
        await sink.close()
        await runner.cleanup()
    # Nobody listening: retryable.
    down = HttpWebhookSink(f"http://127.0.0.1:{_free_port()}/hook", secret, timeout_s=2)
    with pytest.raises(DeliveryFailed) as gone:
        await down.deliver(_outgoing())
    assert gone.value.retryable
    await down.close()


async def test_nats_sink_publishes_once_per_event_id() -> None:
    stream = f"CHAINPROOF_TEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"chainproof.test.{stream.lower()}"
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    sink = NatsJetStreamSink("nats://127.0.0.1:4222", subject)
    try:
        out = _outgoing()
        await sink.deliver(out)
        await sink.deliver(out)  # a redelivery (at least once): the stream drops it
        info = await js.stream_info(stream)
        assert info.state.messages == 1
        sub = await js.pull_subscribe(subject, durable=None, stream=stream)
        [msg] = await sub.fetch(1, timeout=5)
        event = from_structured(
            HTTPMessage({"content-type": "application/cloudevents+json"}, msg.data), JSONFormat()
        )
        assert event.get_id() == out.event_id and msg.headers["Nats-Msg-Id"] == out.event_id
        assert event.get_data()["kind"] == "VULNERABILITY"
    finally:
        await sink.close()
        await js.delete_stream(stream)
        await nc.close()
    # No stream bound to the subject: the publish gets no ack, which is worth retrying.
    lost = NatsJetStreamSink(
        "nats://127.0.0.1:4222", f"chainproof.nowhere.{uuid.uuid4().hex}", timeout_s=1
    )
    with pytest.raises(DeliveryFailed):
        await lost.deliver(_outgoing())
    await lost.close()
    await asyncio.sleep(0)
