"""HTTP webhook sink: POST the structured CloudEvent, signed with HMAC-SHA256.

The body is ``application/cloudevents+json``; the Standard Webhooks headers
(``webhook-id`` = the event ID, ``webhook-timestamp``, ``webhook-signature``) let the
receiver check origin and freshness. Any 2xx is success. 408, 429 and 5xx, timeouts and
connection errors are worth retrying; other 4xx mean the receiver refuses this event, which
then goes straight to the dead-letter list.

Every request goes through the guarded transport (outbound.py): the URL's host is
resolved and checked against the destination policy at each delivery, and the request is
sent to the address that was checked. A refused destination is final (dead letter).
Redirects are never followed; proxy environment variables are not used.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from chainproof.domain.destinations import DestinationPolicy
from chainproof.domain.events import STRUCTURED_CONTENT_TYPE
from chainproof.domain.webhook_signature import signed_headers
from chainproof.outbound import DestinationRefused, GuardedTransport
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent

_RETRYABLE = frozenset({408, 425, 429})
_NO_POLICY = DestinationPolicy(denied=())


class HttpWebhookSink:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        verify: ssl.SSLContext | bool = True,
        destinations: DestinationPolicy = _NO_POLICY,
    ) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        transport = GuardedTransport(destinations, httpx.AsyncHTTPTransport(verify=verify))
        self._client = httpx.AsyncClient(
            transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
        )

    async def deliver(self, event: OutgoingEvent) -> None:
        headers = {
            "content-type": STRUCTURED_CONTENT_TYPE,
            **signed_headers(self._secret, event.event_id, self._clock(), event.body),
        }
        try:
            resp = await self._client.post(self._url, content=event.body, headers=headers)
        except DestinationRefused as exc:
            # Not worth retrying: the same name gives the same answer until an operator
            # changes the DNS or the settings.
            raise DeliveryFailed(f"POST {self._url}: {exc}", retryable=False) from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"POST {self._url}: {type(exc).__name__}: {exc}") from exc
        if 200 <= resp.status_code < 300:
            return
        retryable = resp.status_code >= 500 or resp.status_code in _RETRYABLE
        raise DeliveryFailed(
            f"POST {self._url} answered HTTP {resp.status_code}", retryable=retryable
        )

    async def close(self) -> None:
        await self._client.aclose()
