"""What the real registry cannot show: referrers API, token challenges, 429s, lying answers.

The fake (tests/fake_registry.py) is kept honest by tests/integration/test_registry_parity.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.destinations import DestinationPolicy
from chainproof.domain.images import parse_image_reference
from chainproof.sources.registry.cache import RegistryCache
from chainproof.sources.registry.client import Deadline, RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.credentials import Credential
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.metrics import RegistryMetrics
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import attach_bundle, key_bundle, sign_image
from fake_registry import FakeRegistry, serve_fake
from oci_registry import Pusher

PROVENANCE = {"buildDefinition": {"buildType": "https://example.com/build"}, "runDetails": {}}


@pytest.fixture(scope="module")
def signer() -> PkixSigner:
    key = generate_pkix_key("ECDSA_P256_SHA256")
    return PkixSigner.from_pem(key.private_pem, "ECDSA_P256_SHA256")


def image_manifest(pusher: Pusher, repository: str, tag: str, label: str) -> str:
    return pusher.push_artifact_manifest(
        repository, tag, [(label.encode(), "application/vnd.oci.image.layer.v1.tar", {})]
    )


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(fake: FakeRegistry, sleep=None, **host) -> RegistryClient:
    config = RegistryConfig(hosts={fake.host: RegistryHost(host=fake.host, insecure=True, **host)})
    return RegistryClient(config, sleep=sleep or Sleeps())


async def test_referrers_api_finds_a_bundle_without_the_fallback_tag(signer):
    with serve_fake(FakeRegistry(referrers_api=True)) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "one")
        bundle = key_bundle(pusher, "app", digest, signer, SLSA_PROVENANCE_V1, PROVENANCE)
        referrer = attach_bundle(pusher, "app", digest, bundle, fallback_tag=False)
        client = client_for(fake)
        try:
            found = await RegistryReader(client).artifacts(
                parse_image_reference(f"{fake.host}/app@{digest}"), Deadline(5)
            )
            listing = await client.referrers(fake.host, "app", digest, Deadline(5))
        finally:
            await client.aclose()
        assert [b.source for b in found.bundles] == [f"{fake.host}/app@{referrer}"]
        assert not listing.from_fallback_tag


async def test_bearer_token_challenge_with_basic_credentials():
    with serve_fake(FakeRegistry(token_auth=True, username="ci", password="s3cret")) as fake:
        pusher = Pusher(fake.host)
        fake.token_auth = False
        digest = image_manifest(pusher, "team/app", "v1", "tok")
        fake.token_auth = True
        client = client_for(fake, credential=Credential("ci", "s3cret"))
        try:
            fetched = await client.manifest(fake.host, "team/app", "v1", Deadline(5))
            again = await client.manifest(fake.host, "team/app", digest, Deadline(5))
        finally:
            await client.aclose()
        assert fetched is not None and fetched.digest == digest
        assert again is not None
        # One token for the scope, reused for the second request.
        assert fake.token_requests == [{"scope": "repository:team/app:pull", "service": "fake"}]

        wrong = client_for(fake, credential=Credential("ci", "wrong"))
        try:
            with pytest.raises(RegistryError, match="token request .* HTTP 401"):
                await wrong.manifest(fake.host, "team/app", "v1", Deadline(5))
        finally:
            await wrong.aclose()


async def test_429_is_retried_honouring_retry_after():
    with serve_fake(FakeRegistry()) as fake:
        digest = image_manifest(Pusher(fake.host), "app", "v1", "rl")
        fake.failures = [(429, "1"), (503, None)]
        sleeps = Sleeps()
        client = client_for(fake, sleep=sleeps, max_retries=2)
        try:
            fetched = await client.manifest(fake.host, "app", "v1", Deadline(5))
        finally:
            await client.aclose()
        assert fetched is not None and fetched.digest == digest
        assert sleeps.calls[0] == 1.0  # Retry-After
        assert 0 < sleeps.calls[1] < 1.0  # backoff


async def test_retries_are_bounded_and_name_the_registry():
    with serve_fake(FakeRegistry()) as fake:
        image_manifest(Pusher(fake.host), "app", "v1", "rl2")
        fake.failures = [(503, None)] * 5
        client = client_for(fake, max_retries=2)
        try:
            with pytest.raises(RegistryError, match=rf"registry {fake.host}: .*HTTP 503"):
                await client.manifest(fake.host, "app", "v1", Deadline(5))
        finally:
            await client.aclose()
        assert len(fake.failures) == 2  # three answers consumed: one try, two retries


async def test_retry_after_beyond_the_deadline_fails_at_once():
    with serve_fake(FakeRegistry()) as fake:
        image_manifest(Pusher(fake.host), "app", "v1", "rl3")
        fake.failures = [(429, "120")]
        sleeps = Sleeps()
        client = client_for(fake, sleep=sleeps)
        try:
            with pytest.raises(RegistryError, match="outlast the review's deadline"):
                await client.manifest(fake.host, "app", "v1", Deadline(2))
        finally:
            await client.aclose()
        assert sleeps.calls == []


async def test_registry_serving_other_bytes_than_the_digest_asked():
    with serve_fake(FakeRegistry()) as fake:
        digest = image_manifest(Pusher(fake.host), "app", "v1", "lie")
        fake.tampered.add(f"/v2/app/manifests/{digest}")
        client = client_for(fake)
        try:
            with pytest.raises(RegistryError, match=f"asked for manifest {digest}"):
                await client.manifest(fake.host, "app", digest, Deadline(5))
        finally:
            await client.aclose()


async def test_tag_answer_whose_digest_header_disagrees_with_the_bytes():
    with serve_fake(FakeRegistry()) as fake:
        image_manifest(Pusher(fake.host), "app", "v1", "lie2")
        fake.tampered.add("/v2/app/manifests/v1")
        client = client_for(fake)
        try:
            with pytest.raises(RegistryError, match="Docker-Content-Digest"):
                await client.manifest(fake.host, "app", "v1", Deadline(5))
        finally:
            await client.aclose()


async def test_blob_with_other_content_is_refused(signer):
    with serve_fake(FakeRegistry()) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "blob")
        sign_image(pusher, "app", digest, signer)
        layer = next(d for d in fake.blobs if fake.blobs[d].startswith(b'{"critical"'))
        fake.tampered.add(f"/v2/app/blobs/{layer}")
        client = client_for(fake)
        try:
            with pytest.raises(RegistryError, match="hashing to"):
                await RegistryReader(client).artifacts(
                    parse_image_reference(f"{fake.host}/app@{digest}"), Deadline(5)
                )
        finally:
            await client.aclose()


async def test_redirect_to_another_host_is_refused_unless_configured(signer):
    with serve_fake(FakeRegistry()) as fake, serve_fake(FakeRegistry()) as storage:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "redir")
        sign_image(pusher, "app", digest, signer)
        storage.blobs.update(fake.blobs)
        fake.redirect_blobs_to = f"http://{storage.host}"
        image = parse_image_reference(f"{fake.host}/app@{digest}")
        client = client_for(fake)
        try:
            with pytest.raises(RegistryError, match=f"redirected to {storage.host}"):
                await RegistryReader(client).artifacts(image, Deadline(5))
        finally:
            await client.aclose()
        allowed = client_for(fake, redirect_hosts=(storage.host,), credential=Credential("u", "p"))
        try:
            found = await RegistryReader(allowed).artifacts(image, Deadline(5))
        finally:
            await allowed.aclose()
        assert len(found.signatures) == 1
        assert storage.requests
        assert all("authorization" not in headers for _, _, headers in storage.requests)


async def test_mirror_is_tried_first_and_upstream_decides_when_it_fails():
    with serve_fake(FakeRegistry()) as upstream, serve_fake(FakeRegistry()) as mirror:
        digest = image_manifest(Pusher(upstream.host), "app", "v1", "mirrored")
        config = RegistryConfig(
            hosts={
                upstream.host: RegistryHost(
                    host=upstream.host, insecure=True, mirrors=(mirror.host,)
                ),
                mirror.host: RegistryHost(host=mirror.host, insecure=True),
            }
        )
        client = RegistryClient(config)
        try:
            fetched = await client.manifest(upstream.host, "app", digest, Deadline(5))
            assert fetched is not None and fetched.digest == digest
            assert mirror.requests and upstream.requests  # mirror missed, upstream answered
            mirror.manifests.update(upstream.manifests)
            before = len(upstream.requests)
            await client.manifest(upstream.host, "app", digest, Deadline(5))
            assert len(upstream.requests) == before  # the mirror answered this time
        finally:
            await client.aclose()


async def test_concurrent_misses_share_one_request_and_answers_are_cached(signer):
    with serve_fake(FakeRegistry()) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "flight")
        sign_image(pusher, "app", digest, signer)
        metrics = RegistryMetrics(CollectorRegistry())
        client = client_for(fake)
        cache = RegistryCache(
            on_lookup=lambda r, k, hit: metrics.cache.labels(r, k, "hit" if hit else "miss").inc()
        )
        reader = RegistryReader(client, cache)
        image = parse_image_reference(f"{fake.host}/app@{digest}")
        try:
            fake.requests.clear()
            results = await asyncio.gather(
                *(reader.artifacts(image, Deadline(5)) for _ in range(8))
            )
            first = len(fake.requests)
            await reader.artifacts(image, Deadline(5))
        finally:
            await client.aclose()
        assert all(r == results[0] for r in results)
        paths = [p for _, p, _ in fake.requests]
        assert paths.count(f"/v2/app/manifests/{digest}") == 1
        assert len(fake.requests) == first  # the ninth review asked nothing
        assert metrics.cache.labels(fake.host, "manifest", "hit")._value.get() > 0


async def test_garbage_manifest_is_a_registry_error():
    with serve_fake(FakeRegistry()) as fake:
        body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": 7}'
        digest = fake.put_manifest("app", "v1", body, "application/vnd.oci.image.manifest.v1+json")
        client = client_for(fake)
        try:
            with pytest.raises(RegistryError, match="layers"):
                await RegistryReader(client).artifacts(
                    parse_image_reference(f"{fake.host}/app@{digest}"), Deadline(5)
                )
        finally:
            await client.aclose()


async def test_bundle_referrer_whose_subject_is_another_image_is_reported(signer):
    with serve_fake(FakeRegistry()) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "subj")
        # The registry lists a referrer whose manifest's subject is something else.
        config = pusher.push_blob("app", b"{}")
        layer = pusher.push_blob("app", b"{}")
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": config,
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                        "digest": layer,
                        "size": 2,
                    }
                ],
                "subject": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + "1" * 64,
                    "size": 1,
                },
            }
        ).encode()
        referrer = fake.put_manifest(
            "app", "sha256:x", body, "application/vnd.oci.image.manifest.v1+json"
        )
        fake.referrers_api = False
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": referrer,
                        "size": len(body),
                        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                    }
                ],
            }
        ).encode()
        fake.put_manifest(
            "app", digest.replace(":", "-"), index, "application/vnd.oci.image.index.v1+json"
        )
        client = client_for(fake)
        try:
            found = await RegistryReader(client).artifacts(
                parse_image_reference(f"{fake.host}/app@{digest}"), Deadline(5)
            )
        finally:
            await client.aclose()
        assert found.bundles == ()
        assert found.problems == (
            (f"{fake.host}/app@{referrer}", f"the referrer's subject is not {digest}"),
        )


async def test_a_registry_with_the_referrers_api_is_believed_over_its_fallback_tag(signer):
    # The fallback tag says something else than the API: while the registry's support is not
    # known both are asked at once, and the API's answer is the one used; once known, the
    # fallback tag is no longer asked at all.
    with serve_fake(FakeRegistry(referrers_api=True)) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "believed")
        other = image_manifest(pusher, "app", "v2", "decoy")
        bundle = key_bundle(pusher, "app", digest, signer, SLSA_PROVENANCE_V1, PROVENANCE)
        referrer = attach_bundle(pusher, "app", digest, bundle, fallback_tag=False)
        decoy = key_bundle(pusher, "app", other, signer, SLSA_PROVENANCE_V1, PROVENANCE)
        attach_bundle(pusher, "app", other, decoy, fallback_tag=False)
        descriptor = pusher.manifest_descriptor("app", other)
        pusher.push_manifest(
            "app",
            digest.replace(":", "-"),
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{**descriptor, "artifactType": "application/x-decoy"}],
            },
        )
        client = client_for(fake)
        try:
            first = await client.referrers(fake.host, "app", digest, Deadline(5))
            asked = [p for _, p, _ in fake.requests]
            fake.requests.clear()
            second = await client.referrers(fake.host, "app", other, Deadline(5))
            asked_again = [p for _, p, _ in fake.requests]
        finally:
            await client.aclose()
    assert [d.digest for d in first.descriptors] == [referrer]
    assert not first.from_fallback_tag
    assert any("/referrers/" in p for p in asked)
    assert second.descriptors and not second.from_fallback_tag
    assert not any(p.endswith(other.replace(":", "-")) for p in asked_again)


async def test_a_registry_without_the_referrers_api_is_asked_for_the_fallback_tag_directly(
    oci_registry, signer
):
    reg = oci_registry
    one = reg.push_umoci_image("refmem/a", "v1", label="refmem-a")
    two = reg.push_umoci_image("refmem/b", "v1", label="refmem-b")
    bundle = key_bundle(reg, "refmem/b", two, signer, SLSA_PROVENANCE_V1, PROVENANCE)
    referrer = attach_bundle(reg, "refmem/b", two, bundle, fallback_tag=True)
    seen: list[str] = []

    async def record(request):
        seen.append(request.url.path)

    config = RegistryConfig(hosts={reg.host: RegistryHost(host=reg.host, insecure=True)})
    client = RegistryClient(config)
    client._client(config.host(reg.host)).event_hooks["request"].append(record)
    try:
        first = await client.referrers(reg.host, "refmem/a", one, Deadline(5))
        before = list(seen)
        seen.clear()
        second = await client.referrers(reg.host, "refmem/b", two, Deadline(5))
    finally:
        await client.aclose()
    assert first.descriptors == () and first.from_fallback_tag
    assert f"/v2/refmem/a/referrers/{one}" in before  # asked once, answered 404
    assert seen == [f"/v2/refmem/b/manifests/{two.replace(':', '-')}"]
    assert [d.digest for d in second.descriptors] == [referrer] and second.from_fallback_tag


async def test_the_images_own_manifest_is_asked_only_when_its_platforms_matter(signer):
    with serve_fake(FakeRegistry(referrers_api=True)) as fake:
        pusher = Pusher(fake.host)
        digest = image_manifest(pusher, "app", "v1", "own")
        sig = sign_image(pusher, "app", digest, signer)
        client = client_for(fake)
        image = parse_image_reference(f"{fake.host}/app@{digest}")
        try:
            fake.requests.clear()
            lean = await RegistryReader(client).artifacts(image, Deadline(5), index=False)
            lean_paths = [path for _method, path, _headers in fake.requests]
            fake.requests.clear()
            whole = await RegistryReader(client).artifacts(image, Deadline(5))
            whole_paths = [path for _method, path, _headers in fake.requests]
        finally:
            await client.aclose()
    own = f"/v2/app/manifests/{digest}"
    assert own not in lean_paths and own in whole_paths
    # The evidence is the same either way: it names the digest from the request.
    assert [s.source for s in lean.signatures] == [s.source for s in whole.signatures]
    assert [s.source for s in lean.signatures] == [f"{fake.host}/app@{sig}"]
    assert (
        lean.media_type == "" and whole.media_type == "application/vnd.oci.image.manifest.v1+json"
    )


async def test_registry_hosts_and_token_realms_outside_the_destination_policy_are_refused():
    """Server-side request forgery through the registry path: whoever writes a pod spec
    picks the registry host, and the registry picks the token realm. A host that resolves
    into a denied network is refused before any request (the review then denies, naming
    it), and so is a realm a registry points at such an address; nothing is sent there."""
    with serve_fake(FakeRegistry(token_auth=True)) as fake:
        fake.token_auth = False
        digest = image_manifest(Pusher(fake.host), "team/app", "v1", "ssrf")
        fake.token_auth = True
        port = fake.host.rsplit(":", 1)[1]
        # The same registry reached by a name (localhost) that resolves into a denied range.
        by_name = f"localhost:{port}"
        denied = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"])
        config = RegistryConfig(
            hosts={by_name: RegistryHost(host=by_name, insecure=True)}, destinations=denied
        )
        client = RegistryClient(config, sleep=Sleeps())
        before = len(fake.requests)
        try:
            with pytest.raises(RegistryError, match="denied network 127.0.0.0/8"):
                await client.manifest(by_name, "team/app", digest, Deadline(5))
        finally:
            await client.aclose()
        assert len(fake.requests) == before
        # The registry itself is allowed, but it sends clients for tokens to an address in
        # a denied network (127.0.0.2 stands in for the metadata service).
        fake.realm = f"http://127.0.0.2:{port}/token"
        only_realm = DestinationPolicy.from_settings(["127.0.0.2/32"])
        config = RegistryConfig(
            hosts={fake.host: RegistryHost(host=fake.host, insecure=True)},
            destinations=only_realm,
        )
        client = RegistryClient(config, sleep=Sleeps())
        try:
            with pytest.raises(RegistryError, match=r"127\.0\.0\.2"):
                await client.manifest(fake.host, "team/app", digest, Deadline(5))
        finally:
            await client.aclose()
        assert fake.token_requests == []
