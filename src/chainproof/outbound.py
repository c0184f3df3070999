"""Outgoing HTTP to addresses chosen by others, bounded by a destination policy.

Subscription URLs are chosen by API callers, registry hosts by whoever writes a pod spec,
token realms by the registry. Every such request goes through :class:`GuardedTransport`:
it resolves the request's host itself, refuses it when any address the host resolves to is
refused by the :class:`~chainproof.domain.destinations.DestinationPolicy`, and sends the
request to the address it checked, with the original host kept in ``Host`` and as the TLS
server name (``sni_hostname``), so certificates are still verified against the name.
Letting the HTTP library resolve the name a second time would leave a gap between the check
and the connection that a DNS answer with a short TTL can use (rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable

import httpx

from chainproof.domain.destinations import DestinationPolicy, IPAddress, literal_address

_MAX_REMEMBERED = 4096


class DestinationRefused(httpx.TransportError):
    """The request's host resolves to an address the destination policy refuses."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The distinct addresses ``host`` resolves to for a TCP connection (itself when it is
    an address)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 zone id is not part of the address
        seen.setdefault(text, ipaddress.ip_address(text))
    return list(seen.values())


class GuardedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; see the module docstring. A refused destination raises
    :class:`DestinationRefused` (an ``httpx.TransportError``) naming host, address and
    setting; a name that does not resolve raises ``httpx.ConnectError``."""

    def __init__(
        self,
        policy: DestinationPolicy,
        inner: httpx.AsyncBaseTransport,
        *,
        resolve_ttl_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``resolve_ttl_s``: how long a name's checked addresses are reused (0: resolve
        at every request). Reuse keeps the pinning: requests still go to addresses that
        were checked, only the lookup is saved."""
        self._policy = policy
        self._inner = inner
        self._ttl = resolve_ttl_s
        self._clock = clock
        self._resolved: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        if self._ttl <= 0:
            return await resolve(host, port)
        now = self._clock()
        known = self._resolved.get((host, port))
        if known is not None and known[0] > now:
            return known[1]
        addresses = await resolve(host, port)
        if len(self._resolved) >= _MAX_REMEMBERED:
            self._resolved.clear()  # a bound, not a cache policy: names are few
        self._resolved[(host, port)] = (now + self._ttl, addresses)
        return addresses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        # The lookup counts against the request's connect timeout, as the library's own
        # lookup would: a slow resolver must not outlast a review's deadline.
        limit = (request.extensions.get("timeout") or {}).get("connect")
        try:
            async with asyncio.timeout(limit):
                addresses = await self._addresses(host, port)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"resolving {host!r} took longer than {limit}s", request=request
            ) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host!r}: {exc}", request=request) from exc
        if not addresses:
            raise httpx.ConnectError(f"{host!r} resolves to no address", request=request)
        why = self._policy.refusal_of_any(addresses)
        if why is not None:
            raise DestinationRefused(f"refused: {host} → {why}", request=request)
        if literal_address(host) is not None:
            return await self._inner.handle_async_request(request)
        if "host" not in request.headers:
            request.headers["host"] = url.netloc.decode("ascii")
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        # Every address was checked; try them in the resolver's order, as a client that
        # resolved the name itself would.
        for address in addresses[:-1]:
            request.url = url.copy_with(host=str(address))
            try:
                return await self._inner.handle_async_request(request)
            except httpx.ConnectError:
                continue
        request.url = url.copy_with(host=str(addresses[-1]))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
