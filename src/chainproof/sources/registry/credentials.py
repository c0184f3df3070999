"""Registry credentials from Docker ``config.json`` and Kubernetes ``imagePullSecrets``.

This module owns :class:`Credential` and the two readers, :func:`parse_docker_config` (the
``auths`` map of ``~/.docker/config.json``: ``auth`` as base64 ``user:password``, or
``username``/``password``, or an ``identitytoken``) and :func:`parse_pull_secret` (a Secret of
type ``kubernetes.io/dockerconfigjson`` or the legacy ``kubernetes.io/dockercfg``). Keys are
normalised to the registry host chainproof uses in image references, so
``https://index.docker.io/v1/`` means ``docker.io``. Credential helpers (``credsStore``) are
programs to run and are not followed: an entry that names only a helper is reported.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chainproof.errors import InvalidArgument

__all__ = ["Credential", "normalise_host", "parse_docker_config", "parse_pull_secret"]

_HUB_KEYS = {"index.docker.io", "registry-1.docker.io", "docker.io"}


@dataclass(frozen=True, slots=True)
class Credential:
    """A user and password, or an identity token (an OAuth2 refresh token for the realm)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def normalise_host(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://r:5000/x`` → ``r:5000``."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_KEYS else host


def _entry(host: str, raw: Any) -> Credential:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"credentials for {host} must be a JSON object")
    token = raw.get("identitytoken") or ""
    user, password = raw.get("username") or "", raw.get("password") or ""
    encoded = raw.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"credentials for {host}: auth is not base64: {exc}") from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidArgument(f"credentials for {host}: auth must encode 'user:password'")
    if not (user and password) and not token:
        raise InvalidArgument(
            f"credentials for {host} carry neither auth, username and password, nor "
            "identitytoken (credential helpers are not run by chainproof)"
        )
    return Credential(str(user), str(password), str(token))


def parse_docker_config(data: bytes | str | Mapping[str, Any]) -> dict[str, Credential]:
    """Registry host → credential, from a Docker ``config.json`` (or its ``auths`` alone)."""
    if isinstance(data, bytes | str):
        try:
            doc: Any = json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"Docker config is not JSON: {exc}") from exc
    else:
        doc = data
    if not isinstance(doc, Mapping):
        raise InvalidArgument("Docker config must be a JSON object")
    auths = doc.get("auths", doc)
    if not isinstance(auths, Mapping):
        raise InvalidArgument("Docker config 'auths' must be a JSON object")
    return {normalise_host(k): _entry(k, v) for k, v in auths.items()}


def parse_pull_secret(secret: Mapping[str, Any]) -> dict[str, Credential]:
    """Credentials from a Kubernetes Secret used as an ``imagePullSecret``."""
    kind = secret.get("type")
    data = secret.get("data")
    if not isinstance(data, Mapping):
        raise InvalidArgument("pull secret has no data map")
    key = {
        "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
        "kubernetes.io/dockercfg": ".dockercfg",
    }.get(str(kind))
    if key is None:
        raise InvalidArgument(
            f"pull secret type {kind!r} is not kubernetes.io/dockerconfigjson or "
            "kubernetes.io/dockercfg"
        )
    encoded = data.get(key)
    if not isinstance(encoded, str):
        raise InvalidArgument(f"pull secret lacks data[{key!r}]")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise InvalidArgument(f"pull secret data[{key!r}] is not base64: {exc}") from exc
    return parse_docker_config(raw)
