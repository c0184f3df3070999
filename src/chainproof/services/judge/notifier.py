"""The notifier: route outbox events to subscriptions and deliver them, at least once.

Two steps, each its own transaction, so a crash between them loses nothing:

1. ``route`` reads events not yet routed, adds one pending delivery per matching
   subscription (filtered by kind and type), and marks the events routed;
2. ``deliver_due`` sends each delivery that is due and first in line for its subject (so
   events about one resource arrive in order), then records success, the next attempt
   (backoff with jitter), or a dead letter once the retry policy gives up or the receiver
   refuses the event outright.

A delivery is marked done only after the sink confirmed it; a crash in between sends it
again after restart, with the same event ID (at least once). Sinks are built per
subscription by ``sink_for`` (an injected factory, so tests and the composition root choose).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.events import ChangeEvent, SubscriptionFilter, structured_body
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent, Sink
from chainproof.store.runtime_port import DeliveryRecord, RuntimeSessions, SubscriptionRecord

Sessions = RuntimeSessions


class Notifier:
    def __init__(
        self,
        sessions: Sessions,
        sink_for: Callable[[SubscriptionRecord], Sink],
        clock: Callable[[], datetime],
        *,
        source: str,
        retry: RetryPolicy | None = None,
        jitter: Callable[[], float] = random.random,
        batch: int = 200,
        concurrency: int = 16,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._sink_for = sink_for
        self._clock = clock
        self._source = source
        self._retry = retry or RetryPolicy()
        self._jitter = jitter
        self._batch = batch
        self._sinks: dict[tuple[str, str, str], Sink] = {}
        self._concurrency = asyncio.Semaphore(concurrency)
        #: Told "delivered", "retry" or "dead" after each attempt (metrics).
        self._observe = observe

    async def route(self) -> int:
        """Route one batch; returns how many events it routed."""
        async with self._sessions() as repos:
            events = await repos.outbox.unrouted(self._batch)
            if not events:
                return 0
            subscriptions = await repos.subscriptions.list_rows(None)
            filters = {
                (s.project, s.subscription_id): SubscriptionFilter.build(s.kinds, s.types)
                for s in subscriptions
            }
            now = self._clock()
            pending = [
                DeliveryRecord(
                    s.project,
                    s.subscription_id,
                    e.sequence,
                    e.event_id,
                    e.subject,
                    next_attempt=now,
                )
                for e in events
                for s in subscriptions
                if s.project == e.project and filters[(s.project, s.subscription_id)].matches(e)
            ]
            await repos.deliveries.add(pending)
            await repos.outbox.mark_routed([e.sequence for e in events])
        return len(events)

    async def deliver_due(self) -> int:
        """Attempt every delivery due now; returns how many succeeded.

        The deliveries of one batch go out concurrently (at most ``concurrency`` at once):
        ``due`` holds at most one per subscription and subject, so order per subject is
        kept, and one slow receiver delays only the recording of its batch."""
        async with self._sessions() as repos:
            due = await repos.deliveries.due(self._clock(), self._batch)
            events = await repos.outbox.get([d.sequence for d in due])
            subs = {
                (s.project, s.subscription_id): s for s in await repos.subscriptions.list_rows(None)
            }
        await self._forget_sinks(subs.values())
        results = await asyncio.gather(*(self._attempt(d, subs, events) for d in due))
        # Recorded only after the sinks answered, all in one transaction: a crash before
        # this sends those events again after restart, with the same IDs (at least once).
        if results:
            async with self._sessions() as repos:
                await repos.deliveries.update_many(results)
        if self._observe is not None:
            for result in results:
                self._observe(result.status if result.status != "pending" else "retry")
        return sum(1 for r in results if r.status == "delivered")

    async def prune(self, retention: timedelta, batch: int = 1000) -> int:
        """Forget deliveries done, and events routed, longer than ``retention`` ago (one
        batch of each, one transaction); dead letters and the events they need stay."""
        before = self._clock() - retention
        async with self._sessions() as repos:
            gone = await repos.deliveries.prune(before, batch)
            gone += await repos.outbox.prune(before, batch)
        return gone

    async def _attempt(
        self,
        d: DeliveryRecord,
        subs: dict[tuple[str, str], SubscriptionRecord],
        events: dict[int, ChangeEvent],
    ) -> DeliveryRecord:
        """One attempt; the delivery as it should be recorded afterwards."""
        async with self._concurrency:
            sub = subs.get((d.project, d.subscription_id))
            event = events.get(d.sequence)
            now = self._clock()
            if sub is None or event is None:
                return replace(
                    d, status="dead", last_error="subscription or event gone", done_time=now
                )
            out = OutgoingEvent(
                event.event_id,
                event.subject,
                event.type.value,
                structured_body(event, self._source),
            )
            try:
                await self._sink(sub).deliver(out)
            except DeliveryFailed as exc:
                return self._failed(d, str(exc), exc.retryable, now)
            except Exception as exc:  # a sink's bug: retried like an outage, never lost
                return self._failed(d, f"{type(exc).__name__}: {exc}", True, now)
            return replace(
                d, status="delivered", attempts=d.attempts + 1, done_time=now, last_error=""
            )

    def _failed(
        self, d: DeliveryRecord, error: str, retryable: bool, now: datetime
    ) -> DeliveryRecord:
        attempts = d.attempts + 1
        again = self._retry.next_attempt(attempts, now, self._jitter()) if retryable else None
        if again is None:
            return replace(d, status="dead", attempts=attempts, last_error=error, done_time=now)
        return replace(d, attempts=attempts, next_attempt=again, last_error=error)

    def _sink(self, sub: SubscriptionRecord) -> Sink:
        key = _sink_key(sub)
        if key not in self._sinks:
            self._sinks[key] = self._sink_for(sub)
        return self._sinks[key]

    async def _forget_sinks(self, current: Iterable[SubscriptionRecord]) -> None:
        """Close the sinks of subscriptions deleted (or replaced) since they were made."""
        keep = {_sink_key(s) for s in current}
        for key in [k for k in self._sinks if k not in keep]:
            with contextlib.suppress(Exception):
                await self._sinks.pop(key).close()

    async def close(self) -> None:
        for sink in self._sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()
        self._sinks.clear()


def _sink_key(sub: SubscriptionRecord) -> tuple[str, str, str]:
    # The sink's settings are part of the key: a subscription deleted and made again under
    # the same ID with another URL must not reuse the old one's connection.
    return (sub.project, sub.subscription_id, json.dumps(sub.sink, sort_keys=True, default=str))
