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

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime

from chainproof.domain.delivery import RetryPolicy
from chainproof.domain.events import SubscriptionFilter, structured_body
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent, Sink
from chainproof.store.runtime_port import DeliveryRecord, RuntimeRepositories, SubscriptionRecord

Sessions = Callable[[], AbstractAsyncContextManager[RuntimeRepositories]]


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
    ) -> None:
        self._sessions = sessions
        self._sink_for = sink_for
        self._clock = clock
        self._source = source
        self._retry = retry or RetryPolicy()
        self._jitter = jitter
        self._batch = batch
        self._sinks: dict[tuple[str, str], Sink] = {}

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
        """Attempt every delivery due now; returns how many succeeded."""
        async with self._sessions() as repos:
            due = await repos.deliveries.due(self._clock(), self._batch)
            events = await repos.outbox.get([d.sequence for d in due])
            subs = {
                (s.project, s.subscription_id): s for s in await repos.subscriptions.list_rows(None)
            }
        delivered = 0
        for d in due:
            sub = subs.get((d.project, d.subscription_id))
            event = events.get(d.sequence)
            now = self._clock()
            if sub is None or event is None:
                result = replace(
                    d, status="dead", last_error="subscription or event gone", done_time=now
                )
            else:
                out = OutgoingEvent(
                    event.event_id,
                    event.subject,
                    event.type.value,
                    structured_body(event, self._source),
                )
                try:
                    await self._sink(sub).deliver(out)
                    result = replace(
                        d, status="delivered", attempts=d.attempts + 1, done_time=now, last_error=""
                    )
                    delivered += 1
                except DeliveryFailed as exc:
                    attempts = d.attempts + 1
                    again = (
                        self._retry.next_attempt(attempts, now, self._jitter())
                        if exc.retryable
                        else None
                    )
                    result = (
                        replace(
                            d, status="dead", attempts=attempts, last_error=str(exc), done_time=now
                        )
                        if again is None
                        else replace(d, attempts=attempts, next_attempt=again, last_error=str(exc))
                    )
            async with self._sessions() as repos:
                await repos.deliveries.update(result)
        return delivered

    def _sink(self, sub: SubscriptionRecord) -> Sink:
        key = (sub.project, sub.subscription_id)
        if key not in self._sinks:
            self._sinks[key] = self._sink_for(sub)
        return self._sinks[key]

    async def close(self) -> None:
        for sink in self._sinks.values():
            await sink.close()
        self._sinks.clear()
