"""NATS JetStream sink: publish the structured CloudEvent and wait for the stream's ack.

The message carries ``Nats-Msg-Id`` = the event ID, so JetStream drops a redelivery that
arrives within the stream's duplicate window: at-least-once from us, once in the stream in
the common case. ``ce-*`` headers repeat the main attributes for consumers that route on
headers. A publish that gets no ack (no stream bound to the subject, server down, timeout)
is retried by the notifier.
"""

from __future__ import annotations

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from chainproof.domain.events import STRUCTURED_CONTENT_TYPE
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent


class NatsJetStreamSink:
    def __init__(self, servers: str, subject: str, *, timeout_s: float = 5.0) -> None:
        self._servers = servers
        self._subject = subject
        self._timeout_s = timeout_s
        self._nc: Client | None = None

    async def _connect(self) -> Client:
        if self._nc is None or self._nc.is_closed:
            try:
                self._nc = await nats.connect(
                    self._servers,
                    connect_timeout=self._timeout_s,
                    max_reconnect_attempts=1,
                    allow_reconnect=False,
                )
            except (NatsError, OSError) as exc:
                raise DeliveryFailed(f"NATS at {self._servers}: {exc!r}") from exc
        return self._nc

    async def deliver(self, event: OutgoingEvent) -> None:
        nc = await self._connect()
        js = nc.jetstream(timeout=self._timeout_s)
        headers = {
            "Nats-Msg-Id": event.event_id,
            "content-type": STRUCTURED_CONTENT_TYPE,
            "ce-id": event.event_id,
            "ce-type": event.type,
            "ce-subject": event.subject,
        }
        try:
            await js.publish(self._subject, event.body, headers=headers, timeout=self._timeout_s)
        except (NatsError, JetStreamError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"JetStream publish to {self._subject!r}: {exc!r}") from exc

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None
