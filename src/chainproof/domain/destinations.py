"""Where outgoing webhook deliveries may go: the networks a subscription URL may reach.

A subscription URL is chosen by whoever holds ``subscriptions.create``; chainproof then
POSTs to it from inside the cluster. Without a check, that is a way to make the server send
requests to addresses the caller cannot reach (server-side request forgery): the cloud
metadata service at 169.254.169.254, or anything an operator keeps off the public network.

Owns the rule, applied to every address a host name resolves to at delivery time (so a
name re-pointed after the subscription was created is caught too): an address in a denied
network is refused; when an allow-list is set, an address outside it is refused. A deny
wins over an allow. IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
Pure: resolving names is the sink's job.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainproof.errors import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Refused unless an operator removes them: "this host" and unspecified addresses,
#: link-local (where every major cloud serves instance metadata and credentials),
#: IETF protocol assignments, multicast, broadcast and reserved space, AWS's IPv6 metadata
#: address and Alibaba Cloud's metadata address. Private (RFC 1918, ULA) and loopback
#: ranges stay reachable by default: in-cluster receivers live there.
DEFAULT_DENIED_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",
    "169.254.0.0/16",
    "192.0.0.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "100.100.100.200/32",
    "::/128",
    "fe80::/10",
    "ff00::/8",
    "fd00:ec2::254/128",
)


def parse_networks(values: Iterable[str], setting: str) -> tuple[IPNetwork, ...]:
    """CIDR strings (a bare address is a /32 or /128) as networks; a bad one is an
    InvalidArgument naming the setting."""
    out: list[IPNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise InvalidArgument(
                f"{setting}: {value!r} is not a network; expected CIDR notation such as "
                "10.0.0.0/8 or fd00::/8, or a single address"
            ) from exc
    return tuple(out)


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    denied: tuple[IPNetwork, ...]
    #: Empty: every address that is not denied. Otherwise only addresses in these.
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, denied: Sequence[str], allowed: Sequence[str] = ()) -> DestinationPolicy:
        return cls(
            parse_networks(denied, "outbound.denied_networks"),
            parse_networks(allowed, "outbound.allowed_networks"),
        )

    def refusal(self, address: IPAddress) -> str | None:
        """Why deliveries may not go to ``address``; None when they may."""
        plain = _plain(address)
        for net in self.denied:
            if plain.version == net.version and plain in net:
                return f"{plain} is in the denied network {net} (outbound.denied_networks)"
        if self.allowed and not any(
            plain.version == net.version and plain in net for net in self.allowed
        ):
            return (
                f"{plain} is outside every network of outbound.allowed_networks "
                f"({', '.join(str(n) for n in self.allowed)})"
            )
        return None

    def refusal_of_any(self, addresses: Iterable[IPAddress]) -> str | None:
        """A host is refused when any address it resolves to is: a name that answers with
        both a public and a metadata address must not be a way around the check."""
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                return why
        return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (brackets of an IPv6 URL host removed)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
