"""HTTP webhook sink: POST the structured CloudEvent, signed with HMAC-SHA256.

The body is ``application/cloudevents+json``; the Standard Webhooks headers
(``webhook-id`` = the event ID, ``webhook-timestamp``, ``webhook-signature``) let the
receiver check origin and freshness. Any 2xx is success. 408, 429 and 5xx, timeouts and
connection errors are worth retrying; other 4xx mean the receiver refuses this event, which
then goes straight to the dead-letter list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from chainproof.domain.events import STRUCTURED_CONTENT_TYPE
from chainproof.domain.webhook_signature import signed_headers
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent

_RETRYABLE = frozenset({408, 425, 429})


class HttpWebhookSink:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._owns_client = client is None

    async def deliver(self, event: OutgoingEvent) -> None:
        headers = {
            "content-type": STRUCTURED_CONTENT_TYPE,
            **signed_headers(self._secret, event.event_id, self._clock(), event.body),
        }
        try:
            resp = await self._client.post(self._url, content=event.body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"POST {self._url}: {type(exc).__name__}: {exc}") from exc
        if 200 <= resp.status_code < 300:
            return
        retryable = resp.status_code >= 500 or resp.status_code in _RETRYABLE
        raise DeliveryFailed(
            f"POST {self._url} answered HTTP {resp.status_code}", retryable=retryable
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
