"""Docker config.json and imagePullSecrets credentials."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from chainproof.errors import InvalidArgument
from chainproof.sources.registry.client import _challenge, _retry_after
from chainproof.sources.registry.credentials import (
    Credential,
    parse_docker_config,
    parse_pull_secret,
    read_docker_config,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_docker_config_auth_and_hub_normalisation():
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64("me:pw")},
            "ghcr.io": {"username": "u", "password": "p"},
            "registry.example:5000": {"identitytoken": "refresh"},
        }
    }
    creds = parse_docker_config(json.dumps(config))
    assert creds.first("docker.io", "library/nginx") == Credential("me", "pw")
    assert creds.first("ghcr.io", "o/r") == Credential("u", "p")
    hit = creds.first("registry.example:5000", "a/b")
    assert hit is not None and hit.identity_token == "refresh"
    assert creds.first("registry.example", "a/b") is None  # the port is part of the key
    assert "pw" not in repr(creds) and "pw" not in repr(creds.entries)


def test_helper_only_entries_and_garbage_are_refused_with_reasons():
    with pytest.raises(InvalidArgument, match="no credential helper"):
        parse_docker_config({"auths": {"gcr.io": {}}})
    with pytest.raises(InvalidArgument, match="user:password"):
        parse_docker_config({"auths": {"gcr.io": {"auth": b64("nocolon")}}})
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_docker_config(b"{")


def test_pull_secret_of_both_types():
    config = json.dumps({"auths": {"quay.io": {"auth": b64("robot:tok")}}})
    secret = {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(config)}}
    assert parse_pull_secret(secret).first("quay.io", "o/app") == Credential("robot", "tok")
    legacy = {
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": b64(json.dumps({"quay.io": {"auth": b64("a:b")}}))},
    }
    assert parse_pull_secret(legacy).first("quay.io", "o/app") == Credential("a", "b")
    with pytest.raises(InvalidArgument, match="type"):
        parse_pull_secret({"type": "Opaque", "data": {}})


def test_www_authenticate_and_retry_after_parsing():
    scheme, params = _challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull",
    }
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert _retry_after("3", now) == 3.0
    assert _retry_after("Tue, 01 Dec 2026 12:00:10 GMT", now) == 10.0
    assert _retry_after("soon", now) is None


def test_docker_config_with_helpers_follows_dockers_order():
    config = read_docker_config(
        {
            "auths": {
                "https://index.docker.io/v1/": {},  # docker login with credsStore: empty
                "quay.io": {"auth": b64("robot:tok")},
                "gcr.io": {},
            },
            "credHelpers": {
                "gcr.io": "gcloud",
                "https://123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login",
            },
            "credsStore": "pass",
        }
    )
    assert config.helper_for("gcr.io") == "gcloud"
    assert config.helper_for("123.dkr.ecr.eu-west-1.amazonaws.com") == "ecr-login"
    assert config.helper_for("docker.io") == "pass"  # credsStore covers every other registry
    assert [(e.key, e.credential) for e in config.auths.entries] == [
        ("quay.io", Credential("robot", "tok"))
    ]
    plain = read_docker_config({"auths": {"quay.io": {"auth": b64("robot:tok")}}})
    assert plain.helper_for("quay.io") == ""
    assert plain.auths.lookup("quay.io", "o/app") == (Credential("robot", "tok"),)


def test_helper_names_cannot_name_other_programs():
    for bad in ("../../bin/sh", "pass word", "", "a/b"):
        with pytest.raises(InvalidArgument, match="credential helper name"):
            read_docker_config({"credHelpers": {"gcr.io": bad}})
    with pytest.raises(InvalidArgument, match="credsStore"):
        read_docker_config({"credsStore": "/usr/bin/evil"})
    with pytest.raises(InvalidArgument, match="no credential helper"):
        read_docker_config({"auths": {"gcr.io": {}}, "credHelpers": {"quay.io": "x"}})


def test_credential_identity_never_shows_the_secret_and_tells_secrets_apart():
    a, b = Credential("u", "one"), Credential("u", "two")
    assert "one" not in a.identity and a.identity != b.identity
    assert a.identity == Credential("u", "one").identity
