"""TLS and mutual TLS for both entrypoints, with a CA and certificates made in the test.

The same ``tls`` settings (cert_file, key_file, client_ca_file) drive the gRPC server; the REST
server gets the same files through uvicorn's ssl options, as ``chainproof serve`` passes them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.api_core import exceptions as gexc
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import grafeas as g
from grafeas.grafeas_v1.types import package
from grpc_health.v1 import health_pb2, health_pb2_grpc

from live import LiveServer, live_server


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path

    def read(self, path: Path) -> bytes:
        return path.read_bytes()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: Any = None,
    san: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(directory: Path, stem: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("chainproof test CA", None, ca=True)
    ca_path, _ = _write(d, "ca", ca_cert, ca_key)
    issuer = (ca_cert.subject, ca_key)
    server_cert, server_key = _issue(
        "chainproof server",
        issuer,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        san=[
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    client_cert, client_key = _issue("build-bot", issuer, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    # Signed by a CA the server does not trust.
    other_ca_cert, other_ca_key = _issue("someone else's CA", None, ca=True)
    stranger_cert, stranger_key = _issue(
        "stranger",
        (other_ca_cert.subject, other_ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    s_cert, s_key = _write(d, "server", server_cert, server_key)
    c_cert, c_key = _write(d, "client", client_cert, client_key)
    x_cert, x_key = _write(d, "stranger", stranger_cert, stranger_key)
    return Pki(ca_path, s_cert, s_key, c_cert, c_key, x_cert, x_key)


def _tls_server(pki: Pki, *, mutual: bool) -> Any:
    tls: dict[str, str] = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    uvicorn_ssl: dict[str, Any] = {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
    }
    if mutual:
        tls["client_ca_file"] = str(pki.ca)
        uvicorn_ssl |= {"ssl_ca_certs": str(pki.ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    # The client certificate's CN names the caller; make it an administrator.
    auth = {"bootstrap_admins": ["cert:build-bot"]}
    return live_server(grpc_enabled=True, tls=tls, ssl=uvicorn_ssl, auth=auth)


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[LiveServer]:
    with _tls_server(pki, mutual=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[LiveServer]:
    with _tls_server(pki, mutual=True) as srv:
        yield srv


def _grpc_credentials(pki: Pki, cert: Path | None = None, key: Path | None = None) -> Any:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.read(pki.ca),
        private_key=pki.read(key) if key else None,
        certificate_chain=pki.read(cert) if cert else None,
    )


def _client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> Any:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


def _note() -> g.Note:
    return g.Note(package=package.PackageNote(name="openssl"))


def test_grpc_over_tls_with_the_official_client(pki: Pki, tls_server: LiveServer) -> None:
    with grpc.secure_channel(tls_server.grpc_target, _grpc_credentials(pki)) as ch:
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=ch))
        made = client.create_note(parent="projects/tls", note_id="n", note=_note())
        assert client.get_note(name=made.name).package.name == "openssl"


def test_grpc_plaintext_client_cannot_talk_to_a_tls_server(tls_server: LiveServer) -> None:
    with grpc.insecure_channel(tls_server.grpc_target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_grpc_client_that_does_not_trust_the_server_ca_is_refused(
    pki: Pki, tls_server: LiveServer
) -> None:
    untrusting = grpc.ssl_channel_credentials(root_certificates=pki.read(pki.stranger_cert))
    with grpc.secure_channel(tls_server.grpc_target, untrusting) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_rest_over_tls(pki: Pki, tls_server: LiveServer) -> None:
    assert tls_server.base_url.startswith("https://")
    with httpx.Client(base_url=tls_server.base_url, verify=_client_context(pki)) as http:
        reply = http.post(
            "/v1/projects/tls-rest/notes",
            params={"noteId": "n"},
            json={"package": {"name": "openssl"}},
        )
        assert reply.status_code == 200, reply.text
        assert http.get("/v1/projects/tls-rest/notes/n").json()["name"] == (
            "projects/tls-rest/notes/n"
        )


def test_grpc_mutual_tls_admits_a_client_certificate_from_the_ca(
    pki: Pki, mtls_server: LiveServer
) -> None:
    creds = _grpc_credentials(pki, pki.client_cert, pki.client_key)
    with grpc.secure_channel(mtls_server.grpc_target, creds) as ch:
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=ch))
        made = client.create_note(parent="projects/mtls", note_id="n", note=_note())
        assert made.name == "projects/mtls/notes/n"


@pytest.mark.parametrize("who", ["no certificate", "a stranger's certificate"])
def test_grpc_mutual_tls_refuses_other_clients(pki: Pki, mtls_server: LiveServer, who: str) -> None:
    if who == "no certificate":
        creds = _grpc_credentials(pki)
    else:
        creds = _grpc_credentials(pki, pki.stranger_cert, pki.stranger_key)
    with grpc.secure_channel(mtls_server.grpc_target, creds) as ch:
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=ch))
        with pytest.raises(gexc.ServiceUnavailable):
            client.get_note(name="projects/mtls/notes/n", timeout=3, retry=None)


def test_rest_mutual_tls_admits_a_client_certificate_from_the_ca(
    pki: Pki, mtls_server: LiveServer
) -> None:
    context = _client_context(pki, pki.client_cert, pki.client_key)
    with httpx.Client(base_url=mtls_server.base_url, verify=context) as http:
        reply = http.get("/v1/projects/mtls-rest/notes")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"notes": []}


@pytest.mark.parametrize("who", ["no certificate", "a stranger's certificate"])
def test_rest_mutual_tls_refuses_other_clients(pki: Pki, mtls_server: LiveServer, who: str) -> None:
    if who == "no certificate":
        context = _client_context(pki)
    else:
        context = _client_context(pki, pki.stranger_cert, pki.stranger_key)
    with (
        httpx.Client(base_url=mtls_server.base_url, verify=context) as http,
        pytest.raises(httpx.TransportError),
    ):
        http.get("/v1/projects/mtls-rest/notes")
