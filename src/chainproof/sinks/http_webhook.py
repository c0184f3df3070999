"""HTTP webhook sink: POST the structured CloudEvent, signed with HMAC-SHA256.

The body is ``application/cloudevents+json``; the Standard Webhooks headers
(``webhook-id`` = the event ID, ``webhook-timestamp``, ``webhook-signature``) let the
receiver check origin and freshness. Any 2xx is success. 408, 429 and 5xx, timeouts and
connection errors are worth retrying; other 4xx mean the receiver refuses this event, which
then goes straight to the dead-letter list.

Each delivery resolves the URL's host itself, checks every address against the
destination policy (domain/destinations.py) and connects to the address it checked, with
the original host in ``Host`` and as the TLS server name. Letting the HTTP client resolve
the name again would leave a gap between the check and the connection that a DNS answer
with a short TTL can use (rebinding). Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from chainproof.domain.destinations import DestinationPolicy, IPAddress, literal_address
from chainproof.domain.events import STRUCTURED_CONTENT_TYPE
from chainproof.domain.webhook_signature import signed_headers
from chainproof.sinks.port import DeliveryFailed, OutgoingEvent

_RETRYABLE = frozenset({408, 425, 429})
_NO_POLICY = DestinationPolicy(denied=())


async def _resolve(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        seen.setdefault(text, ipaddress.ip_address(text))
    return list(seen.values())


class HttpWebhookSink:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        client: httpx.AsyncClient | None = None,
        destinations: DestinationPolicy = _NO_POLICY,
    ) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        self._destinations = destinations
        self._client = client or httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False, trust_env=False
        )
        self._owns_client = client is None

    async def _pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL to connect to (host replaced by a checked address), the ``Host``
        header and the request extensions that keep TLS verifying the original name."""
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            raise DeliveryFailed(f"POST {self._url}: cannot resolve {host!r}: {exc}") from exc
        if not addresses:
            raise DeliveryFailed(f"POST {self._url}: {host!r} resolves to no address")
        why = self._destinations.refusal_of_any(addresses)
        if why is not None:
            # Not worth retrying: the same name gives the same answer until an operator
            # changes the DNS or the settings; the event goes to the dead-letter list.
            raise DeliveryFailed(f"POST {self._url}: refused: {host} → {why}", retryable=False)
        address = addresses[0]
        shown = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{shown}:{parts.port}" if parts.port else shown
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return pinned, {"host": host_header}, extensions

    async def deliver(self, event: OutgoingEvent) -> None:
        url, host, extensions = await self._pinned()
        headers = {
            "content-type": STRUCTURED_CONTENT_TYPE,
            **host,
            **signed_headers(self._secret, event.event_id, self._clock(), event.body),
        }
        try:
            resp = await self._client.post(
                url, content=event.body, headers=headers, extensions=extensions
            )
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
