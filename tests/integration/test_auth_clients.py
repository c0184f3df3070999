"""Real clients with real credentials: the official ``grafeas`` client with a bearer token
(``google.oauth2.credentials.Credentials``) over REST and gRPC (TLS), chainproof API tokens,
and Grafeas' attachOccurrence rule — only the QA team may attach to the QA note."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api_core import exceptions as gexc
from google.oauth2.credentials import Credentials
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import attestation as att_types
from grafeas.grafeas_v1.types import common, grafeas

from chainproof.iam import permissions as p
from live import LiveServer, live_server
from oidc_issuer import LoopbackIssuer, make_ca_and_server_cert, running_issuer

D = "sha256:" + "5" * 64
IMAGE = f"https://registry.example/app@{D}"
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackIssuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as it:
        yield it


@pytest.fixture(scope="module")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("server-pki"))


@pytest.fixture(scope="module")
def server(issuer: LoopbackIssuer, server_pki: tuple[Path, Path, Path]) -> Iterator[LiveServer]:
    _ca, cert, key = server_pki
    auth = {
        "anonymous": "none",
        "bootstrap_admins": ["user:admin@example.com"],
        "oidc_issuers": [
            {"issuer": issuer.url, "audiences": ["chainproof"], "ca_file": str(issuer.ca_file)}
        ],
    }
    # gRPC over TLS (bearer tokens travel only on secure channels); REST plain on loopback.
    tls = {"cert_file": str(cert), "key_file": str(key)}
    with live_server(auth=auth, tls=tls) as live:
        yield live


def user_token(issuer: LoopbackIssuer, name: str) -> str:
    email = f"{name}@example.com"
    return issuer.token(email=email, email_verified=True, sub=name, lifetime=HOUR)


def rest_client(server: LiveServer, token: str | None) -> GrafeasClient:
    from google.auth.credentials import AnonymousCredentials

    creds: Any = Credentials(token=token) if token else AnonymousCredentials()
    return GrafeasClient(
        transport=transports.GrafeasRestTransport(
            host=server.base_url.removeprefix("http://"), url_scheme="http", credentials=creds
        )
    )


def grpc_client(server: LiveServer, ca: Path, token: str | None) -> GrafeasClient:
    ssl = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    if token is None:
        channel = grpc.secure_channel(server.grpc_target, ssl)
        return GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
    return GrafeasClient(
        transport=transports.GrafeasGrpcTransport(
            host=server.grpc_target,
            credentials=Credentials(token=token),
            ssl_channel_credentials=ssl,
        )
    )


def admin_http(server: LiveServer, issuer: LoopbackIssuer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {user_token(issuer, 'admin')}"},
    )


def attestation(note: str) -> grafeas.Occurrence:
    return grafeas.Occurrence(
        resource_uri=IMAGE,
        note_name=note,
        attestation=att_types.AttestationOccurrence(
            serialized_payload=b"payload",
            signatures=[common.Signature(signature=b"sig", public_key_id="k1")],
        ),
    )


def qa_note() -> grafeas.Note:
    return grafeas.Note(
        attestation=att_types.AttestationNote(
            hint=att_types.AttestationNote.Hint(human_readable_name="qa")
        )
    )


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_official_client_with_a_bearer_token(
    server: LiveServer,
    issuer: LoopbackIssuer,
    server_pki: tuple[Path, Path, Path],
    transport: str,
) -> None:
    def client(token: str | None) -> GrafeasClient:
        if transport == "rest":
            return rest_client(server, token)
        return grpc_client(server, server_pki[0], token)

    parent = f"projects/clients-{transport}"
    admin = client(user_token(issuer, "admin"))
    note = admin.create_note(parent=parent, note_id="n", note=qa_note())
    assert admin.get_note(name=note.name) == note

    stranger = client(user_token(issuer, "stranger"))
    with pytest.raises(gexc.Forbidden, match=rf"{p.NOTES_GET}.*{parent}/notes/n"):
        stranger.get_note(name=note.name)
    if transport == "grpc":
        # (Over REST, google-auth answers a 401 by trying to refresh the credentials, so the
        # 401 itself is checked with plain HTTP in the next test.)
        with pytest.raises(gexc.Unauthenticated, match="authentication required"):
            client(None).get_note(name=note.name)
        expired = issuer.token(
            email="admin@example.com",
            email_verified=True,
            now=dt.datetime.now(dt.UTC) - 2 * HOUR,
        )
        with pytest.raises(gexc.Unauthenticated, match="expired"):
            client(expired).get_note(name=note.name)


def test_unauthenticated_rest_answers_401_with_www_authenticate(
    server: LiveServer, issuer: LoopbackIssuer
) -> None:
    r = httpx.get(f"{server.base_url}/v1/projects/x/notes")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="chainproof"'
    expired = issuer.token(
        email="admin@example.com", email_verified=True, now=dt.datetime.now(dt.UTC) - 2 * HOUR
    )
    late = httpx.get(
        f"{server.base_url}/v1/projects/x/notes", headers={"Authorization": f"Bearer {expired}"}
    )
    assert late.status_code == 401 and "expired" in late.json()["message"]
    assert expired not in late.text
    bad = httpx.get(
        f"{server.base_url}/v1/projects/x/notes", headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert bad.status_code == 401 and "Bearer" in bad.json()["message"]
    # Health probes need nothing.
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_only_the_qa_team_attaches_to_the_qa_note(
    server: LiveServer, issuer: LoopbackIssuer, server_pki: tuple[Path, Path, Path]
) -> None:
    qa_member = "user:qa@example.com"
    with admin_http(server, issuer) as http:
        r = http.post(
            "/v1/projects/qa/notes?noteId=qa-attestor",
            json={"attestation": {"hint": {"humanReadableName": "qa"}}},
        )
        assert r.status_code == 200, r.text
        # The QA team: may attach to the QA note (a note-level policy) and record in prod.
        r = http.post(
            "/v1/projects/qa/notes/qa-attestor:setIamPolicy",
            json={
                "policy": {
                    "bindings": [
                        {"role": "roles/containeranalysis.notes.attacher", "members": [qa_member]}
                    ]
                }
            },
        )
        assert r.status_code == 200, r.text
        r = http.post(
            "/v1/projects/prod:setIamPolicy",
            json={
                "policy": {
                    "bindings": [
                        {
                            "role": "roles/containeranalysis.occurrences.editor",
                            "members": [qa_member],
                        }
                    ]
                }
            },
        )
        assert r.status_code == 200, r.text
        # The CI writer: an API token that may only record facts in prod.
        r = http.post(
            "/v1/projects/prod/tokens",
            json={"name": "ci-writer", "role": "roles/containeranalysis.occurrences.editor"},
        )
        assert r.status_code == 200, r.text
        ci_secret = r.json()["secret"]
        assert r.json()["member"] == "token:ci-writer"

    note = "projects/qa/notes/qa-attestor"
    for client in (rest_client(server, ci_secret), grpc_client(server, server_pki[0], ci_secret)):
        with pytest.raises(gexc.Forbidden, match=rf"{p.NOTES_ATTACH_OCCURRENCE}.*{note}"):
            client.create_occurrence(parent="projects/prod", occurrence=attestation(note))
        with pytest.raises(gexc.Forbidden, match=p.NOTES_ATTACH_OCCURRENCE):
            client.batch_create_occurrences(parent="projects/prod", occurrences=[attestation(note)])
    qa = user_token(issuer, "qa")
    for client in (rest_client(server, qa), grpc_client(server, server_pki[0], qa)):
        made = client.create_occurrence(parent="projects/prod", occurrence=attestation(note))
        assert made.note_name == note
        # ... but QA may not write to the note itself, nor to another project.
        with pytest.raises(gexc.Forbidden, match=p.NOTES_UPDATE):
            client.update_note(
                name=note, note=qa_note(), update_mask={"paths": ["short_description"]}
            )
        with pytest.raises(gexc.Forbidden, match=p.OCCURRENCES_CREATE):
            client.create_occurrence(parent="projects/staging", occurrence=attestation(note))

    with admin_http(server, issuer) as http:
        log = http.get(
            "/v1/projects/qa/auditLogs", params={"permission": p.NOTES_ATTACH_OCCURRENCE}
        )
        outcomes = {(e["principal"], e["outcome"]) for e in log.json()["auditLogs"]}
        assert ("token:ci-writer", "denied") in outcomes
        assert (qa_member, "granted") in outcomes
        assert ci_secret not in log.text


def test_api_token_lifecycle(server: LiveServer, issuer: LoopbackIssuer) -> None:
    with admin_http(server, issuer) as http:
        r = http.post(
            "/v1/projects/tok/tokens",
            json={"name": "reader", "role": "roles/containeranalysis.notes.viewer"},
        )
        secret = r.json()["secret"]
        listed = http.get("/v1/projects/tok/tokens").json()["tokens"]
        assert [t["name"] for t in listed] == ["reader"]
        assert secret not in str(listed) and "secret" not in listed[0]
        reader = {"Authorization": f"Bearer {secret}"}
        assert http.get("/v1/projects/tok/notes", headers=reader).status_code == 200
        who = http.get("/v1/auth:whoami", headers=reader).json()
        assert who["member"] == "token:reader" and who["grants"] == [
            {"project": "tok", "role": "roles/containeranalysis.notes.viewer"}
        ]
        # Read-only: no writing, and no minting a stronger token.
        assert (
            http.post("/v1/projects/tok/notes?noteId=x", json={}, headers=reader).status_code == 403
        )
        # Token names are global: binding one nobody holds yet would hand the role to whoever
        # creates that name first, in any project, so it is refused.
        ghost = {"role": "roles/chainproof.admin", "members": ["token:ghost"]}
        squat = http.post("/v1/projects/tok:setIamPolicy", json={"policy": {"bindings": [ghost]}})
        assert squat.status_code == 400 and "token:ghost" in squat.json()["message"]
        assert http.delete("/v1/projects/tok/tokens/reader").status_code == 200
        gone = http.get("/v1/projects/tok/notes", headers=reader)
        assert gone.status_code == 401 and "revoked" in gone.json()["message"]


def test_a_token_cannot_carry_more_than_its_creator(
    server: LiveServer, issuer: LoopbackIssuer
) -> None:
    with admin_http(server, issuer) as http:
        r = http.post(
            "/v1/projects/esc:setIamPolicy",
            json={
                "policy": {
                    "bindings": [
                        {
                            "role": "roles/chainproof.tokenCreator",
                            "members": ["user:token-admin@example.com"],
                        }
                    ]
                }
            },
        )
        assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {user_token(issuer, 'token-admin')}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        boss = http.post(
            "/v1/projects/esc/tokens", json={"name": "boss", "role": "roles/chainproof.admin"}
        )
        assert boss.status_code == 403
        assert "would hold permissions you do not have" in boss.json()["message"]
        peer = http.post(
            "/v1/projects/esc/tokens",
            json={"name": "peer", "role": "roles/chainproof.tokenCreator"},
        )
        assert peer.status_code == 200, peer.text


def test_secrets_never_reach_the_logs(
    server: LiveServer, issuer: LoopbackIssuer, capfd: pytest.CaptureFixture[str]
) -> None:
    good = user_token(issuer, "stranger")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    api = "cpt_" + "x" * 43
    with httpx.Client(base_url=server.base_url) as http:
        for token in (good, forged, api):
            http.post(
                "/v1/projects/logs/notes?noteId=n",
                json={},
                headers={"Authorization": f"Bearer {token}"},
            )
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "permission denied" in text  # the denial was logged ...
    for token in (good, forged, api):
        assert token not in text  # ... without the credential
        assert token.split(".")[-1] not in text


def test_a_recreated_note_does_not_inherit_the_deleted_notes_grants(
    server: LiveServer, issuer: LoopbackIssuer
) -> None:
    binding = {
        "role": "roles/containeranalysis.notes.attacher",
        "members": ["user:old@example.com"],
    }
    with admin_http(server, issuer) as http:
        assert (
            http.post("/v1/projects/re/notes?noteId=n", json={"attestation": {}}).status_code == 200
        )
        r = http.post(
            "/v1/projects/re/notes/n:setIamPolicy", json={"policy": {"bindings": [binding]}}
        )
        assert r.status_code == 200, r.text
        assert http.delete("/v1/projects/re/notes/n").status_code == 200
        assert (
            http.post("/v1/projects/re/notes?noteId=n", json={"attestation": {}}).status_code == 200
        )
        again = http.post("/v1/projects/re/notes/n:getIamPolicy", json={}).json()
        assert again.get("bindings", []) == []
