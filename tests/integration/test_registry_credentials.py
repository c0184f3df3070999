"""Registry credentials against a real registry asking for basic authentication (Debian's
docker-registry with htpasswd): Docker credential helpers run as Docker runs them (a small real
helper program written here, found on PATH), config.json ``auths``, and pods' pull secrets read
from a real kube-apiserver (tests/kube.py), failing closed when one cannot be had.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chainproof.api.render import judge_document_json
from chainproof.config import AdmissionSettings, load_settings
from chainproof.domain.images import parse_image_reference
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.policy import Outcome
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.sources.kubernetes.client import ClusterConnection, api_client
from chainproof.sources.kubernetes.pull_secrets import ClusterPullSecrets
from chainproof.sources.registry.auth import (
    REVIEW_PULL_SECRETS,
    CredentialResolver,
    PullSecretScope,
)
from chainproof.sources.registry.client import Deadline, RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.credentials import DockerConfig
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.factory import build_registry_reader
from chainproof.sources.registry.helpers import CredentialHelpers
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import sign_image
from kube import KubeApiServer, running_kube_apiserver
from unit.services.judge_fixtures import System

HELPER = """#!{python}
import json, os, sys
server = sys.stdin.read()
with open(os.environ["CP_HELPER_LOG"], "a") as log:
    log.write(json.dumps({{"args": sys.argv[1:], "stdin": server}}) + "\\n")
mode = os.environ.get("CP_HELPER_MODE", "ok")
if mode == "missing":
    print("credentials not found in native keychain")
    sys.exit(1)
if mode == "fail":
    print("the keychain is locked", file=sys.stderr)
    sys.exit(3)
if mode == "garbage":
    print("user=alice")
    sys.exit(0)
print(json.dumps({{"ServerURL": server, "Username": "alice", "Secret": os.environ["CP_SECRET"]}}))
"""


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oci_registry_auth) -> Path:
    """docker-credential-cptest on PATH; it logs each call and answers as CP_HELPER_MODE says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-cptest"
    program.write_text(HELPER.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "helper.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CP_HELPER_LOG", str(log))
    monkeypatch.setenv("CP_SECRET", oci_registry_auth.credentials[1])
    return log


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _reader(host: str, docker: DockerConfig, **resolver) -> RegistryReader:
    client = RegistryClient(
        RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}),
        credentials=CredentialResolver(docker, **resolver),
    )
    return RegistryReader(client)


async def test_a_credential_helper_is_asked_as_docker_asks_it(oci_registry_auth, helper):
    reg = oci_registry_auth
    digest = reg.push_umoci_image("cred/helped", "v1", label="cred-helped")
    image = parse_image_reference(f"{reg.host}/cred/helped@{digest}")
    helpers = CredentialHelpers()
    reader = _reader(reg.host, DockerConfig(helpers={reg.host: "cptest"}), helpers=helpers)
    try:
        first = await reader.artifacts(image, Deadline(10))
        again = await reader.resolve(
            parse_image_reference(f"{reg.host}/cred/helped:v1"), Deadline(10)
        )
    finally:
        await reader.client.aclose()
    assert first.image == image.canonical
    assert again == digest
    calls = _calls(helper)
    # `docker-credential-NAME get`, the registry host on stdin; asked once, then cached.
    assert calls == [{"args": ["get"], "stdin": reg.host}]
    assert helpers.runs == 1


async def test_without_credentials_the_registry_refuses_and_the_error_says_so(oci_registry_auth):
    reg = oci_registry_auth
    digest = reg.push_umoci_image("cred/anon", "v1", label="cred-anon")
    reader = _reader(reg.host, DockerConfig())
    try:
        with pytest.raises(RegistryError, match="basic authentication and no credentials"):
            await reader.artifacts(
                parse_image_reference(f"{reg.host}/cred/anon@{digest}"), Deadline(10)
            )
    finally:
        await reader.client.aclose()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("missing", "basic authentication and no credentials"),  # not found: anonymous
        ("fail", r"docker-credential-cptest failed \(exit 3\): the keychain is locked"),
        ("garbage", "did not print JSON credentials"),
    ],
)
async def test_helper_trouble_fails_closed_naming_the_helper(
    oci_registry_auth, helper, monkeypatch, mode, expected
):
    monkeypatch.setenv("CP_HELPER_MODE", mode)
    reg = oci_registry_auth
    digest = reg.push_umoci_image("cred/trouble", "v1", label=f"cred-{mode}")
    reader = _reader(reg.host, DockerConfig(store="cptest"))  # credsStore: every registry
    try:
        with pytest.raises(RegistryError, match=f"registry {reg.host}: .*{expected}"):
            await reader.artifacts(
                parse_image_reference(f"{reg.host}/cred/trouble@{digest}"), Deadline(10)
            )
    finally:
        await reader.client.aclose()


