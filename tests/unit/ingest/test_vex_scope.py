"""VEX scoping: a statement applies to the product and subcomponent it names, nothing more."""

from __future__ import annotations

import pytest

from chainproof.domain.images import parse_image_reference
from chainproof.ingest.model import VexScope
from chainproof.ingest.vex import product_identity, product_names_image, scope_applies

HEX = "23a264e6e429852221a963e9f17338ba3f5796dc7086e46439a6f4482cf6e0cb"
IMAGE = parse_image_reference(f"registry.example/git@sha256:{HEX}")
GIT = "pkg:apk/alpine/git@2.38.1-r0?arch=x86_64"
CURL = "pkg:apk/alpine/curl@7.1-r0?arch=x86_64"


@pytest.mark.parametrize(
    ("product", "identity"),
    [
        (f"pkg:oci/git@sha256%3A{HEX}", f"sha256:{HEX}"),
        (
            f"pkg:oci/git@sha256%3A{HEX}?repository_url=registry.example/git",
            f"registry.example/git@sha256:{HEX}",
        ),
        ({"@id": f"registry.example/git@sha256:{HEX}"}, f"registry.example/git@sha256:{HEX}"),
        ({"hashes": {"sha-256": HEX}}, f"sha256:{HEX}"),
        ({"identifiers": {"purl": "pkg:npm/left-pad@1.0.0"}}, "pkg:npm/left-pad@1.0.0"),
        ("registry.example/git:latest", None),  # a tag is not an identity
        ("not a product", None),
        (42, None),
    ],
)
def test_product_identity(product, identity):
    assert product_identity(product) == identity


def test_subcomponent_scoping_keeps_other_packages_unresolved():
    scope = VexScope(f"sha256:{HEX}", (GIT,))
    assert scope_applies(scope, IMAGE, GIT)
    assert not scope_applies(scope, IMAGE, CURL)  # same CVE, another package: not silenced
    assert not scope_applies(scope, IMAGE, "")  # a finding without purl cannot be matched


def test_whole_image_statement_applies_to_every_package_of_that_image_only():
    scope = VexScope(f"registry.example/git@sha256:{HEX}")
    assert scope_applies(scope, IMAGE, CURL)
    other = parse_image_reference(f"registry.example/git@sha256:{'0' * 64}")
    assert not scope_applies(scope, other, CURL)
    renamed = parse_image_reference(f"evil.example/git@sha256:{HEX}")
    assert not scope_applies(scope, renamed, CURL)


def test_digest_is_never_matched_as_a_substring():
    # The judge once matched a digest as a substring of serialised JSON; a product whose digest
    # merely contains a prefix of the image's, or an image digest inside a longer string, is
    # not the image.
    assert not product_names_image(f"sha256:{HEX[:32]}", IMAGE)
    assert product_identity({"@id": f"x{HEX}"}) is None
    assert product_identity({"identifiers": {"note": f"sha256:{HEX}"}}) is None


def test_purl_product_matches_by_version_and_qualifiers():
    assert scope_applies(VexScope("pkg:apk/alpine/git"), IMAGE, GIT)
    assert scope_applies(VexScope("pkg:apk/alpine/git@2.38.1-r0"), IMAGE, GIT)
    assert not scope_applies(VexScope("pkg:apk/alpine/git@2.38.2-r0"), IMAGE, GIT)
    assert not scope_applies(VexScope("pkg:apk/alpine/git?arch=ppc64le"), IMAGE, GIT)
    assert not scope_applies(VexScope("pkg:apk/wolfi/git"), IMAGE, GIT)
