"""Registry credentials from Docker ``config.json`` and Kubernetes ``imagePullSecrets``.

This module owns :class:`Credential` and the readers: :func:`read_docker_config` (a whole
``~/.docker/config.json``: ``auths``, ``credHelpers`` and ``credsStore``, as
:class:`DockerConfig`), :func:`parse_docker_config` (its ``auths`` map alone: ``auth`` as base64
``user:password``, or ``username``/``password``, or an ``identitytoken``) and
:func:`parse_pull_secret` (a Secret of type ``kubernetes.io/dockerconfigjson`` or the legacy
``kubernetes.io/dockercfg``: inline credentials only, as the kubelet reads them). Keys are
normalised to the registry host chainproof uses in image references, so
``https://index.docker.io/v1/`` means ``docker.io``. Running the helpers a config names is
:mod:`chainproof.sources.registry.helpers`' job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chainproof.errors import InvalidArgument

__all__ = [
    "Credential",
    "DockerConfig",
    "normalise_host",
    "parse_docker_config",
    "parse_pull_secret",
    "read_docker_config",
]

_HUB_KEYS = {"index.docker.io", "registry-1.docker.io", "docker.io"}


def normalise_host(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://r:5000/x`` → ``r:5000``."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_KEYS else host


#: A helper name becomes part of a program name (docker-credential-NAME): no paths, no spaces.
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Credential:
    """A user and password, or an identity token (an OAuth2 refresh token for the realm)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def identity(self) -> str:
        """Who this credential speaks for, without its secret (tokens are cached per identity)."""
        digest = hashlib.sha256(f"{self.password}\0{self.identity_token}".encode()).hexdigest()
        return f"{self.username}#{digest[:16]}"


@dataclass(frozen=True, slots=True)
class DockerConfig:
    """What a Docker ``config.json`` says about registry credentials.

    Docker's order, kept here: a registry's ``credHelpers`` entry, else ``credsStore``, names
    the helper to ask (and when there is one, inline ``auths`` are not used); without either,
    the ``auths`` entry."""

    auths: Mapping[str, Credential] = field(default_factory=dict)
    helpers: Mapping[str, str] = field(default_factory=dict)
    store: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "auths", MappingProxyType(dict(self.auths)))
        object.__setattr__(self, "helpers", MappingProxyType(dict(self.helpers)))

    def helper_for(self, host: str) -> str:
        """The helper to run for ``host`` ("" for none)."""
        return self.helpers.get(host) or self.store


def _helper(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _HELPER_NAME.fullmatch(name):
        raise InvalidArgument(
            f"Docker config {where} {name!r} is not a credential helper name: expected "
            "letters, digits, '.', '_' or '-' (the program docker-credential-NAME)"
        )
    return name


def _entry(host: str, raw: Any, *, helped: bool = False) -> Credential | None:
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
        if helped:
            return None  # the helper holds them (docker login leaves an empty entry)
        raise InvalidArgument(
            f"credentials for {host} carry neither auth, username and password, nor "
            "identitytoken, and no credential helper (credHelpers, credsStore) covers it"
        )
    return Credential(str(user), str(password), str(token))


def _document(data: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, bytes | str):
        try:
            doc: Any = json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"Docker config is not JSON: {exc}") from exc
    else:
        doc = data
    if not isinstance(doc, Mapping):
        raise InvalidArgument("Docker config must be a JSON object")
    return doc


def parse_docker_config(data: bytes | str | Mapping[str, Any]) -> dict[str, Credential]:
    """Registry host → credential, from a Docker ``config.json`` (or its ``auths`` alone),
    inline credentials only (what a pull secret carries)."""
    doc = _document(data)
    auths = doc.get("auths", doc)
    if not isinstance(auths, Mapping):
        raise InvalidArgument("Docker config 'auths' must be a JSON object")
    out: dict[str, Credential] = {}
    for key, value in auths.items():
        credential = _entry(key, value)
        assert credential is not None
        out[normalise_host(key)] = credential
    return out


def read_docker_config(data: bytes | str | Mapping[str, Any]) -> DockerConfig:
    """A whole Docker ``config.json``: inline ``auths``, ``credHelpers`` and ``credsStore``."""
    doc = _document(data)
    store = doc.get("credsStore") or ""
    if store:
        store = _helper(store, "credsStore")
    raw_helpers = doc.get("credHelpers") or {}
    if not isinstance(raw_helpers, Mapping):
        raise InvalidArgument("Docker config 'credHelpers' must be a JSON object")
    helpers = {normalise_host(k): _helper(v, f"credHelpers[{k!r}]") for k, v in raw_helpers.items()}
    auths = doc.get("auths") or {}
    if not isinstance(auths, Mapping):
        raise InvalidArgument("Docker config 'auths' must be a JSON object")
    inline: dict[str, Credential] = {}
    for key, value in auths.items():
        host = normalise_host(key)
        credential = _entry(key, value, helped=bool(store or host in helpers))
        if credential is not None:
            inline[host] = credential
    return DockerConfig(inline, helpers, store)


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
