"""The CLI against a server that speaks TLS and requires client certificates (mutual TLS),
with a CA, server and client certificates made by the openssl command line tool."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

_register_groups()
runner = CliRunner()


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def issue(d: Path, name: str, extensions: str) -> None:
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr",
            cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=chainproof test CA",
            "-days", "2", "-out", "ca.pem", cwd=d)  # fmt: skip
    issue(d, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    issue(d, "client", "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture(scope="module")
def mtls_server(pki: Path) -> Iterator[LiveServer]:
    with live_server(
        grpc_enabled=False,
        # The client certificate's CN names the caller (cert:client); it administers.
        auth={"bootstrap_admins": ["cert:client"]},
        ssl={
            "ssl_certfile": str(pki / "server.pem"),
            "ssl_keyfile": str(pki / "server.key"),
            "ssl_ca_certs": str(pki / "ca.pem"),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        },
    ) as live:
        yield live


def test_mutual_tls(mtls_server: LiveServer, pki: Path) -> None:
    assert mtls_server.base_url.startswith("https://")
    base = ["attestor", "list", "--project", "p", "--server", mtls_server.base_url, "--json"]

    untrusted = runner.invoke(app, base)
    assert untrusted.exit_code == 3
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr

    anonymous = runner.invoke(app, [*base, "--ca-cert", str(pki / "ca.pem")])
    assert anonymous.exit_code == 3
    assert "cannot reach the chainproof server" in anonymous.stderr

    trusted = runner.invoke(
        app,
        [
            *base,
            "--ca-cert",
            str(pki / "ca.pem"),
            "--client-cert",
            str(pki / "client.pem"),
            "--client-key",
            str(pki / "client.key"),
        ],
    )
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.stdout) == {"attestors": []}
