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
from chainproof.crypto.sealing import sealed_key_id
from chainproof.domain import webhook_signature as ws
from chainproof.services.judge.runtime_setup import sink_factory
from chainproof.services.judge.subscriptions import SubscriptionService
from chainproof.services.secret_key_file import SecretKeyFile
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent
from chainproof.store.memory import MemoryStore
from chainproof.store.runtime_port import SubscriptionRecord

BASE = "/v1/projects/p/subscriptions"
_T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(key_file: Path, *extra: Path) -> Any:
    return load_settings(
        grpc_enabled=False,
        notifications={
            "enabled": False,
            "secret_key_file": str(key_file),
            "extra_secret_key_files": [str(p) for p in extra],
        },
    )


async def _stored(store: MemoryStore, sid: str) -> SubscriptionRecord:
    async with store.session(readonly=True) as s:
        record = await s.subscriptions.get("p", sid)
    assert record is not None
    return record


def _create(settings: Any, store: MemoryStore, sid: str, body: dict[str, Any]) -> Any:
    with TestClient(build_app(settings, store), raise_server_exceptions=False) as c:
        return c.post(BASE, params={"subscriptionId": sid}, json=body)


async def _refused(settings: Any, record: SubscriptionRecord, why: str) -> None:
    """A delivery to ``record``'s webhook under ``settings`` fails, saying ``why`` (a regex)."""
    sink = sink_factory(settings, {})(record)
    with pytest.raises(DeliveryFailed, match=why):
        await sink.deliver(OutgoingEvent("e", "s", "t", b"{}"))


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
    await _refused(settings, forged, "attacker.*sealed for another resource")


async def test_another_key_file_opens_nothing_and_says_which_key_it_holds(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    r = _create(_settings(tmp_path / "a.key"), store, "hook", {"http": {"url": "https://h/x"}})
    assert r.status_code == 200, r.text
    other = _settings(tmp_path / "b.key")  # a replica started with a key of its own
    await _refused(
        other, await _stored(store, "hook"), "sealed under key [0-9a-f]{16}, but this server"
    )


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


def _opened(settings: Any, record: SubscriptionRecord) -> str:
    return str(sink_factory(settings, {})(record)._secret)  # type: ignore[attr-defined]


def _open_app(settings: Any, store: MemoryStore) -> None:
    with TestClient(build_app(settings, store)) as c:  # opening the services re-seals
        assert c.get("/healthz").status_code == 200


async def test_a_key_rotation_seals_every_secret_again_and_none_stops_delivering(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    old_id = SecretKeyFile(old).ring().key_id
    new_id = SecretKeyFile(new).ring().key_id
    store = MemoryStore()
    secrets = {}
    for sid in ("a", "b"):
        r = _create(_settings(old), store, sid, {"http": {"url": "https://h/x"}})
        assert r.status_code == 200, r.text
        secrets[sid] = r.json()["http"]["secret"]

    # Step 1: every replica learns the new key, still sealing with the old one.
    step1 = _settings(old, new)
    _open_app(step1, store)
    for sid in secrets:
        record = await _stored(store, sid)
        assert sealed_key_id(record.sink["http"]["sealedSecret"]) == old_id
        assert _opened(step1, record) == secrets[sid]

    # Step 2: the new key seals, the old one only opens; a server opening seals again.
    step2 = _settings(new, old)
    r = _create(step1, store, "c", {"http": {"url": "https://h/x"}})  # a step-1 replica, still
    secrets["c"] = r.json()["http"]["secret"]
    before = {sid: (await _stored(store, sid)).sink["http"]["sealedSecret"] for sid in secrets}
    _open_app(step2, store)
    for sid, secret in secrets.items():
        record = await _stored(store, sid)
        token = record.sink["http"]["sealedSecret"]
        assert sealed_key_id(token) == new_id and token != before[sid]
        assert _opened(step1, record) == secret  # a replica still on step 1 delivers too
        assert _opened(step2, record) == secret

    # Step 3: the old key is gone; everything still opens, and the old key alone opens nothing.
    step3 = _settings(new)
    for sid, secret in secrets.items():
        record = await _stored(store, sid)
        assert _opened(step3, record) == secret
        await _refused(_settings(old), record, f"sealed under key {new_id}")


async def test_resealing_leaves_what_does_not_open_as_it_is_and_counts_it(
    tmp_path: Path,
) -> None:
    old, new, lost = tmp_path / "old.key", tmp_path / "new.key", tmp_path / "lost.key"
    store = MemoryStore()
    for sid, key in (("victim", old), ("attacker", old), ("orphan", lost)):
        r = _create(_settings(key), store, sid, {"http": {"url": "https://h/x"}})
        assert r.status_code == 200, r.text
    victim, attacker = await _stored(store, "victim"), await _stored(store, "attacker")
    # Someone with write access to the database copies the victim's sealed secret into
    # their own row, hoping a re-seal under the new key binds it to their subscription.
    forged = replace(attacker, sink={"http": {**attacker.sink["http"], **victim.sink["http"]}})
    async with store.session() as s:
        await s.subscriptions.put(forged)
    orphan = await _stored(store, "orphan")
    damaged = replace(
        orphan, subscription_id="damaged", sink={"http": {"sealedSecret": "sealed.v1."}}
    )
    async with store.session() as s:
        await s.subscriptions.put(damaged)  # a row no key could ever open

    settings = _settings(new, old)
    _open_app(settings, store)  # the victim's secret is sealed again, under the new key
    # What a server opening now finds: nothing left to do, and what it leaves alone.
    report = await SubscriptionService(store, settings.notifications).reseal()
    assert (report.resealed, report.sealed, report.unopenable) == (0, 0, 2)
    assert report.current == 1
    assert report.unknown == {SecretKeyFile(lost).ring().key_id: 1}
    assert await _stored(store, "attacker") == forged  # never sealed for the attacker's name
    assert await _stored(store, "orphan") == orphan
    assert await _stored(store, "damaged") == damaged
    await _refused(settings, forged, "sealed for another resource")


async def test_a_missing_extra_key_refuses_new_secrets_and_the_server_still_starts(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "old.key"
    settings, store = _settings(tmp_path / "current.key", missing), MemoryStore()
    r = _create(settings, store, "hook", {"http": {"url": "https://h/x"}})
    assert r.status_code == 503, r.text
    assert str(missing) in r.text and "does not exist" in r.text
    async with store.session(readonly=True) as s:
        assert await s.subscriptions.get("p", "hook") is None
