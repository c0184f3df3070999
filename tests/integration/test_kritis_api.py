"""``POST /v1/projects/{p}/kritis:evaluate``: the server judges Kritis resources sent with the
request on its stored evidence, exactly as the offline CLI judges them on files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.bootstrap import build_app
from chainproof.cli.offline import OfflineInputs, evaluate_offline, split_grafeas_dump
from chainproof.config import load_settings
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.policy import AdmissionRequest, parse_kritis_resources
from chainproof.store.memory import MemoryStore

SIGNED = "gcr.io/acme/app@sha256:" + "c" * 64
UNSIGNED = "gcr.io/acme/app@sha256:" + "d" * 64


def _resources(public_pem: str) -> list[dict[str, Any]]:
    meta = {"namespace": "prod"}
    return [
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "ImageSecurityPolicy",
            "metadata": {"name": "isp", **meta},
            "spec": {"packageVulnerabilityRequirements": {"maximumSeverity": "MEDIUM"}},
        },
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "GenericAttestationPolicy",
            "metadata": {"name": "gap", **meta},
            "spec": {"attestationAuthorityNames": ["qa-authority"]},
        },
        {
            "apiVersion": "kritis.grafeas.io/v1beta1",
            "kind": "AttestationAuthority",
            "metadata": {"name": "qa-authority", **meta},
            "spec": {
                "noteReference": "v1beta1/projects/sec/notes/qa",
                "publicKeys": [
                    {
                        "keyType": "PKIX",
                        "keyId": "k1",
                        "pkixPublicKey": {
                            "publicKeyPem": public_pem,
                            "signatureAlgorithm": "ECDSA_P256_SHA256",
                        },
                    }
                ],
            },
        },
    ]


@pytest.fixture
def signed() -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    """A server holding the QA note and a QA attestation of SIGNED in project prod."""
    generated = generate_pkix_key()
    signer = PkixSigner.from_pem(generated.private_pem, key_id="k1")
    app = build_app(load_settings(grpc_enabled=False), MemoryStore())
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/projects/sec/notes?noteId=qa", json={"attestation": {}}).is_success
        attestation = attestation_occurrence(
            parse_image_reference(SIGNED),
            PayloadFormat.SIMPLE_SIGNING,
            signer,
            note_name="projects/sec/notes/qa",
            resource_uri=SIGNED,
        )
        r = client.post("/v1/projects/prod/occurrences", json=attestation)
        assert r.is_success, r.text
        yield client, _resources(generated.public_pem.decode())


def _evaluate(client: TestClient, resources: list[dict[str, Any]], image: str) -> Any:
    return client.post(
        "/v1/projects/prod/kritis:evaluate",
        json={"images": [image], "namespace": "prod", "resources": resources},
    )


def test_the_server_judges_kritis_resources_on_its_evidence(
    signed: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, resources = signed
    allowed = _evaluate(client, resources, SIGNED)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["allowed"] is True
    assert allowed.json()["explanation"].startswith("ALLOWED")

    denied = _evaluate(client, resources, UNSIGNED).json()
    assert denied["allowed"] is False
    assert "GenericAttestationPolicy" in denied["explanation"]

    # Another namespace: none of these resources applies there, and that denies.
    other = client.post(
        "/v1/projects/prod/kritis:evaluate",
        json={"images": [SIGNED], "namespace": "dev", "resources": resources},
    ).json()
    assert other["allowed"] is False
    assert "no ImageSecurityPolicy or GenericAttestationPolicy applies" in other["explanation"]

    # Nothing was stored or recorded by judging.
    assert client.get("/v1/projects/prod/decisions").json() == {"decisions": []}


def test_server_and_offline_cli_decide_alike(
    signed: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, resources = signed
    dump = client.get("/v1/projects/prod/occurrences").json()
    note = client.get("/v1/projects/sec/notes/qa").json()
    notes, occurrences = split_grafeas_dump({"notes": [note], **dump}, "dump")
    inputs = OfflineInputs(
        project="prod",
        kritis=parse_kritis_resources(resources),
        notes=notes,
        occurrences=occurrences,
    )
    for image in (SIGNED, UNSIGNED):
        online = _evaluate(client, resources, image).json()
        offline = evaluate_offline(
            inputs, AdmissionRequest(images=(image,), namespace="prod"), datetime.now(UTC)
        ).to_dict()
        assert online["outcome"] == offline["outcome"]
        assert _without_ids(online["images"]) == _without_ids(offline["images"])


def _without_ids(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decisions per image, less the occurrence IDs (the offline store makes its own)."""
    return [
        {
            **image,
            "requirements": [
                {k: v for k, v in r.items() if k != "occurrences"} | {"n": len(r["occurrences"])}
                for r in image["requirements"]
            ],
        }
        for image in images
    ]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"images": [SIGNED]}, "resources must be a non-empty list of Kritis resources"),
        ({"images": [SIGNED], "resources": []}, "resources must be a non-empty list"),
        ({"resources": [{}]}, "images must be a non-empty list"),
        ({"images": [SIGNED], "resources": [{"kind": "Pod"}]}, "[0]"),
        ({"images": [SIGNED], "resources": [{}], "extra": 1}, "unknown fields extra"),
    ],
)
def test_bad_requests_say_what_was_expected(
    signed: tuple[TestClient, list[dict[str, Any]]], body: dict[str, Any], says: str
) -> None:
    client, _ = signed
    r = client.post("/v1/projects/prod/kritis:evaluate", json=body)
    assert r.status_code == 400
    error = r.json()
    assert says in error["message"] or any(says in d for d in error.get("details", []))
