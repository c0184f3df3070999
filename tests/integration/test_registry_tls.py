"""Custom CA and mutual TLS per registry, against the fake registry served over HTTPS."""

from __future__ import annotations

import ssl

import pytest

from chainproof.sources.registry.client import Deadline, RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.errors import RegistryError
from fake_registry import FakeRegistry, serve_fake
from integration.test_cli_tls import pki  # noqa: F401  (the fixture)

BODY = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def mtls_fake(pki):  # noqa: F811
    options = {
        "ssl_certfile": str(pki / "server.pem"),
        "ssl_keyfile": str(pki / "server.key"),
        "ssl_ca_certs": str(pki / "ca.pem"),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serve_fake(FakeRegistry(), options) as fake:
        fake.put_manifest("app", "v1", BODY, INDEX)
        yield fake


async def fetch(host: RegistryHost):
    client = RegistryClient(RegistryConfig(hosts={host.host: host}))
    try:
        return await client.manifest(host.host, "app", "v1", Deadline(5))
    finally:
        await client.aclose()


async def test_custom_ca_and_client_certificate(mtls_fake, pki):  # noqa: F811
    host = RegistryHost(
        host=mtls_fake.host,
        ca_file=str(pki / "ca.pem"),
        client_cert=str(pki / "client.pem"),
        client_key=str(pki / "client.key"),
    )
    fetched = await fetch(host)
    assert fetched is not None and fetched.media_type == INDEX


async def test_without_the_client_certificate_or_the_ca_it_fails_naming_the_registry(
    mtls_fake,
    pki,  # noqa: F811
):
    with pytest.raises(RegistryError, match=f"registry {mtls_fake.host}"):
        await fetch(RegistryHost(host=mtls_fake.host, ca_file=str(pki / "ca.pem"), max_retries=0))
    with pytest.raises(RegistryError, match=f"registry {mtls_fake.host}"):
        await fetch(
            RegistryHost(
                host=mtls_fake.host,
                client_cert=str(pki / "client.pem"),
                client_key=str(pki / "client.key"),
                max_retries=0,
            )
        )