async def test_a_helper_that_is_not_installed_is_named(oci_registry_auth):
    reg = oci_registry_auth
    reader = _reader(reg.host, DockerConfig(helpers={reg.host: "nosuchhelper"}))
    try:
        with pytest.raises(RegistryError, match="docker-credential-nosuchhelper is not installed"):
            await reader.resolve(parse_image_reference(f"{reg.host}/cred/x:v1"), Deadline(10))
    finally:
        await reader.client.aclose()


async def test_config_json_from_settings_with_auths_and_cred_helpers(
    oci_registry_auth, helper, tmp_path
):
    reg = oci_registry_auth
    digest = reg.push_umoci_image("cred/settings", "v1", label="cred-settings")
    user, password = reg.credentials
    inline = tmp_path / "inline.json"
    inline.write_text(
        json.dumps(
            {
                "auths": {
                    reg.host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
                }
            }
        )
    )
    helped = tmp_path / "helped.json"
    # docker login with a helper leaves an empty auths entry; the helper is what counts.
    helped.write_text(json.dumps({"auths": {reg.host: {}}, "credHelpers": {reg.host: "cptest"}}))
    ref = parse_image_reference(f"{reg.host}/cred/settings:v1")
    for path in (inline, helped):
        settings = load_settings(
            registry={
                "docker_config_file": str(path),
                "hosts": [{"host": reg.host, "insecure": True}],
            }
        )
        reader = build_registry_reader(settings.registry, None)
        try:
            assert await reader.resolve(ref, Deadline(10)) == digest
        finally:
            await reader.client.aclose()
    assert len(_calls(helper)) == 1  # only the second config runs the helper


# ------------------------------------------------------------------ pull secrets from a cluster

NS = "shop"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        yield server


def _make(c: httpx.Client, path: str, body: dict) -> None:
    r = c.post(path, json=body)
    assert r.status_code in (201, 409), r.text


def _auth(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _docker_secret(name: str, host: str, user: str, password: str, **more: dict) -> dict:
    return _secret_of(name, {host: _auth(user, password), **more})


def _secret_of(name: str, auths: dict) -> dict:
    config = {"auths": auths}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


@pytest.fixture(scope="module")
def cluster(kube: KubeApiServer, oci_registry_auth) -> KubeApiServer:
    """Namespace shop: a good pull secret, a wrong one, an Opaque one, and ServiceAccounts."""
    host = oci_registry_auth.host
    user, password = oci_registry_auth.credentials
    with kube.client() as c:
        _make(
            c,
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        )
        base = f"/api/v1/namespaces/{NS}"
        _make(c, f"{base}/secrets", _docker_secret("regcred", host, user, password))
        _make(c, f"{base}/secrets", _docker_secret("stale", host, user, "old-password"))
        # Path-scoped keys: team-a's good credential, a wrong one for the rest of the host.
        _make(
            c,
            f"{base}/secrets",
            _docker_secret(
                "teams", host, user, "wrong", **{f"{host}/team-a": _auth(user, password)}
            ),
        )
        _make(
            c,
            f"{base}/secrets",
            _secret_of("only-a", {f"https://{host}/v2/team-a/": _auth(user, password)}),
        )
        wildcard = host.rsplit(".", 1)[0] + ".*" + host[host.index(":") :]  # 127.0.0.*:PORT
        _make(c, f"{base}/secrets", _secret_of("wild", {wildcard: _auth(user, password)}))
        _make(
            c,
            f"{base}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "opaque"},
                "type": "Opaque",
                "data": {},
            },
        )
        for name, secrets in (
            ("plain", []),
            ("builder", [{"name": "regcred"}]),
            ("chainproof", []),
        ):
            _make(
                c,
                f"{base}/serviceaccounts",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name},
                    "imagePullSecrets": secrets,
                },
            )
    return kube


def _pull_secrets(kube: KubeApiServer, token: str | None = None) -> ClusterPullSecrets:
    async def make():
        return await api_client(
            ClusterConnection(
                name="test", url=kube.url, token=token or kube.token, ca_file=kube.ca_file
            )
        )

    return ClusterPullSecrets(make)


async def _judge_pod(reg, kube_secrets, signer_system, workload) -> object:
    system, _signer = signer_system
    host = reg.host
    client = RegistryClient(
        RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}),
        credentials=CredentialResolver(pull_secrets=kube_secrets),
    )
    system.gatherer.registry = RegistryEvidence(RegistryReader(client))
    admission = AdmissionService(
        system.judge, system.decisions, system.grafeas, AdmissionSettings(project="app")
    )
    try:
        return await admission.review(workload, uid="pull")
    finally:
        await admission.close()
        await client.aclose()


