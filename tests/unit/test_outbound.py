"""The guarded transport (outbound.py): requests go to the address that was checked."""

from __future__ import annotations

import httpx
import pytest

from chainproof.domain.destinations import DestinationPolicy
from chainproof.outbound import DestinationRefused, GuardedTransport

OPEN = DestinationPolicy(denied=())


async def _send(policy: DestinationPolicy, url: str) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    transport = GuardedTransport(policy, httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post(url, content=b"{}")
    return seen


async def test_a_name_is_sent_to_its_checked_address_with_the_name_kept() -> None:
    [request] = await _send(OPEN, "https://localhost:8443/hook?x=1")
    assert request.url.host in ("127.0.0.1", "::1")
    assert request.url.port == 8443 and request.url.raw_path == b"/hook?x=1"
    assert request.headers["host"] == "localhost:8443"
    assert request.extensions["sni_hostname"] == "localhost"


async def test_an_address_is_sent_as_it_is_and_plain_http_gets_no_server_name() -> None:
    [request] = await _send(OPEN, "http://[::1]:8080/")
    assert request.url.host == "::1" and "sni_hostname" not in request.extensions


@pytest.mark.parametrize(
    "url", ["http://localhost/", "https://127.0.0.1/", "https://[::ffff:127.0.0.1]:9/"]
)
async def test_a_refused_destination_never_reaches_the_inner_transport(url: str) -> None:
    policy = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"])
    with pytest.raises(DestinationRefused, match="denied network"):
        await _send(policy, url)


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError, match="cannot resolve"):
        await _send(OPEN, "https://no-such-host.invalid/")


async def test_checked_addresses_are_reused_for_their_ttl_and_then_looked_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ipaddress

    from chainproof import outbound

    lookups: list[str] = []
    answers = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("169.254.169.254")]

    async def fake_resolve(host: str, port: int) -> list[outbound.IPAddress]:
        lookups.append(host)
        return [answers[len(lookups) - 1]]

    monkeypatch.setattr(outbound, "resolve", fake_resolve)
    now = [0.0]
    transport = GuardedTransport(
        DestinationPolicy.from_settings(["169.254.0.0/16"]),
        httpx.MockTransport(lambda request: httpx.Response(204)),
        resolve_ttl_s=30,
        clock=lambda: now[0],
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://registry.example/v2/")
        await client.get("http://registry.example/v2/")
        assert lookups == ["registry.example"]
        # After the TTL the name is resolved again and its new (rebound) answer is checked.
        now[0] = 31
        with pytest.raises(DestinationRefused, match="169.254.169.254"):
            await client.get("http://registry.example/v2/")
    assert lookups == ["registry.example", "registry.example"]
