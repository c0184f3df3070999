"""How to reach each registry: endpoint, TLS, credentials, mirrors, timeouts and bounds.

Plain frozen values built by the composition root from settings (and tests directly); the
client reads nothing else. A host with no entry gets :attr:`RegistryConfig.default`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from chainproof.domain.destinations import DestinationPolicy
from chainproof.sources.registry.credentials import Credential

__all__ = ["RegistryConfig", "RegistryHost"]

#: Docker Hub is named docker.io in references but served from this host.
_ENDPOINTS = {"docker.io": "registry-1.docker.io"}


@dataclass(frozen=True, slots=True)
class RegistryHost:
    """One registry. ``insecure`` means plain HTTP (loopback test registries only)."""

    host: str
    insecure: bool = False
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    credential: Credential | None = None
    #: Hosts tried first for reads (pull-through mirrors); content is digest-checked anyway.
    mirrors: tuple[str, ...] = ()
    #: Hosts a redirect may lead to (blob storage); credentials are never sent there.
    redirect_hosts: tuple[str, ...] = ()
    timeout_seconds: float = 2.0
    max_retries: int = 2

    @property
    def endpoint(self) -> str:
        return _ENDPOINTS.get(self.host, self.host)

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.endpoint}"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Every known registry and the bounds that apply to all of them."""

    hosts: Mapping[str, RegistryHost] = field(default_factory=dict)
    default: RegistryHost = field(default_factory=lambda: RegistryHost(host="*"))
    max_manifest_bytes: int = 4 * 1024 * 1024
    max_blob_bytes: int = 16 * 1024 * 1024
    max_layers: int = 64
    max_referrers: int = 128
    max_redirects: int = 3
    backoff_seconds: float = 0.05
    max_backoff_seconds: float = 2.0
    #: How long a registry's answer to "do you have the referrers API?" is remembered.
    referrers_memory_seconds: float = 600.0
    #: Where requests may go (registry hosts come from pod specs, token realms from the
    #: registries): every address a host resolves to is checked (outbound.py).
    destinations: DestinationPolicy = field(default_factory=lambda: DestinationPolicy(()))
    #: How long a host's checked addresses are reused before it is resolved again.
    resolve_ttl_seconds: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", MappingProxyType(dict(self.hosts)))

    def host(self, name: str) -> RegistryHost:
        known = self.hosts.get(name)
        return known if known is not None else replace(self.default, host=name)