@pytest.fixture
async def signed_image(oci_registry_auth):
    reg = oci_registry_auth
    system = System()
    signer = await system.attestor("sec", "qa")
    doc = judge_document_json(await system.resources.get_attestor(signer.attestor))
    doc["evidenceSource"] = "REGISTRY"
    await system.resources.update_attestor(signer.attestor, doc)
    await system.policy(
        "app",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [signer.attestor],
        },
    )
    digest = reg.push_umoci_image("cred/pod", "v1", label="cred-pod")
    sign_image(reg, "cred/pod", digest, signer.signer)
    return system, signer, f"{reg.host}/cred/pod@{digest}"


def _pod(image: str, account: str, secrets: tuple[str, ...] = ()) -> Workload:
    return Workload("Pod", "p", NS, account, (ContainerImage("containers[0]", image),), {}, secrets)


async def test_pull_secrets_of_the_pod_and_its_service_account(
    cluster, oci_registry_auth, signed_image
):
    system, signer, image = signed_image
    reg = oci_registry_auth
    secrets = _pull_secrets(cluster)
    try:
        by_pod = await _judge_pod(
            reg, secrets, (system, signer), _pod(image, "plain", ("regcred",))
        )
        by_account = await _judge_pod(reg, secrets, (system, signer), _pod(image, "builder"))
        # The pod's own secret comes first: a stale one there wins over the account's good one
        # (and the registry refuses it), as with the kubelet.
        stale_first = await _judge_pod(
            reg, secrets, (system, signer), _pod(image, "builder", ("stale",))
        )
        none = await _judge_pod(reg, secrets, (system, signer), _pod(image, "plain"))
    finally:
        await secrets.close()
    assert by_pod.allowed, by_pod.message
    assert by_account.allowed, by_account.message
    assert by_pod.decision.outcome is Outcome.ALLOWED
    assert not stale_first.allowed
    assert f"registry {reg.host}" in stale_first.message
    assert not none.allowed and "no credentials" in none.message


async def _signed(reg, system, signer, repository: str) -> str:
    digest = reg.push_umoci_image(repository, "v1", label=repository)
    sign_image(reg, repository, digest, signer.signer)
    return f"{reg.host}/{repository}@{digest}"


async def test_pull_secret_keys_are_scoped_by_path_as_the_kubelet_scopes_them(
    cluster, oci_registry_auth, signed_image
):
    """A secret with ``host/team-a`` (good) and ``host`` (wrong): team-a's images get team-a's
    credential, team-b's get the host's — never team-a's — and the registry refuses that one."""
    system, signer, _image = signed_image
    reg = oci_registry_auth
    team_a = await _signed(reg, system, signer, "team-a/app")
    team_b = await _signed(reg, system, signer, "team-b/app")
    lookalike = await _signed(reg, system, signer, "team-ab/app")
    secrets = _pull_secrets(cluster)
    judged = {}
    try:
        for label, image, names in (
            ("a", team_a, ("teams",)),
            ("b", team_b, ("teams",)),
            ("b-only-a", team_b, ("only-a",)),
            ("ab-only-a", lookalike, ("only-a",)),
            ("a-only-a", team_a, ("only-a",)),
            ("wild", team_b, ("wild",)),
        ):
            judged[label] = await _judge_pod(
                reg, secrets, (system, signer), _pod(image, "plain", names)
            )
    finally:
        await secrets.close()
    assert judged["a"].allowed, judged["a"].message
    assert not judged["b"].allowed  # the host-wide key's wrong password, not team-a's
    assert f"registry {reg.host}" in judged["b"].message
    assert "no credentials" not in judged["b"].message
    # A secret only for team-a: team-b's and team-ab's pulls go anonymous, and are refused.
    assert not judged["b-only-a"].allowed and "no credentials" in judged["b-only-a"].message
    assert not judged["ab-only-a"].allowed and "no credentials" in judged["ab-only-a"].message
    assert judged["a-only-a"].allowed, judged["a-only-a"].message
    assert judged["wild"].allowed, judged["wild"].message  # 127.0.0.*:PORT covers the host


@pytest.mark.parametrize(
    ("account", "names", "reason"),
    [
        ("plain", ("nosuch",), f"secret {NS}/nosuch does not exist"),
        ("plain", ("opaque",), f"secret {NS}/opaque: pull secret type 'Opaque'"),
        ("ghost", (), f"service account {NS}/ghost does not exist"),
    ],
)
async def test_a_missing_or_unusable_pull_secret_denies_naming_it(
    cluster, oci_registry_auth, signed_image, account, names, reason
):
    system, signer, image = signed_image
    secrets = _pull_secrets(cluster)
    try:
        result = await _judge_pod(
            oci_registry_auth, secrets, (system, signer), _pod(image, account, names)
        )
    finally:
        await secrets.close()
    assert not result.allowed
    assert "pull secrets of the workload in namespace shop cannot be read" in result.message
    assert reason in result.message, result.message


