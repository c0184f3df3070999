"""Two chainproof replicas on one PostgreSQL database: a revocation through one reaches the
other's judge cache at once (LISTEN/NOTIFY), not after the cache TTL."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.bootstrap import Services, open_services, running
from chainproof.config import load_settings
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest

pytestmark = pytest.mark.postgres

IMAGE = "gcr.io/acme/app@sha256:" + "e" * 64


@pytest.fixture
async def replicas(fresh_pg_url: str) -> AsyncIterator[tuple[Services, Services]]:
    # An hour of TTL: anything seen within the test came through the channel.
    settings = load_settings(
        database_url=fresh_pg_url, grpc_enabled=False, admission={"cache_ttl_seconds": 3600}
    )
    async with AsyncExitStack() as replicas:
        a = await replicas.enter_async_context(running(await open_services(settings)))
        b = await replicas.enter_async_context(running(await open_services(settings)))
        yield a, b


async def eventually(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_revocation_through_one_replica_reaches_the_other(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    key = generate_pkix_key()
    signer = PkixSigner.from_pem(key.private_pem, key_id="k1")
    await a.grafeas.create_note("projects/sec", "qa", note_from_json({"attestation": {}}))
    await a.judge_resources.create_attestor(
        "projects/sec",
        "qa",
        {
            "userOwnedGrafeasNote": {
                "noteReference": "projects/sec/notes/qa",
                "publicKeys": [
                    {
                        "id": "k1",
                        "pkixPublicKey": {
                            "publicKeyPem": key.public_pem.decode(),
                            "signatureAlgorithm": "ECDSA_P256_SHA256",
                        },
                    }
                ],
            }
        },
    )
    await a.judge_resources.put_policy(
        "projects/prod",
        {
            "defaultAdmissionRule": {
                "evaluationMode": "REQUIRE_ATTESTATION",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                "requireAttestationsBy": ["projects/sec/attestors/qa"],
            }
        },
    )
    payload = build_simple_signing(parse_image_reference(IMAGE))
    occ = await a.grafeas.create_occurrence(
        "projects/app",
        occurrence_from_json(
            {
                "resourceUri": IMAGE,
                "noteName": "projects/sec/notes/qa",
                "attestation": {
                    "serializedPayload": base64.b64encode(payload).decode(),
                    "signatures": [
                        {
                            "signature": base64.b64encode(signer.sign(payload)).decode(),
                            "publicKeyId": "k1",
                        }
                    ],
                },
            }
        ),
    )
    request = AdmissionRequest(images=(IMAGE,))

    async def b_allows() -> bool:
        return (await b.judge.evaluate("prod", request)).allowed

    # B caches the allowed decision (its cache would keep it for an hour)...
    assert await eventually(b_allows)
    assert await b_allows()
    # ...then the attestation is revoked through A.
    await a.grafeas.delete_occurrence(occ.name)

    async def b_denies() -> bool:
        return not await b_allows()

    assert await eventually(b_denies, seconds=3.0)

    # A policy change through A also reaches B.
    await a.grafeas.create_occurrence(
        "projects/app",
        occurrence_from_json(
            {
                "resourceUri": IMAGE,
                "noteName": "projects/sec/notes/qa",
                "attestation": {
                    "serializedPayload": base64.b64encode(payload).decode(),
                    "signatures": [
                        {
                            "signature": base64.b64encode(signer.sign(payload)).decode(),
                            "publicKeyId": "k1",
                        }
                    ],
                },
            }
        ),
    )
    assert await eventually(b_allows, seconds=3.0)
    await a.judge_resources.put_policy(
        "projects/prod",
        {
            "defaultAdmissionRule": {
                "evaluationMode": "ALWAYS_DENY",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        },
    )
    assert await eventually(b_denies, seconds=3.0)


async def test_without_the_channel_the_other_replica_would_still_serve_its_cache(
    replicas: tuple[Services, Services],
) -> None:
    """The control: with B's listener stopped, B keeps its cached answer (the TTL is an
    hour), so the test above really measures the channel."""
    a, b = replicas
    await b.changes.close()  # B stops listening
    await a.judge_resources.put_policy(
        "projects/prod",
        {
            "defaultAdmissionRule": {
                "evaluationMode": "ALWAYS_ALLOW",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        },
    )
    request = AdmissionRequest(images=(IMAGE,))
    assert (await b.judge.evaluate("prod", request)).allowed
    await a.judge_resources.put_policy(
        "projects/prod",
        {
            "defaultAdmissionRule": {
                "evaluationMode": "ALWAYS_DENY",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        },
    )
    await asyncio.sleep(0.5)
    assert (await b.judge.evaluate("prod", request)).allowed
