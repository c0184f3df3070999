"""Allowlist globbing: '*' stays inside one path segment, '**' crosses them; aliases normalise."""

from __future__ import annotations

import pytest

from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy.patterns import (
    compile_image_pattern,
    compile_string_pattern,
    normalise_source_uri,
)

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("pattern", "image", "matches"),
    [
        ("gcr.io/x/*", "gcr.io/x/app", True),
        ("gcr.io/x/*", f"gcr.io/x/app@{D}", True),
        ("gcr.io/x/*", "gcr.io/x/app:1.0", True),
        ("gcr.io/x/*", "gcr.io/x/team/app", False),  # '*' never crosses '/'
        ("gcr.io/x/**", "gcr.io/x/team/app", True),
        ("gcr.io/x/**", "gcr.io/x/app", True),
        ("gcr.io/x/**", "gcr.io/xy/app", False),
        ("gcr.io/nginx*", "gcr.io/nginx:latest", True),  # Google's own example
        ("gcr.io/nginx*", "gcr.io/nginx/image", False),
        ("gcr.io/nginx**", "gcr.io/nginx/image", True),
        ("gcr.io/x/app", "gcr.io/x/app:any", True),  # no tag in the pattern: every tag
        ("gcr.io/x/app", f"gcr.io/x/app@{D}", True),
        ("gcr.io/x/app", "gcr.io/x/app2", False),
        ("gcr.io/x/app:1.0", "gcr.io/x/app:1.0", True),
        ("gcr.io/x/app:1.0", "gcr.io/x/app:2.0", False),
        (f"gcr.io/x/app@{D}", f"gcr.io/x/app@{D}", True),
        (f"gcr.io/x/app@{D}", "gcr.io/x/app:1.0", False),
        ("gcr.io/*/app", "gcr.io/x/app", True),
        ("gcr.io/*/app", "gcr.io/x/y/app", False),
        ("gcr.io/**/app", "gcr.io/x/y/app", True),
        # docker.io normalisation on both sides
        ("nginx", "docker.io/library/nginx:1.27", True),
        ("docker.io/nginx", "nginx", True),
        ("index.docker.io/library/nginx", "nginx:1.27", True),
        ("docker.io/ngin*", "nginx", True),
        ("docker.io/library/*", "redis", True),
        ("docker.io/bitnami/*", "bitnami/redis", True),
        ("docker.io/**", "bitnami/redis", True),
        ("https://gcr.io/x/*", "gcr.io/x/app", True),
        ("GCR.io/x/*", "gcr.io/x/app", True),
        ("gcr.io/x/*", "eu.gcr.io/x/app", False),
    ],
)
def test_allowlist_glob(pattern: str, image: str, matches: bool) -> None:
    assert compile_image_pattern(pattern).matches(parse_image_reference(image)) is matches


@pytest.mark.parametrize("pattern", ["", "*/x", "*.io/x/*", "gcr.io/x/***", "gcr.io/", "Bad Repo"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidArgument):
        compile_image_pattern(pattern)


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        ("git+https://github.com/acme/app.git@refs/heads/main", "github.com/acme/app"),
        ("https://github.com/acme/app", "github.com/acme/app"),
        ("git+ssh://git@github.com/acme/app.git#sub", "github.com/acme/app"),
        ("GitHub.com/acme/app/", "github.com/acme/app"),
    ],
)
def test_source_uris_normalise(uri: str, normalised: str) -> None:
    assert normalise_source_uri(uri) == normalised


def test_string_patterns_use_the_same_segments() -> None:
    p = compile_string_pattern("https://github.com/acme/*")
    assert p.matches("https://github.com/acme/builder")
    assert not p.matches("https://github.com/acme/builder/sub")
    assert compile_string_pattern("https://github.com/acme/**").matches(
        "https://github.com/acme/a/b@v1"
    )
