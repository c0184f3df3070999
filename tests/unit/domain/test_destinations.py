"""The destination rule for webhook deliveries (domain/destinations.py)."""

from __future__ import annotations

import ipaddress

import pytest

from chainproof.config import OutboundSettings
from chainproof.domain.destinations import (
    DEFAULT_DENIED_NETWORKS,
    DestinationPolicy,
    literal_address,
    parse_networks,
)
from chainproof.errors import InvalidArgument

DEFAULT = DestinationPolicy.from_settings(DEFAULT_DENIED_NETWORKS)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # AWS, GCP, Azure, OCI instance metadata
        "::ffff:169.254.169.254",  # the same, IPv4-mapped
        "fd00:ec2::254",  # AWS metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "::",
        "fe80::1",
        "224.0.0.1",
        "255.255.255.255",
    ],
)
def test_metadata_link_local_and_unspecified_addresses_are_refused_by_default(
    address: str,
) -> None:
    why = DEFAULT.refusal(ipaddress.ip_address(address))
    assert why is not None and "outbound.denied_networks" in why


@pytest.mark.parametrize("address", ["203.0.113.7", "10.1.2.3", "127.0.0.1", "::1", "fd12::5"])
def test_public_private_and_loopback_receivers_stay_reachable_by_default(address: str) -> None:
    assert DEFAULT.refusal(ipaddress.ip_address(address)) is None


def test_an_allow_list_admits_only_its_networks_and_a_deny_still_wins() -> None:
    policy = DestinationPolicy.from_settings(["10.9.0.0/16"], ["10.0.0.0/8"])
    assert policy.refusal(ipaddress.ip_address("10.1.2.3")) is None
    outside = policy.refusal(ipaddress.ip_address("192.168.1.1"))
    assert outside is not None and "allowed_networks" in outside
    denied = policy.refusal(ipaddress.ip_address("10.9.0.1"))
    assert denied is not None and "denied network 10.9.0.0/16" in denied


def test_a_host_is_refused_when_any_of_its_addresses_is() -> None:
    addresses = [ipaddress.ip_address("203.0.113.7"), ipaddress.ip_address("169.254.169.254")]
    assert DEFAULT.refusal_of_any(addresses) is not None
    assert DEFAULT.refusal_of_any(addresses[:1]) is None


def test_bad_networks_are_refused_naming_the_setting() -> None:
    with pytest.raises(InvalidArgument, match=r"outbound.allowed_networks: '10.0.0.0/33'"):
        parse_networks(["10.0.0.0/33"], "outbound.allowed_networks")
    with pytest.raises(ValueError, match="denied_networks"):
        OutboundSettings(denied_networks=["not-a-network"])
    assert OutboundSettings().denied_networks == list(DEFAULT_DENIED_NETWORKS)


def test_literal_addresses_are_recognised_with_or_without_brackets() -> None:
    assert literal_address("[::1]") == ipaddress.ip_address("::1")
    assert literal_address("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert literal_address("hooks.example") is None
