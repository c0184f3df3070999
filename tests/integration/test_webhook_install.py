"""Installing the webhook: `chainproof webhook certs` and `manifest`, the manifests in deploy/,
and the webhook served over HTTPS with the generated certificate (in-process, and through
`chainproof serve` as the Deployment runs it).
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from chainproof.cli.webhook import app as webhook_app
from integration.test_webhook_support import (
    UNSIGNED,
    admission_review,
    load_fixture,
    review,
    with_images,
)
from live import free_port, live_server

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(webhook_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    run(
        "certs",
        "--service", "chainproof",
        "--namespace", "chainproof",
        "--out", str(out),
        "--days", "30",
        "--san", "127.0.0.1",
        "--san", "localhost",
    )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- certs


def test_certs_name_the_service_and_chain_to_the_ca(certs: Path) -> None:
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    leaf = x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "chainproof",
        "chainproof.chainproof",
        "chainproof.chainproof.svc",
        "chainproof.chainproof.svc.cluster.local",
        "localhost",
    ]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.verify_directly_issued_by(ca)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 29 < lifetime.days <= 30
    assert (certs / "tls.key").stat().st_mode & 0o077 == 0
    assert (certs / "ca.key").stat().st_mode & 0o077 == 0
    if shutil.which("openssl"):  # a tool we did not write agrees
        out = subprocess.run(
            ["openssl", "verify", "-CAfile", certs / "ca.crt", certs / "tls.crt"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def test_certs_reuse_the_ca_on_renewal_unless_told(tmp_path: Path) -> None:
    args = ["certs", "--service", "cp", "--namespace", "sec", "--out", str(tmp_path)]
    assert "created CA" in run(*args)
    ca = (tmp_path / "ca.crt").read_bytes()
    first = (tmp_path / "tls.crt").read_bytes()
    assert "reused CA" in run(*args)
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (tmp_path / "tls.crt").read_bytes() != first
    run(*args, "--new-ca")
    assert (tmp_path / "ca.crt").read_bytes() != ca


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--service", "Bad_Name", "--namespace", "x"], "is not a Kubernetes name"),
        (["--service", "cp", "--namespace", "x", "--days", "0"], "--days must be between"),
    ],
)
def test_certs_refuse_bad_input(tmp_path: Path, args: list[str], expected: str) -> None:
    result = runner.invoke(webhook_app, ["certs", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert expected in result.output


# ----------------------------------------------------------------------------- manifest


def _manifest(certs: Path, *extra: str) -> dict[str, Any]:
    text = run(
        "manifest",
        "--service", "chainproof",
        "--namespace", "chainproof",
        "--ca-bundle", str(certs / "ca.crt"),
        *extra,
    )  # fmt: skip
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_manifest_shape(certs: Path) -> None:
    doc = _manifest(certs)
    assert doc["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert doc["kind"] == "ValidatingWebhookConfiguration"
    assert doc["metadata"]["name"] == "chainproof"
    [hook] = doc["webhooks"]
    assert hook["name"].count(".") >= 2  # the API server wants a fully qualified name
    assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert hook["clientConfig"]["service"] == {
        "name": "chainproof",
        "namespace": "chainproof",
        "path": "/webhook/admission",
        "port": 443,
    }
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (certs / "ca.crt").read_bytes()
    resources = {
        (rule["apiGroups"][0], rule["apiVersions"][0]): rule["resources"] for rule in hook["rules"]
    }
    assert resources == {
        ("", "v1"): ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
        ("apps", "v1"): ["deployments", "replicasets", "statefulsets", "daemonsets"],
        ("batch", "v1"): ["jobs", "cronjobs"],
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])
    [expr] = hook["namespaceSelector"]["matchExpressions"]
    assert expr == {
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": ["kube-system", "chainproof"],
    }
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] in ("None", "NoneOnDryRun")
    assert hook["timeoutSeconds"] == 5


def test_manifest_options_and_json(certs: Path) -> None:
    doc = _manifest(
        certs,
        "--timeout-seconds", "10",
        "--failure-policy", "Ignore",
        "--side-effects", "None",
        "--exclude-namespace", "istio-system",
        "-o", "json",
    )  # fmt: skip
    [hook] = doc["webhooks"]
    assert hook["timeoutSeconds"] == 10
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert "istio-system" in hook["namespaceSelector"]["matchExpressions"][0]["values"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--timeout-seconds", "31"], "between 1 and 30"),
        (["--failure-policy", "Maybe"], "Fail or Ignore"),
    ],
)
def test_manifest_refuses_bad_options(certs: Path, extra: list[str], expected: str) -> None:
    args = ["manifest", "--service", "cp", "--namespace", "cp"]
    result = runner.invoke(webhook_app, [*args, "--ca-bundle", str(certs / "ca.crt"), *extra])
    assert result.exit_code == 2 and expected in result.output


def test_manifest_refuses_a_bundle_that_is_not_a_certificate(certs: Path) -> None:
    args = ["manifest", "--service", "cp", "--namespace", "cp"]
    result = runner.invoke(webhook_app, [*args, "--ca-bundle", str(certs / "ca.key")])
    assert result.exit_code == 2 and "holds no PEM certificate" in result.output


def test_help_texts() -> None:
    for command in ("certs", "manifest"):
        result = runner.invoke(webhook_app, [command, "--help"])
        assert result.exit_code == 0
        assert "--service" in result.output and "--namespace" in result.output


def test_the_template_in_deploy_matches_the_command(certs: Path) -> None:
    template = yaml.safe_load(
        (DEPLOY / "webhook" / "validatingwebhookconfiguration.yaml").read_text()
    )
    printed = _manifest(certs)
    printed["webhooks"][0]["clientConfig"]["caBundle"] = "${CA_BUNDLE}"
    assert template == printed


# ----------------------------------------------------------------------------- deploy/


def _documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def test_every_manifest_parses_and_names_itself() -> None:
    docs = list(_documents())
    assert len(docs) >= 10
    for path, doc in docs:
        assert isinstance(doc.get("apiVersion"), str), path
        assert isinstance(doc.get("kind"), str), path
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], path


def test_kustomizations_list_existing_files() -> None:
    for path, doc in _documents():
        if doc["kind"] == "Kustomization":
            for resource in doc["resources"]:
                assert (path.parent / resource).exists(), (path, resource)


def test_the_deployment_runs_the_webhook_as_documented() -> None:
    objects = {(d["kind"], d["metadata"]["name"]): d for _, d in _documents() if "metadata" in d}
    deployment = objects[("Deployment", "chainproof")]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    env = {e["name"]: e for e in container["env"]}
    assert env["CHAINPROOF_HOST"]["value"] == "0.0.0.0"  # noqa: S104 - in the pod
    assert env["CHAINPROOF_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "chainproof-database",
        "key": "url",
    }
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "chainproof-tls"
    config = objects[("ConfigMap", "chainproof-config")]["data"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")["mountPath"]
    assert config["CHAINPROOF_TLS__CERT_FILE"] == f"{mount}/tls.crt"
    assert config["CHAINPROOF_TLS__KEY_FILE"] == f"{mount}/tls.key"
    # The webhook-secret key: a Secret of its own, where the settings look for it (the root
    # filesystem is read-only, so the default path under data/ could not be made there).
    key_volume = next(v for v in pod["volumes"] if v["name"] == "webhook-key")
    assert key_volume["secret"]["secretName"] == "chainproof-webhook-key"
    key_mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-key")
    assert config["CHAINPROOF_NOTIFICATIONS__SECRET_KEY_FILE"] == f"{key_mount['mountPath']}/key"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "grpc": 8090}
    assert config["CHAINPROOF_PORT"] == "8443"
    service = objects[("Service", "chainproof")]["spec"]["ports"]
    assert {(p["port"], p["targetPort"]) for p in service} == {(443, "https"), (8090, "grpc")}
    assert objects[("Secret", "chainproof-database")]["stringData"]["url"].startswith(
        "postgresql://"
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_deploy() -> None:
    env = {**os.environ, "KUBECONFIG": "/dev/null"}
    for target in (DEPLOY, DEPLOY / "postgres-demo"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(target)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
        assert kinds, target
    assert "Deployment" in kinds or target.name == "postgres-demo"


# ----------------------------------------------------------------------------- HTTPS


def _client(base_url: str, certs: Path) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    return httpx.Client(base_url=base_url, verify=context, timeout=20)


def test_webhook_over_tls_with_the_generated_certificate(certs: Path) -> None:
    tls = {"ssl_certfile": str(certs / "tls.crt"), "ssl_keyfile": str(certs / "tls.key")}
    with live_server(grpc_enabled=False, ssl=tls) as srv, _client(srv.base_url, certs) as client:
        assert srv.base_url.startswith("https://")
        response = review(client, admission_review(with_images(load_fixture("pod.json"), UNSIGNED)))
        assert response["allowed"] is False
        assert "projects/default has no policy" in response["status"]["message"]
        # The name the API server dials verifies too (resolved to loopback here).
        localhost = srv.base_url.replace("127.0.0.1", "localhost")
        with _client(localhost, certs) as by_name:
            assert by_name.get("/healthz").status_code == 200


def test_chainproof_serve_over_tls(certs: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CHAINPROOF_TLS__CERT_FILE": str(certs / "tls.crt"),
        "CHAINPROOF_TLS__KEY_FILE": str(certs / "tls.key"),
        "CHAINPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "CHAINPROOF_LOG_LEVEL": "warning",
    }
    serve = [sys.executable, "-c", "from chainproof.cli.main import main; main()", "serve"]
    proc = subprocess.Popen(
        [*serve, "--port", str(port), "--no-grpc"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with _client(f"https://127.0.0.1:{port}", certs) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "chainproof serve did not become ready"
                time.sleep(0.1)
            pod = with_images(load_fixture("pod.json"), UNSIGNED)
            assert review(client, admission_review(pod))["allowed"] is False
        # Plain HTTP is not served on the TLS port.
        with pytest.raises(httpx.TransportError), httpx.Client(timeout=5) as plain:
            plain.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
