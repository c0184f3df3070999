"""Building the registry client, cache and reader from settings (used by bootstrap only)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from sigstore.models import TrustedRoot

from chainproof.attest.sigstore_bundle import load_trusted_root
from chainproof.config import RegistrySettings
from chainproof.domain.destinations import DestinationPolicy
from chainproof.errors import InvalidArgument
from chainproof.sources.registry.auth import CredentialResolver, PullSecretSource
from chainproof.sources.registry.cache import RegistryCache
from chainproof.sources.registry.client import RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.credentials import DockerConfig, read_docker_config
from chainproof.sources.registry.metrics import RegistryMetrics
from chainproof.sources.registry.reader import RegistryReader

__all__ = [
    "build_registry_reader",
    "docker_config",
    "load_configured_trusted_root",
    "registry_config",
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {path}: {exc.strerror}") from exc


def docker_config(settings: RegistrySettings) -> DockerConfig:
    if settings.docker_config_file is None:
        return DockerConfig()
    return read_docker_config(_read(settings.docker_config_file, "Docker config"))


def registry_config(
    settings: RegistrySettings, destinations: DestinationPolicy | None = None
) -> RegistryConfig:
    hosts: dict[str, RegistryHost] = {}
    for h in settings.hosts:
        hosts[h.host] = RegistryHost(
            host=h.host,
            insecure=h.insecure,
            ca_file=str(h.ca_file) if h.ca_file else None,
            client_cert=str(h.client_cert_file) if h.client_cert_file else None,
            client_key=str(h.client_key_file) if h.client_key_file else None,
            mirrors=tuple(h.mirrors),
            redirect_hosts=tuple(h.redirect_hosts),
            timeout_seconds=h.timeout_seconds,
            max_retries=h.max_retries,
        )
    return RegistryConfig(
        hosts=hosts,
        default=RegistryHost(host="*", timeout_seconds=settings.timeout_seconds),
        max_manifest_bytes=settings.max_manifest_bytes,
        max_blob_bytes=settings.max_blob_bytes,
        destinations=destinations or DestinationPolicy(()),
    )


def build_registry_reader(
    settings: RegistrySettings,
    collectors: CollectorRegistry | None,
    *,
    pull_secrets: PullSecretSource | None = None,
    destinations: DestinationPolicy | None = None,
) -> RegistryReader:
    """``pull_secrets``: where pods' imagePullSecrets are read (None: not read);
    ``destinations``: where requests may go (settings.outbound; None: anywhere)."""
    metrics = RegistryMetrics(collectors)
    resolver = CredentialResolver(docker_config(settings), pull_secrets=pull_secrets)
    client = RegistryClient(
        registry_config(settings, destinations), metrics=metrics, credentials=resolver
    )

    def counted(registry: str, kind: str, hit: bool) -> None:
        metrics.cache.labels(registry, kind, "hit" if hit else "miss").inc()

    cache = RegistryCache(
        tag_ttl=settings.tag_ttl_seconds,
        negative_ttl=settings.negative_ttl_seconds,
        on_lookup=counted,
    )
    return RegistryReader(client, cache)


def load_configured_trusted_root(settings: RegistrySettings) -> TrustedRoot | None:
    if settings.trusted_root_file is None:
        return None
    return load_trusted_root(_read(settings.trusted_root_file, "Sigstore trusted root"))
