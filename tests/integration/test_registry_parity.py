"""The fake registry answers the requests chainproof sends as the real one does.

Each test runs the same requests against Debian's docker-registry and tests/fake_registry.py
and compares what chainproof reads: status codes, digests, media types, bodies.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from cosign_layout import sign_image
from fake_registry import FakeRegistry, serve_fake
from oci_registry import Pusher

OCI = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = f"{OCI}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRegistry]:
    with serve_fake(FakeRegistry(referrers_api=False)) as registry:
        yield registry


@pytest.fixture(scope="module")
def both(oci_registry, fake):
    return [Pusher(oci_registry.host), Pusher(fake.host)]


def answer(response: httpx.Response) -> tuple[int, str, str, bytes]:
    return (
        response.status_code,
        response.headers.get("Docker-Content-Digest", ""),
        response.headers.get("content-type", "").split(";")[0],
        response.content if response.status_code == 200 else b"",
    )


def test_pushed_manifest_reads_back_alike(both):
    key = generate_pkix_key("ECDSA_P256_SHA256")
    signer = PkixSigner.from_pem(key.private_pem, "ECDSA_P256_SHA256")
    seen = []
    for pusher in both:
        digest = pusher.push_artifact_manifest(
            "parity/app", "v1", [(b"layer", "application/vnd.oci.image.layer.v1.tar", {})]
        )
        sig = sign_image(pusher, "parity/app", digest, signer)
        http = pusher.http
        seen.append(
            {
                "digest": digest,
                "get": answer(http.get("/v2/parity/app/manifests/v1", headers={"Accept": ACCEPT})),
                "head": answer(
                    http.head("/v2/parity/app/manifests/v1", headers={"Accept": ACCEPT})
                )[:3],
                "by_digest": answer(
                    http.get(f"/v2/parity/app/manifests/{digest}", headers={"Accept": ACCEPT})
                ),
                "no_accept": http.get("/v2/parity/app/manifests/v1").status_code,
                "unknown_tag": http.get(
                    "/v2/parity/app/manifests/nope", headers={"Accept": ACCEPT}
                ).status_code,
                "sig_tag": answer(
                    http.head(
                        f"/v2/parity/app/manifests/{digest.replace(':', '-')}.sig",
                        headers={"Accept": ACCEPT},
                    )
                )[:2],
                "sig_digest": sig,
                "referrers": http.get(f"/v2/parity/app/referrers/{digest}").status_code,
                "unknown_blob": http.get("/v2/parity/app/blobs/sha256:" + "0" * 64).status_code,
            }
        )
    real, fake = seen
    # The signature payload names the registry host, so those digests differ by design.
    assert real["sig_tag"][0] == fake["sig_tag"][0] == 200
    for name in ("sig_tag", "sig_digest"):
        real.pop(name)
        fake.pop(name)
    assert real == fake
    assert real["no_accept"] == 404  # OCI manifests need the Accept header
    assert real["referrers"] == 404  # no referrers API in docker-registry


def test_blob_reads_alike(both):
    answers = []
    for pusher in both:
        digest = pusher.push_blob("parity/blob", b"some bytes")
        response = pusher.http.get(f"/v2/parity/blob/blobs/{digest}")
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1] == (200, b"some bytes")


def test_bad_upload_digest_is_refused_alike(both):
    codes = []
    for pusher in both:
        start = pusher.http.post("/v2/parity/bad/blobs/uploads/")
        location = start.headers["Location"]
        sep = "&" if "?" in location else "?"
        done = pusher.http.put(f"{location}{sep}digest=sha256:{'1' * 64}", content=b"x")
        codes.append((done.status_code, done.json()["errors"][0]["code"]))
    assert codes[0] == codes[1] == (400, "DIGEST_INVALID")
