"""The judge's REST resources: attestors, policy, policy:evaluate and decisions, with their
error handling."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.store.memory import MemoryStore

IMAGE = "gcr.io/acme/app@sha256:" + "c" * 64


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app(load_settings(grpc_enabled=False), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as c:
        assert (
            c.post("/v1/projects/sec/notes?noteId=qa", json={"attestation": {}}).status_code == 200
        )
        yield c


@pytest.fixture
def key() -> tuple[PkixSigner, str]:
    generated = generate_pkix_key()
    return PkixSigner.from_pem(generated.private_pem, key_id="k1"), generated.public_pem.decode()


def attestor_body(public_pem: str) -> dict:
    return {
        "description": "QA sign-off",
        "userOwnedGrafeasNote": {
            "noteReference": "projects/sec/notes/qa",
            "publicKeys": [
                {
                    "id": "k1",
                    "pkixPublicKey": {
                        "publicKeyPem": public_pem,
                        "signatureAlgorithm": "ECDSA_P256_SHA256",
                    },
                }
            ],
        },
    }


def test_attestor_lifecycle(client: TestClient, key: tuple[PkixSigner, str]) -> None:
    r = client.post("/v1/projects/sec/attestors?attestorId=qa", json=attestor_body(key[1]))
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["name"] == "projects/sec/attestors/qa" and created["etag"]
    assert (
        client.post(
            "/v1/projects/sec/attestors?attestorId=qa", json=attestor_body(key[1])
        ).status_code
        == 409
    )
    listed = client.get("/v1/projects/sec/attestors").json()["attestors"]
    assert [a["name"] for a in listed] == ["projects/sec/attestors/qa"]
    r = client.put(
        "/v1/projects/sec/attestors/qa", json={**created, "description": "QA", "etag": "old"}
    )
    assert r.status_code == 400 and "stale" in r.json()["message"]
    r = client.put("/v1/projects/sec/attestors/qa", json={**created, "description": "QA"})
    assert r.status_code == 200 and r.json()["description"] == "QA"
    assert client.delete("/v1/projects/sec/attestors/qa").status_code == 200
    assert client.get("/v1/projects/sec/attestors/qa").status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"userOwnedGrafeasNote": {}}, "noteReference"),
        ({"userOwnedGrafeasNote": {"noteReference": "bad"}}, "projects/PROJECT/notes/ID"),
        ({"userOwnedGrafeasNote": {"noteReference": "projects/sec/notes/qa"}, "bogus": 1}, "bogus"),
        (
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/sec/notes/qa",
                    "publicKeys": [
                        {"pkixPublicKey": {"publicKeyPem": "x", "signatureAlgorithm": "NOPE"}}
                    ],
                }
            },
            "signatureAlgorithm",
        ),
    ],
)
def test_bad_attestors_are_refused_with_the_path(client: TestClient, body: dict, says: str) -> None:
    r = client.post("/v1/projects/sec/attestors?attestorId=qa", json=body)
    assert r.status_code == 400
    assert says in r.json()["message"]
    assert client.get("/v1/projects/sec/attestors/qa").status_code == 404


def test_policy_and_evaluate(client: TestClient, key: tuple[PkixSigner, str]) -> None:
    signer, public_pem = key
    client.post("/v1/projects/sec/attestors?attestorId=qa", json=attestor_body(public_pem))
    assert client.get("/v1/projects/prod/policy").status_code == 404
    bad = client.put(
        "/v1/projects/prod/policy", json={"defaultAdmissionRule": {"evaluationMode": "REQUIRE"}}
    )
    assert bad.status_code == 400 and "defaultAdmissionRule.evaluationMode" in bad.json()["message"]
    policy = {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": ["projects/sec/attestors/qa"],
        }
    }
    r = client.put("/v1/projects/prod/policy", json=policy)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "projects/prod/policy"

    r = client.post(
        "/v1/projects/prod/policy:evaluate", json={"images": [IMAGE], "namespace": "web"}
    )
    assert r.status_code == 200
    assert r.json()["outcome"] == "denied"
    assert "projects/sec/attestors/qa" in r.json()["explanation"]

    payload = build_simple_signing(parse_image_reference(IMAGE))
    occ = {
        "resourceUri": IMAGE,
        "noteName": "projects/sec/notes/qa",
        "attestation": {
            "serializedPayload": base64.b64encode(payload).decode(),
            "signatures": [
                {"signature": base64.b64encode(signer.sign(payload)).decode(), "publicKeyId": "k1"}
            ],
        },
    }
    assert client.post("/v1/projects/app/occurrences", json=occ).status_code == 200
    r = client.post("/v1/projects/prod/policy:evaluate", json={"images": [IMAGE]})
    assert r.json()["outcome"] == "allowed", r.json()["explanation"]
    # Evaluating records nothing.
    assert client.get("/v1/projects/prod/decisions").json() == {"decisions": []}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "images must be a non-empty list"),
        ({"images": "x"}, "images must be a non-empty list"),
        ({"images": [IMAGE], "bogus": 1}, "unknown fields bogus"),
        ({"images": [IMAGE], "namespace": 5}, "namespace must be a string"),
    ],
)
def test_evaluate_bad_input(client: TestClient, body: dict, says: str) -> None:
    r = client.post("/v1/projects/prod/policy:evaluate", json=body)
    assert r.status_code == 400 and says in r.json()["message"]


def test_decision_query_validation(client: TestClient) -> None:
    r = client.get("/v1/projects/prod/decisions", params={"since": "yesterday"})
    assert r.status_code == 400 and "RFC 3339" in r.json()["message"]
    assert (
        client.get("/v1/projects/prod/decisions", params={"pageToken": "forged"}).status_code == 400
    )
