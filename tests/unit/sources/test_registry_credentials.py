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
    assert creds["docker.io"] == Credential("me", "pw")
    assert creds["ghcr.io"] == Credential("u", "p")
    assert creds["registry.example:5000"].identity_token == "refresh"
    assert "pw" not in repr(creds["docker.io"])


def test_helper_only_entries_and_garbage_are_refused_with_reasons():
    with pytest.raises(InvalidArgument, match="credential helpers"):
        parse_docker_config({"auths": {"gcr.io": {}}})
    with pytest.raises(InvalidArgument, match="user:password"):
        parse_docker_config({"auths": {"gcr.io": {"auth": b64("nocolon")}}})
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_docker_config(b"{")


def test_pull_secret_of_both_types():
    config = json.dumps({"auths": {"quay.io": {"auth": b64("robot:tok")}}})
    secret = {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(config)}}
    assert parse_pull_secret(secret)["quay.io"] == Credential("robot", "tok")
    legacy = {
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": b64(json.dumps({"quay.io": {"auth": b64("a:b")}}))},
    }
    assert parse_pull_secret(legacy)["quay.io"] == Credential("a", "b")
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
