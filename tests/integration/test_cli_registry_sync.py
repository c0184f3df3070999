"""`chainproof registry sync` against a live server and a real registry (docker-registry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.cli.main import _register_groups, app
from chainproof.crypto.signing import PkixSigner
from cosign_layout import attest_image, sign_image
from integration.test_cli_attestations import make_attestor, ok
from live import LiveServer, live_server

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def test_sync_records_verified_registry_evidence_once(server, oci_registry, tmp_path: Path):
    prefix = make_attestor(server, tmp_path, "sec", "ci", "ECDSA_P256_SHA256")
    signer = PkixSigner.from_pem(Path(f"{prefix}.key").read_bytes(), "ECDSA_P256_SHA256")
    digest = oci_registry.push_umoci_image("sync/app", "v1", label="sync")
    other = oci_registry.push_umoci_image("sync/app", "v2", label="sync-other")
    sign_image(oci_registry, "sync/app", digest, signer)
    attest_image(oci_registry, "sync/app", digest, signer, SLSA_PROVENANCE_V1, {"runDetails": {}})
    config = tmp_path / "settings.json"
    config.write_text(
        json.dumps({"registry": {"hosts": [{"host": oci_registry.host, "insecure": True}]}})
    )
    args = [
        "registry",
        "sync",
        f"{oci_registry.host}/sync/app:v1",
        "--attestor",
        "projects/sec/attestors/ci",
        "--project",
        "app",
        "--config",
        str(config),
        "--server",
        server.base_url,
        "--json",
    ]
    first = json.loads(ok(runner.invoke(app, args)).stdout)
    assert first["image"] == f"{oci_registry.host}/sync/app@{digest}"
    kinds = sorted(
        next(k for k in o if k in ("attestation", "dsseAttestation")) for o in first["recorded"]
    )
    assert kinds == ["attestation", "dsseAttestation"]
    second = json.loads(ok(runner.invoke(app, args)).stdout)
    assert second["recorded"] == []
    listed = httpx.get(
        f"{server.base_url}/v1/projects/app/occurrences",
        params={"filter": f'resourceUrl="{oci_registry.host}/sync/app@{digest}"'},
    ).json()
    assert len(listed["occurrences"]) == 2

    # A signature for another digest under v2's tag is reported, never recorded.
    sign_image(oci_registry, "sync/app", other, signer, payload_digest=digest)
    args[2] = f"{oci_registry.host}/sync/app:v2"
    result = ok(runner.invoke(app, args))
    assert json.loads(result.stdout)["recorded"] == []
    assert "not recorded" in result.output
