"""Webhook secrets at rest: a subscription created over REST keeps its HMAC secret sealed
under the server's key file, its deliveries are signed with the secret the creator was shown,
and a sealed secret moved to another subscription, opened under another key, or stored
without a key to seal it with, is refused — nothing is sent unsigned or under a guess."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.domain import webhook_signature as ws
from chainproof.services.judge.runtime_setup import sink_factory
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent
from chainproof.store.memory import MemoryStore
from chainproof.store.runtime_port import SubscriptionRecord

BASE = "/v1/projects/p/subscriptions"
_T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(key_file: Path) -> Any:
    return load_settings(
        grpc_enabled=False,
        notifications={"enabled": False, "secret_key_file": str(key_file)},
    )


async def _stored(store: MemoryStore, sid: str) -> SubscriptionRecord:
    async with store.session(readonly=True) as s:
        record = await s.subscriptions.get("p", sid)
    assert record is not None
    return record


def _create(settings: Any, store: MemoryStore, sid: str, body: dict[str, Any]) -> Any:
    with TestClient(build_app(settings, store), raise_server_exceptions=False) as c:
        return c.post(BASE, params={"subscriptionId": sid}, json=body)


async def test_the_secret_is_stored_sealed_and_deliveries_are_signed_with_it(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "keys" / "webhook.key"
    settings, store = _settings(key_file), MemoryStore()
    port = _port()
    url = f"http://127.0.0.1:{port}/hook"
    r = _create(settings, store, "hook", {"http": {"url": url}})
    assert r.status_code == 200, r.text
    shown = r.json()["http"]["secret"]
    mine = ws.new_secret()
    r = _create(settings, store, "chosen", {"http": {"url": url, "secret": mine}})
    assert r.status_code == 200, r.text
    assert "secret" not in r.json()["http"]  # a secret the caller chose is not echoed

    for sid, secret in (("hook", shown), ("chosen", mine)):
        record = await _stored(store, sid)
        stored = json.dumps(record.sink)
        assert set(record.sink["http"]) == {"url", "sealedSecret"}
        assert secret not in stored and secret[len("whsec_") :] not in stored
    assert key_file.exists()

    # A real receiver checks the signature with the secret the creator was shown.
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        sink = sink_factory(settings, {})(await _stored(store, "hook"))
        await sink.deliver(OutgoingEvent("evt-1", "projects/p/occurrences/a", "t", b'{"a":1}'))
        await sink.close()
    finally:
        await runner.cleanup()
    [(headers, body)] = got
    expected = ws.signature(shown, "evt-1", int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected


async def test_a_sealed_secret_copied_to_another_subscription_signs_nothing(
    tmp_path: Path,
) -> None:
    settings, store = _settings(tmp_path / "webhook.key"), MemoryStore()
    for sid in ("victim", "attacker"):
        r = _create(settings, store, sid, {"http": {"url": "https://hooks.example/x"}})
        assert r.status_code == 200, r.text
    victim, attacker = await _stored(store, "victim"), await _stored(store, "attacker")
    # Someone with write access to the database gives their subscription the victim's secret.
    forged = replace(attacker, sink={"http": {**attacker.sink["http"], **victim.sink["http"]}})
    sink = sink_factory(settings, {})(forged)
    with pytest.raises(DeliveryFailed, match="attacker.*sealed for another resource"):
        await sink.deliver(OutgoingEvent("e", "s", "t", b"{}"))


async def test_another_key_file_opens_nothing_and_says_which_key_it_holds(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    r = _create(_settings(tmp_path / "a.key"), store, "hook", {"http": {"url": "https://h/x"}})
    assert r.status_code == 200, r.text
    other = _settings(tmp_path / "b.key")  # a replica started with a key of its own
    sink = sink_factory(other, {})(await _stored(store, "hook"))
    with pytest.raises(DeliveryFailed, match="sealed under key [0-9a-f]{16}, but this server"):
        await sink.deliver(OutgoingEvent("e", "s", "t", b"{}"))


async def test_without_a_usable_key_nothing_is_stored(tmp_path: Path) -> None:
    bad = tmp_path / "webhook.key"
    bad.write_text("not a key\n")
    store = MemoryStore()
    r = _create(_settings(bad), store, "hook", {"http": {"url": "https://h/x"}})
    assert r.status_code == 503, r.text
    assert "cannot be sealed" in r.text and str(bad) in r.text
    async with store.session(readonly=True) as s:
        assert await s.subscriptions.get("p", "hook") is None


async def test_rows_written_before_sealing_are_sealed_when_the_server_opens(
    tmp_path: Path,
) -> None:
    settings, store = _settings(tmp_path / "webhook.key"), MemoryStore()
    secret = ws.new_secret()
    legacy = SubscriptionRecord(
        "p", "old", ("occurrence",), (), {"http": {"url": "https://h/x", "secret": secret}}, _T0
    )
    # Until it is sealed, such a row delivers under its secret as it stands.
    assert sink_factory(settings, {})(legacy)._secret == secret  # type: ignore[attr-defined]
    async with store.session() as s:
        await s.subscriptions.put(legacy)
    with TestClient(build_app(settings, store)) as c:  # opening the services seals it
        assert c.get(f"{BASE}/old").json()["http"] == {"url": "https://h/x"}
    stored = await _stored(store, "old")
    assert set(stored.sink["http"]) == {"url", "sealedSecret"}
    assert secret not in json.dumps(stored.sink)
    assert (stored.kinds, stored.create_time) == (legacy.kinds, legacy.create_time)
    assert sink_factory(settings, {})(stored)._secret == secret  # type: ignore[attr-defined]


async def test_without_a_key_legacy_rows_are_left_to_deliver_as_they_are(tmp_path: Path) -> None:
    bad = tmp_path / "webhook.key"
    bad.write_text("not a key\n")
    settings, store = _settings(bad), MemoryStore()
    legacy = SubscriptionRecord(
        "p", "old", (), (), {"http": {"url": "https://h/x", "secret": ws.new_secret()}}, _T0
    )
    async with store.session() as s:
        await s.subscriptions.put(legacy)
    with TestClient(build_app(settings, store)) as c:  # the server still starts
        assert c.get(f"{BASE}/old").status_code == 200
    assert await _stored(store, "old") == legacy