async def test_forbidden_secrets_deny_and_say_which_permission_is_missing(
    cluster, oci_registry_auth, signed_image
):
    system, signer, image = signed_image
    with cluster.client() as c:
        r = c.post(
            f"/api/v1/namespaces/{NS}/serviceaccounts/chainproof/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        assert r.status_code == 201, r.text
        token = r.json()["status"]["token"]
    secrets = _pull_secrets(cluster, token)
    try:
        refused = await _judge_pod(
            oci_registry_auth, secrets, (system, signer), _pod(image, "plain", ("regcred",))
        )
        with cluster.client() as c:
            base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}"
            _make(
                c,
                f"{base}/roles",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": "chainproof-pull-secrets"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "resources": ["secrets", "serviceaccounts"],
                            "verbs": ["get"],
                        }
                    ],
                },
            )
            _make(
                c,
                f"{base}/rolebindings",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": "chainproof-pull-secrets"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "chainproof-pull-secrets",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "chainproof", "namespace": NS}],
                },
            )
        granted = await _judge_pod(
            oci_registry_auth, secrets, (system, signer), _pod(image, "plain", ("regcred",))
        )
    finally:
        await secrets.close()
    assert not refused.allowed
    assert "refused (HTTP 403)" in refused.message and "get on secrets" in refused.message
    assert granted.allowed, granted.message


async def test_secrets_are_read_once_per_review_and_only_when_a_registry_is_asked(
    cluster, oci_registry_auth, signed_image
):
    _system, _signer, image = signed_image
    secrets = _pull_secrets(cluster)
    try:
        scope = PullSecretScope(NS, "plain", ("regcred",))
        token = REVIEW_PULL_SECRETS.set(scope)
        try:
            resolver = CredentialResolver(pull_secrets=secrets)
            host = RegistryHost(host=oci_registry_auth.host, insecure=True)
            first = await resolver.credential(host, "cred/pod", Deadline(10))
            second = await resolver.credential(host, "cred/pod", Deadline(10))
        finally:
            REVIEW_PULL_SECRETS.reset(token)
        reads = secrets.reads
        # A scribe-only review never reads them: nothing asks the registry.
        scribe = System()
        scribe_signer = await scribe.attestor("sec", "qa")
        await scribe.policy(
            "app",
            {
                "evaluationMode": "REQUIRE_ATTESTATION",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                "requireAttestationsBy": [scribe_signer.attestor],
            },
        )
        await scribe.sign(scribe_signer, image)
        result = await _judge_pod(
            oci_registry_auth, secrets, (scribe, scribe_signer), _pod(image, "plain", ("nosuch",))
        )
    finally:
        await secrets.close()
    assert first is not None and first == second and first.username == "alice"
    # The secret, once; the ServiceAccount is not read: the pod names its own secrets (the API
    # server gives a pod its ServiceAccount's only when it names none).
    assert reads == 1
    assert result.allowed, result.message
    assert secrets.reads == reads


def test_the_server_pins_tags_with_the_pods_pull_secret_from_the_cluster(
    cluster, oci_registry_auth, tmp_path
):
    """End to end through `registry.pull_secrets`: the mutating webhook resolves the tag with
    the pod's secret read from the cluster, and refuses when the secret is missing."""
    from integration.test_webhook_support import admission_review
    from live import live_server

    reg = oci_registry_auth
    digest = reg.push_umoci_image("cred/mutate", "1.0", label="cred-mutate")
    token = tmp_path / "token"
    token.write_text(cluster.token)
    registry = {
        "resolve_tags": True,
        "hosts": [{"host": reg.host, "insecure": True}],
        "pull_secrets": {
            "url": cluster.url,
            "token_file": str(token),
            "ca_file": str(cluster.ca_file),
        },
    }

    def pod(secrets: list[str]) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "serviceAccountName": "plain",
                "imagePullSecrets": [{"name": n} for n in secrets],
                "containers": [{"name": "web", "image": f"{reg.host}/cred/mutate:1.0"}],
            },
        }

    with (
        live_server(grpc_enabled=False, registry=registry) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as c,
    ):
        answers = []
        for secrets in (["regcred"], ["nosuch"]):
            r = c.post(
                "/webhook/mutate?timeout=10s", json=admission_review(pod(secrets), namespace=NS)
            )
            assert r.status_code == 200, r.text
            answers.append(r.json()["response"])
    pinned, refused = answers
    assert pinned["allowed"] is True
    assert digest in base64.b64decode(pinned["patch"]).decode()
    assert refused["allowed"] is False
    assert f"secret {NS}/nosuch does not exist" in refused["status"]["message"]
