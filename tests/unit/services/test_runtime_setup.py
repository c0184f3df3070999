"""Wiring the runtime from settings: which sink each subscription gets, which cluster the
admission webhook's pods belong to, and which leader work a server runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chainproof.config import load_settings
from chainproof.services.judge.runtime_setup import admission_cluster, build_runtime, sink_factory
from chainproof.sinks.http_webhook import HttpWebhookSink
from chainproof.sinks.nats_jetstream import NatsJetStreamSink
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent
from chainproof.store.memory import MemoryStore
from chainproof.store.runtime_port import SubscriptionRecord

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CLUSTER = {"url": "https://k.example", "token_file": "/t", "ca_file": "/c"}


def sub(sink: dict) -> SubscriptionRecord:
    return SubscriptionRecord("p", "s", (), (), sink, T0)


class Recorder:
    async def deliver(self, event: OutgoingEvent) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_each_subscription_gets_its_sink() -> None:
    settings = load_settings(notifications={"nats_servers": "nats://bus.internal:4222"})
    worker = Recorder()
    sink_for = sink_factory(settings, {"rejudge": worker})
    assert isinstance(sink_for(sub({"http": {"url": "https://h", "secret": "x"}})), HttpWebhookSink)
    nats = sink_for(sub({"nats": {"subject": "cp.events"}}))
    assert isinstance(nats, NatsJetStreamSink) and nats._servers == "nats://bus.internal:4222"
    assert sink_for(sub({"internal": "rejudge"})) is worker
    # An internal worker this server does not run: retried, so another server can take it.
    missing = sink_for(sub({"internal": "nobody"}))
    with pytest.raises(DeliveryFailed) as failed:
        await missing.deliver(OutgoingEvent("e", "s", "t", b"{}"))
    assert failed.value.retryable and "nobody" in str(failed.value)


def test_the_cluster_of_admitted_pods() -> None:
    assert admission_cluster(load_settings(admission={"cluster": "prod-eu"})) == "prod-eu"
    one = load_settings(runtime={"clusters": [{"name": "edge", **CLUSTER}]})
    assert admission_cluster(one) == "edge"
    two = load_settings(runtime={"clusters": [{"name": "a", **CLUSTER}, {"name": "b", **CLUSTER}]})
    assert admission_cluster(two) == "default"
    # Not an inventory name (upper case): admitted pods are left to the watchers.
    assert admission_cluster(load_settings(admission={"cluster": "Prod"})) is None


def test_the_leader_runs_the_notifier_and_one_watcher_per_cluster() -> None:
    two = load_settings(runtime={"clusters": [{"name": "a", **CLUSTER}, {"name": "b", **CLUSTER}]})
    runtime = build_runtime(two, MemoryStore())
    assert runtime.worker.task_names == ["notifier", "watcher a", "watcher b"]
    assert [w.cluster.name for w in runtime.watchers] == ["a", "b"]
    quiet = build_runtime(load_settings(notifications={"enabled": False}), MemoryStore())
    assert quiet.worker.task_names == [] and quiet.notifier is None


def test_cluster_settings_need_one_way_to_connect() -> None:
    from chainproof.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as bad:
        load_settings(runtime={"clusters": [{"name": "a", "in_cluster": True, "url": "https://x"}]})
    assert "exactly one way to connect" in str(bad.value.details)
    with pytest.raises(InvalidArgument) as bad:
        load_settings(runtime={"clusters": [{"name": "a"}]})
    assert "exactly one way to connect" in str(bad.value.details)
