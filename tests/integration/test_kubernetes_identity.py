"""ServiceAccount tokens from a real kube-apiserver: through TokenReview and as OIDC."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chainproof.errors import Unauthenticated
from chainproof.iam.jwt import IssuerConfig
from chainproof.sources.oidc import KeySource, OidcIssuer
from chainproof.sources.tokenreview import TokenReviewer
from kube import KubeApiServer, running_kube_apiserver


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with running_kube_apiserver(tmp_path_factory.mktemp("kube")) as server:
        with server.client() as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": "ci"}}).raise_for_status()
            c.post(
                "/api/v1/namespaces/ci/serviceaccounts", json={"metadata": {"name": "builder"}}
            ).raise_for_status()
            # Let chainproof read the issuer's discovery document and keys anonymously, as
            # the API server's own documentation suggests for OIDC relying parties.
            c.post(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                json={
                    "metadata": {"name": "oidc-discovery-anonymous"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "system:service-account-issuer-discovery",
                    },
                    "subjects": [
                        {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Group",
                            "name": "system:unauthenticated",
                        }
                    ],
                },
            ).raise_for_status()
        yield server


def sa_token(kube: KubeApiServer, audience: str) -> str:
    with kube.client() as c:
        r = c.post(
            "/api/v1/namespaces/ci/serviceaccounts/builder/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"audiences": [audience], "expirationSeconds": 600},
            },
        )
        r.raise_for_status()
        token: str = r.json()["status"]["token"]
        return token


@pytest.fixture
def credential(kube: KubeApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(kube.token + "\n")
    return path


async def test_tokenreview_names_the_service_account(kube: KubeApiServer, credential: Path) -> None:
    reviewer = TokenReviewer(
        kube.url,
        credential_file=credential,
        ca_file=kube.ca_file,
        audiences=("chainproof",),
        clock=now,
    )
    try:
        p = await reviewer.verify(sa_token(kube, "chainproof"))
        assert p.member == "serviceAccount:ci:builder"
        assert p.via == "kubernetes-tokenreview"
        with pytest.raises(Unauthenticated, match="does not accept"):
            await reviewer.verify(sa_token(kube, "someone-else"))
        with pytest.raises(Unauthenticated, match="does not accept"):
            await reviewer.verify("not-a-token")
        # The cluster admin's static token is a user, not a ServiceAccount.
        unrestricted = TokenReviewer(
            kube.url, credential_file=credential, ca_file=kube.ca_file, clock=now
        )
        try:
            with pytest.raises(Unauthenticated, match="not a ServiceAccount"):
                await unrestricted.verify(kube.token)
        finally:
            await unrestricted.close()
    finally:
        await reviewer.close()


async def test_service_account_token_as_oidc(kube: KubeApiServer) -> None:
    ctx = ssl.create_default_context(cafile=str(kube.ca_file))
    async with httpx.AsyncClient(verify=ctx) as anonymous:
        doc = (await anonymous.get(kube.issuer + "/.well-known/openid-configuration")).json()
    assert doc["issuer"] == kube.issuer
    issuer = OidcIssuer(
        IssuerConfig(issuer=kube.issuer, audiences=("chainproof",), kind="kubernetes"),
        KeySource(ca_file=kube.ca_file),
        clock=now,
    )
    try:
        p = await issuer.verify(sa_token(kube, "chainproof"))
        assert p.member == "serviceAccount:ci:builder"
        assert p.via == "kubernetes-oidc"
        with pytest.raises(Unauthenticated, match="audience"):
            await issuer.verify(sa_token(kube, "someone-else"))
    finally:
        await issuer.close()


def test_service_account_calls_chainproof_through_both_routes(
    kube: KubeApiServer, credential: Path
) -> None:
    from live import live_server

    oidc = {
        "issuer": kube.issuer,
        "audiences": ["chainproof"],
        "kind": "kubernetes",
        "ca_file": str(kube.ca_file),
    }
    review = {
        "api_server": kube.url,
        "credential_file": str(credential),
        "ca_file": str(kube.ca_file),
    }
    for auth in (
        {"oidc_issuers": [oidc]},
        {"token_review": {**review, "audiences": ["chainproof"]}},
    ):
        settings = {
            "anonymous": "none",
            "bootstrap_admins": ["serviceAccount:ci:builder"],
            **auth,
        }
        with live_server(grpc_enabled=False, auth=settings) as server:
            token = sa_token(kube, "chainproof")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.base_url, headers=headers) as http:
                me = http.get("/v1/auth:whoami").json()
                assert me["member"] == "serviceAccount:ci:builder"
                made = http.post("/v1/projects/k8s/notes?noteId=n", json={"attestation": {}})
                assert made.status_code == 200, made.text
                assert http.delete("/v1/projects/k8s/notes/n").status_code == 200
            other = httpx.get(
                f"{server.base_url}/v1/auth:whoami",
                headers={"Authorization": f"Bearer {sa_token(kube, 'someone-else')}"},
            )
            assert other.status_code == 401
