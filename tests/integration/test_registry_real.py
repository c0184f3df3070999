"""The registry client and reader against a real registry (Debian's docker-registry).

Images come from umoci layouts pushed by skopeo; cosign's layout is written through the
distribution API (tests/cosign_layout.py). Verification goes through chainproof's own
attest/crypto, with the digest taken from the "request" (the test), never from the registry.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.attest.sigstore_bundle import bundle_envelope
from chainproof.attest.verify import verify_attestation
from chainproof.crypto.keys import KeySpec, load_public_key
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.sources.registry.cache import RegistryCache
from chainproof.sources.registry.client import Deadline, RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import attach_bundle, attest_image, key_bundle, push_index, sign_image

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PROVENANCE = {"buildDefinition": {"buildType": "https://example.com/build"}, "runDetails": {}}


@pytest.fixture(scope="module")
def signer() -> PkixSigner:
    key = generate_pkix_key("ECDSA_P256_SHA256")
    return PkixSigner.from_pem(key.private_pem, "ECDSA_P256_SHA256")


@pytest.fixture(scope="module")
def keys(signer):
    pem = signer.public_key.public_pem()
    return [
        load_public_key(KeySpec("PKIX", pem, key_id=signer.key_id, algorithm="ECDSA_P256_SHA256"))
    ]


def config_for(host: str, **bounds) -> RegistryConfig:
    return RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}, **bounds)


@pytest.fixture
async def reader(oci_registry):
    client = RegistryClient(config_for(oci_registry.host))
    yield RegistryReader(client, RegistryCache())
    await client.aclose()


def deadline() -> Deadline:
    return Deadline(10)


async def test_tag_resolves_to_the_digest_skopeo_pushed(oci_registry, reader):
    digest = oci_registry.push_umoci_image("demo/resolve", "v1", label="resolve")
    image = parse_image_reference(f"{oci_registry.host}/demo/resolve:v1")
    assert await reader.resolve(image, deadline()) == digest
    missing = parse_image_reference(f"{oci_registry.host}/demo/resolve:nope")
    with pytest.raises(RegistryError, match="does not exist"):
        await reader.resolve(missing, deadline())


async def test_cosign_signature_verifies_for_its_image(oci_registry, reader, signer, keys):
    digest = oci_registry.push_umoci_image("demo/signed", "v1", label="signed")
    sig_manifest = sign_image(oci_registry, "demo/signed", digest, signer)
    image = parse_image_reference(f"{oci_registry.host}/demo/signed@{digest}")
    found = await reader.artifacts(image, deadline())
    assert found.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert len(found.signatures) == 1
    assert found.signatures[0].source == f"{image.name}@{sig_manifest}"
    result = verify_attestation(image, found.signatures[0].attestation, keys, now=NOW)
    assert result.verified, result.reasons


async def test_signature_for_another_digest_does_not_verify(oci_registry, reader, signer, keys):
    digest = oci_registry.push_umoci_image("demo/other", "v1", label="other-a")
    other = oci_registry.push_umoci_image("demo/other", "v2", label="other-b")
    # A valid signature by a trusted key, stored under this image's tag, but naming `other`.
    sign_image(oci_registry, "demo/other", digest, signer, payload_digest=other)
    image = parse_image_reference(f"{oci_registry.host}/demo/other@{digest}")
    found = await reader.artifacts(image, deadline())
    result = verify_attestation(image, found.signatures[0].attestation, keys, now=NOW)
    assert not result.verified
    assert any(other in r for r in result.reasons)


async def test_sig_tag_pointing_at_another_images_signatures(oci_registry, reader, signer, keys):
    victim = oci_registry.push_umoci_image("demo/moved", "v1", label="victim")
    signed = oci_registry.push_umoci_image("demo/moved", "v2", label="signed-one")
    # The attacker copies the signed image's real .sig manifest under the victim's tag.
    sign_image(oci_registry, "demo/moved", signed, signer, tag_digest=victim)
    image = parse_image_reference(f"{oci_registry.host}/demo/moved@{victim}")
    found = await reader.artifacts(image, deadline())
    assert found.signatures
    result = verify_attestation(image, found.signatures[0].attestation, keys, now=NOW)
    assert not result.verified
    assert any(signed in r for r in result.reasons)


async def test_cosign_attestation_verifies_and_a_foreign_subject_does_not(
    oci_registry, reader, signer, keys
):
    digest = oci_registry.push_umoci_image("demo/attested", "v1", label="attested")
    attest_image(oci_registry, "demo/attested", digest, signer, SLSA_PROVENANCE_V1, PROVENANCE)
    image = parse_image_reference(f"{oci_registry.host}/demo/attested@{digest}")
    found = await reader.artifacts(image, deadline())
    result = verify_attestation(image, found.attestations[0].envelope, keys, now=NOW)
    assert result.verified, result.reasons
    assert result.statement is not None
    assert result.statement.predicate_type == SLSA_PROVENANCE_V1

    other = oci_registry.push_umoci_image("demo/attested2", "v1", label="attested2")
    attest_image(
        oci_registry,
        "demo/attested2",
        other,
        signer,
        SLSA_PROVENANCE_V1,
        PROVENANCE,
        subject_digest=digest,
    )
    image2 = parse_image_reference(f"{oci_registry.host}/demo/attested2@{other}")
    found2 = await reader.artifacts(image2, deadline())
    result2 = verify_attestation(image2, found2.attestations[0].envelope, keys, now=NOW)
    assert not result2.verified


async def test_bundle_referrer_found_through_the_fallback_tag(oci_registry, reader, signer, keys):
    # docker-registry 2.8 has no referrers API: cosign then writes the sha256-<hex> index.
    digest = oci_registry.push_umoci_image("demo/bundled", "v1", label="bundled")
    bundle = key_bundle(
        oci_registry, "demo/bundled", digest, signer, SLSA_PROVENANCE_V1, PROVENANCE
    )
    referrer = attach_bundle(oci_registry, "demo/bundled", digest, bundle, fallback_tag=True)
    image = parse_image_reference(f"{oci_registry.host}/demo/bundled@{digest}")
    found = await reader.artifacts(image, deadline())
    assert [b.source for b in found.bundles] == [f"{image.name}@{referrer}"]
    envelope = bundle_envelope(found.bundles[0].data)
    assert verify_attestation(image, envelope, keys, now=NOW).verified


async def test_unsigned_image_has_no_evidence(oci_registry, reader):
    digest = oci_registry.push_umoci_image("demo/bare", "v1", label="bare")
    found = await reader.artifacts(
        parse_image_reference(f"{oci_registry.host}/demo/bare@{digest}"), deadline()
    )
    assert (found.signatures, found.attestations, found.bundles, found.problems) == ((), (), (), ())


async def test_multi_arch_index_lists_its_children(oci_registry, reader, signer):
    amd = oci_registry.push_umoci_image("demo/multi", "amd64", label="m", arch="amd64")
    arm = oci_registry.push_umoci_image("demo/multi", "arm64", label="m", arch="arm64")
    index = push_index(
        oci_registry, "demo/multi", "v1", [(amd, "linux/amd64"), (arm, "linux/arm64")]
    )
    sign_image(oci_registry, "demo/multi", index, signer)
    image = parse_image_reference(f"{oci_registry.host}/demo/multi:v1")
    assert await reader.resolve(image, deadline()) == index
    found = await reader.artifacts(
        parse_image_reference(f"{oci_registry.host}/demo/multi@{index}"), deadline()
    )
    assert found.media_type == "application/vnd.oci.image.index.v1+json"
    assert {(c.digest, str(c.platform)) for c in found.children} == {
        (amd, "linux/amd64"),
        (arm, "linux/arm64"),
    }
    assert len(found.signatures) == 1


async def test_oversized_manifest_and_layers_fail_closed(oci_registry, signer):
    digest = oci_registry.push_umoci_image("demo/big", "v1", label="big")
    sign_image(oci_registry, "demo/big", digest, signer)
    image = parse_image_reference(f"{oci_registry.host}/demo/big@{digest}")
    small = RegistryClient(config_for(oci_registry.host, max_manifest_bytes=64))
    try:
        with pytest.raises(RegistryError, match="more than the 64"):
            await RegistryReader(small).artifacts(image, deadline())
    finally:
        await small.aclose()
    tiny_blobs = RegistryClient(config_for(oci_registry.host, max_blob_bytes=16))
    try:
        with pytest.raises(RegistryError, match="16"):
            await RegistryReader(tiny_blobs).artifacts(image, deadline())
    finally:
        await tiny_blobs.aclose()


async def test_unreachable_registry_names_itself(signer):
    client = RegistryClient(config_for("127.0.0.1:9"))
    try:
        image = parse_image_reference("127.0.0.1:9/demo/x@sha256:" + "0" * 64)
        with pytest.raises(RegistryError, match=r"registry 127\.0\.0\.1:9"):
            await RegistryReader(client).artifacts(image, deadline())
    finally:
        await client.aclose()


async def test_connections_survive_not_found_answers(oci_registry):
    # Unsigned images: their .sig, .att and referrers fallback tag all answer 404. Those
    # answers are read to their end, so the connections go back to the pool: later images
    # are read on the same connections, none opened anew.
    import httpx

    digests = [
        oci_registry.push_umoci_image("demo/reuse", f"t{i}", label=f"reuse-{i}") for i in range(6)
    ]
    transport = httpx.AsyncHTTPTransport()
    pool = transport._pool
    opened: list[object] = []
    create = pool.create_connection

    def counted(origin):
        opened.append(origin)
        return create(origin)

    pool.create_connection = counted
    client = RegistryClient(config_for(oci_registry.host), transport=transport)
    reader = RegistryReader(client, RegistryCache())

    async def read(group):
        await asyncio.gather(
            *(
                reader.artifacts(
                    parse_image_reference(f"{oci_registry.host}/demo/reuse@{d}"), deadline()
                )
                for d in group
            )
        )

    try:
        await read(digests[:3])
        warm = len(opened)
        await read(digests[3:])
    finally:
        await client.aclose()
    assert warm > 0
    assert len(opened) == warm, f"{len(opened) - warm} connections opened anew"
