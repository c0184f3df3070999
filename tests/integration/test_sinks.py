"""The delivery sinks against real receivers: an HTTP server that checks the HMAC
signature and reads the CloudEvent with the SDK, and the NATS JetStream server on
127.0.0.1:4222 (each test makes and deletes its own stream)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from aiohttp import web
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat

from chainproof.domain import webhook_signature as ws
from chainproof.domain.destinations import DEFAULT_DENIED_NETWORKS, DestinationPolicy
from chainproof.domain.events import ChangeEvent, EventType, occurrence_notice, structured_body
from chainproof.sinks.http_webhook import HttpWebhookSink
from chainproof.sinks.nats_jetstream import NatsJetStreamSink
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent
from oidc_issuer import make_ca_and_server_cert

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


async def _receiver(
    seen: list[dict[str, str]], ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        seen.append({"host": request.headers["Host"], "path": request.path_qs})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    return runner, port


async def test_a_name_that_resolves_into_a_denied_network_is_refused_unsent() -> None:
    """The SSRF attack: a subscription whose host name points at an address the operator
    denied (here loopback stands in for 169.254.169.254). Nothing reaches the receiver and
    the failure is final (dead letter), naming the address and the setting."""
    seen: list[dict[str, str]] = []
    runner, port = await _receiver(seen)
    policy = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"])
    sink = HttpWebhookSink(
        f"http://localhost:{port}/hook", ws.new_secret(), timeout_s=5, destinations=policy
    )
    try:
        with pytest.raises(DeliveryFailed) as refused:
            await sink.deliver(_outgoing())
        assert not refused.value.retryable
        assert "127.0.0.1" in str(refused.value) or "::1" in str(refused.value)
        assert "outbound.denied_networks" in str(refused.value)
        assert seen == []
        # An allow-list that leaves loopback out refuses it too, saying which list.
        only_ten = HttpWebhookSink(
            f"http://127.0.0.1:{port}/hook",
            ws.new_secret(),
            destinations=DestinationPolicy.from_settings([], ["10.0.0.0/8"]),
        )
        with pytest.raises(DeliveryFailed, match="allowed_networks"):
            await only_ten.deliver(_outgoing())
        await only_ten.close()
        assert seen == []
    finally:
        await sink.close()
        await runner.cleanup()


async def test_delivery_connects_to_the_checked_address_and_keeps_the_name_for_tls(
    tmp_path: Path,
) -> None:
    """The sink connects to the address it checked, not to whatever a second lookup would
    answer; the receiver still sees its own name in Host, and TLS still verifies the
    certificate against the name (SNI), so pinning the address weakens nothing."""
    ca, cert, key = make_ca_and_server_cert(tmp_path, "localhost")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    seen: list[dict[str, str]] = []
    runner, port = await _receiver(seen, server_tls)
    sink = HttpWebhookSink(
        f"https://localhost:{port}/hook?team=a",
        ws.new_secret(),
        verify=ssl.create_default_context(cafile=str(ca)),
        destinations=DestinationPolicy.from_settings(list(DEFAULT_DENIED_NETWORKS)),
    )
    try:
        await sink.deliver(_outgoing())
        assert seen == [{"host": f"localhost:{port}", "path": "/hook?team=a"}]
        # A certificate for another name fails verification: SNI and the check use the
        # URL's name, never the address connected to.
        other = tmp_path / "other"
        other.mkdir()
        ca2, cert2, key2 = make_ca_and_server_cert(other, "hooks.example")
        wrong_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        wrong_tls.load_cert_chain(cert2, key2)
        runner2, port2 = await _receiver(seen, wrong_tls)
        fooled = HttpWebhookSink(
            f"https://localhost:{port2}/hook",
            ws.new_secret(),
            verify=ssl.create_default_context(cafile=str(ca2)),
        )
        with pytest.raises(DeliveryFailed, match="SSL|certificate"):
            await fooled.deliver(_outgoing())
        await fooled.close()
        await runner2.cleanup()
        assert len(seen) == 1
    finally:
        await sink.close()
        await runner.cleanup()
