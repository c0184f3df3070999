"""cosign's registry layout, written through the distribution API (no cosign binary here).

``sign_image`` pushes ``sha256-<hex>.sig`` with simple-signing layers carrying the
``dev.cosignproject.cosign/signature`` annotation; ``attest_image`` pushes ``sha256-<hex>.att``
with DSSE envelope layers; ``attach_bundle`` pushes a Sigstore bundle as an OCI 1.1 referrer
(``subject`` set, ``artifactType`` the bundle media type), and, for registries without the
referrers API, the ``sha256-<hex>`` fallback index as cosign does. Shapes follow cosign's
``pkg/oci`` and the OCI image spec.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from chainproof.attest.intoto import build_statement
from chainproof.attest.simple_signing import COSIGN_SIGNATURE_TYPE, build_simple_signing
from chainproof.crypto.signing import PkixSigner, sign_envelope
from chainproof.domain.images import parse_image_reference
from oci_registry import Pusher

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def sign_image(
    registry: Pusher,
    repository: str,
    image_digest: str,
    signer: PkixSigner,
    *,
    payload_digest: str | None = None,
    payload_repository: str | None = None,
    tag_digest: str | None = None,
) -> str:
    """Sign (a payload naming ``payload_digest``, default the image) and push the ``.sig``."""
    named = parse_image_reference(
        f"{registry.host}/{payload_repository or repository}@{payload_digest or image_digest}"
    )
    payload = build_simple_signing(named, signature_type=COSIGN_SIGNATURE_TYPE)
    signature = base64.b64encode(signer.sign(payload)).decode()
    tag = (tag_digest or image_digest).replace(":", "-") + ".sig"
    return registry.push_artifact_manifest(
        repository,
        tag,
        [(payload, SIMPLE_SIGNING, {"dev.cosignproject.cosign/signature": signature})],
    )


def attest_image(
    registry: Pusher,
    repository: str,
    image_digest: str,
    signer: PkixSigner,
    predicate_type: str,
    predicate: dict[str, Any],
    *,
    subject_digest: str | None = None,
) -> str:
    named = parse_image_reference(f"{registry.host}/{repository}@{subject_digest or image_digest}")
    statement = build_statement(named, predicate_type, predicate)
    envelope = sign_envelope(statement, "application/vnd.in-toto+json", [signer])
    blob = json.dumps(envelope.to_json()).encode()
    return registry.push_artifact_manifest(
        repository,
        image_digest.replace(":", "-") + ".att",
        [(blob, DSSE, {"predicateType": predicate_type})],
    )


def key_bundle(
    registry: Pusher,
    repository: str,
    subject_digest: str,
    signer: PkixSigner,
    predicate_type: str,
    predicate: dict[str, Any],
) -> bytes:
    """A v0.3 bundle whose signer is a plain key (cosign --key with the new bundle format)."""
    named = parse_image_reference(f"{registry.host}/{repository}@{subject_digest}")
    statement = build_statement(named, predicate_type, predicate)
    envelope = sign_envelope(statement, "application/vnd.in-toto+json", [signer])
    return json.dumps(
        {
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {"publicKey": {"hint": signer.key_id}},
            "dsseEnvelope": envelope.to_json(),
        }
    ).encode()


def attach_bundle(
    registry: Pusher,
    repository: str,
    image_digest: str,
    bundle: bytes,
    *,
    fallback_tag: bool,
) -> str:
    subject = registry.manifest_descriptor(repository, image_digest)
    digest = registry.push_artifact_manifest(
        repository,
        "bundle-" + image_digest[7:19],
        [(bundle, BUNDLE_V03, {})],
        subject=subject,
        artifact_type=BUNDLE_V03,
    )
    if fallback_tag:
        descriptor = registry.manifest_descriptor(repository, digest)
        descriptor["artifactType"] = BUNDLE_V03
        registry.push_manifest(
            repository,
            image_digest.replace(":", "-"),
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [descriptor],
            },
        )
    return digest


def push_index(registry: Pusher, repository: str, tag: str, children: list[tuple[str, str]]) -> str:
    """An OCI index over ``(digest, "os/arch")`` children already in the repository."""
    manifests = []
    for digest, platform in children:
        descriptor = registry.manifest_descriptor(repository, digest)
        os_name, arch = platform.split("/")
        descriptor["platform"] = {"os": os_name, "architecture": arch}
        manifests.append(descriptor)
    return registry.push_manifest(
        repository,
        tag,
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        },
    )
