"""Image identity: every spelling of one image has one canonical form."""

import pytest

from chainproof.domain.images import canonical_resource, parse_image_reference
from chainproof.errors import InvalidArgument

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (f"nginx@{D}", f"docker.io/library/nginx@{D}"),
        (f"docker.io/library/nginx@{D}", f"docker.io/library/nginx@{D}"),
        (f"https://docker.io/library/nginx@{D}", f"docker.io/library/nginx@{D}"),
        (f"index.docker.io/library/nginx:1.27@{D}", f"docker.io/library/nginx@{D}"),
        (f"HTTPS://gcr.io/x/app@{D}", f"gcr.io/x/app@{D}"),
        (f"http://localhost:5000/demo/app@{D}", f"localhost:5000/demo/app@{D}"),
        (f"GCR.IO/x/app@{D.upper().replace('SHA256', 'sha256')}", f"gcr.io/x/app@{D}"),
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("  gcr.io/x/app:v1  ", "gcr.io/x/app:v1"),
    ],
)
def test_canonical_forms(given: str, canonical: str) -> None:
    assert canonical_resource(given) == canonical


def test_tag_and_digest_keep_both_but_identity_is_the_digest() -> None:
    ref = parse_image_reference(f"gcr.io/x/app:v1@{D}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("gcr.io", "x/app", "v1", D)
    assert ref.canonical == f"gcr.io/x/app@{D}"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "empty"),
        (f"gcr.io/x/app@sha256:{'a' * 63}", "64 hex"),
        ("gcr.io/x/app@md5:" + "a" * 32, "only sha256"),
        ("gcr.io/x/App", "invalid repository"),
        ("gcr.io/x/app:-bad", "invalid tag"),
    ],
)
def test_bad_references_say_what_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        parse_image_reference(bad)


def test_non_image_resources_are_kept_as_written() -> None:
    assert canonical_resource("deb://debian:12/openssl@3.0") == "deb://debian:12/openssl@3.0"
    assert canonical_resource("pkg:pypi/requests@2.32") == "pkg:pypi/requests@2.32"
