"""OCI/Docker manifest and index parsing, and cosign's tag names."""

from __future__ import annotations

import json

import pytest

from chainproof.attest.cosign import signature_layer
from chainproof.attest.oci import (
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    Manifest,
    cosign_tag,
    parse_manifest,
)
from chainproof.errors import InvalidArgument

D = "sha256:" + "a" * 64


def test_manifest_and_index_parse():
    manifest = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "x", "digest": D, "size": 2},
                "layers": [{"mediaType": "y", "digest": D, "size": 3, "annotations": {"k": "v"}}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": D, "size": 1},
            }
        ).encode()
    )
    assert isinstance(manifest, Manifest)
    assert manifest.layers[0].annotations == {"k": "v"}
    assert manifest.subject is not None
    index = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": D,
                        "size": 1,
                        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                    }
                ],
            }
        ).encode(),
        DOCKER_MANIFEST_LIST,
    )
    assert isinstance(index, ImageIndex)
    assert str(index.manifests[0].platform) == "linux/arm64/v8"


@pytest.mark.parametrize(
    ("doc", "announced", "message"),
    [
        (b"[", None, "not JSON"),
        (b'{"schemaVersion": 1}', None, "schemaVersion"),
        (b'{"schemaVersion": 2, "mediaType": "a"}', OCI_MANIFEST, "announced"),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', None, "media type"),
        (
            b'{"schemaVersion": 2, "layers": [], "config": {"mediaType": "x", "digest": "sha256:1", "size": 1}}',
            None,
            "digest",
        ),
        (
            b'{"schemaVersion": 2, "layers": [], "config": {"mediaType": "x", "digest": "'
            + D.encode()
            + b'", "size": -1}}',
            None,
            "size",
        ),
    ],
)
def test_bad_manifests_say_what_is_wrong(doc, announced, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_manifest(doc, announced)


def test_cosign_tags():
    assert cosign_tag(D, ".sig") == "sha256-" + "a" * 64 + ".sig"
    assert cosign_tag(D) == "sha256-" + "a" * 64
    with pytest.raises(InvalidArgument):
        cosign_tag("sha256:zz")


def test_signature_layer_needs_its_annotation():
    layer = Descriptor("application/vnd.dev.cosign.simplesigning.v1+json", D, 2)
    with pytest.raises(InvalidArgument, match="dev.cosignproject.cosign/signature"):
        signature_layer(layer, b"{}")
    other = Descriptor("text/plain", D, 2, {"dev.cosignproject.cosign/signature": "AA=="})
    with pytest.raises(InvalidArgument, match="media type"):
        signature_layer(other, b"{}")
