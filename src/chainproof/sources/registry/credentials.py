"""Registry credentials from Docker ``config.json`` and Kubernetes ``imagePullSecrets``.

This module owns :class:`Credential`, :class:`Keyring` and the readers:
:func:`read_docker_config` (a whole ``~/.docker/config.json``: ``auths``, ``credHelpers`` and
``credsStore``, as :class:`DockerConfig`), :func:`parse_docker_config` (its ``auths`` map alone:
``auth`` as base64 ``user:password``, or ``username``/``password``, or an ``identitytoken``) and
:func:`parse_pull_secret` (a Secret of type ``kubernetes.io/dockerconfigjson`` or the legacy
``kubernetes.io/dockercfg``: inline credentials only, as the kubelet reads them).

``auths`` keys are matched as the kubelet's keyring matches them
(``pkg/credentialprovider/keyring.go``), not by host alone: a key is a registry host with an
optional port and path (``r.example:5000/team-a``, schemes and a leading ``/v1/`` or ``/v2/``
ignored, ``https://index.docker.io/v1/`` meaning ``docker.io``); its host may carry glob
wildcards per dot-separated label (``*.example.com`` covers ``a.example.com``, not
``example.com`` nor ``a.b.example.com``); the port must be equal; the path must be a prefix of
the image's repository **on a path-segment boundary** (stricter than the kubelet's string
prefix: ``r.example/team`` does not cover ``r.example/team-b``). Of the keys matching an image,
the kubelet's order applies: keys sorted in reverse (so ``r.example/team-a`` comes before
``r.example``, and a literal host before a wildcard), equal keys in the order they were added
(the pod's first secret first). chainproof sends the first; the kubelet would try the others
after a refused pull. Helpers (``credHelpers``) stay keyed by host, as Docker keys them.
Running the helpers is :mod:`chainproof.sources.registry.helpers`' job.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chainproof.errors import InvalidArgument

__all__ = [
    "Credential",
    "DockerConfig",
    "Keyring",
    "KeyringEntry",
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


def _split_key(key: str) -> tuple[str, str]:
    """A credential key as the kubelet reads it: (host[:port], path without trailing '/')."""
    value = key.strip()
    for scheme in ("https://", "http://"):
        if value.lower().startswith(scheme):
            value = value[len(scheme) :]
            break
    host, slash, path = value.partition("/")
    path = slash + path
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]  # Docker treats …/v1/ and …/v2/ as the host itself
    path = path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return normalise_host(host), path


def _host_port(host: str) -> tuple[str, str]:
    if host.startswith("["):  # [v6::addr]:port
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else rest
    name, _, port = host.partition(":")
    return name, port


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    """One ``auths`` key, parsed: host labels (globs allowed), port, path prefix."""

    key: str
    labels: tuple[str, ...]
    port: str
    path: str
    credential: Credential = field(repr=False)

    @classmethod
    def parse(cls, key: str, credential: Credential) -> KeyringEntry:
        host, path = _split_key(key)
        name, port = _host_port(host)
        if port and not port.isdigit():
            raise InvalidArgument(f"credential key {key!r}: the port {port!r} is not a number")
        if not name or any(not label for label in name.split(".")):
            raise InvalidArgument(
                f"credential key {key!r} names no registry host: expected host[:port][/path], "
                "e.g. registry.example.com/team"
            )
        labels = (name,) if name.startswith("[") else tuple(name.split("."))
        return cls(host + path, labels, port, path, credential)

    def matches(self, registry: str, repository: str) -> bool:
        """Whether this key covers ``registry/repository`` (see the module docstring)."""
        name, port = _host_port(registry.lower())
        if port != self.port:
            return False
        if name.startswith("[") or self.labels[0].startswith("["):  # IPv6: literal only
            return (name,) == self.labels and self._covers(repository)
        labels = name.split(".")
        if len(labels) != len(self.labels):
            return False
        if not self._covers(repository):
            return False
        return all(
            fnmatch.fnmatchcase(label, glob)
            for label, glob in zip(labels, self.labels, strict=True)
        )

    def _covers(self, repository: str) -> bool:
        if not self.path:
            return True
        target = "/" + repository
        return target == self.path or target.startswith(self.path + "/")


class Keyring:
    """Credentials by ``auths`` key, looked up for an image as the kubelet looks them up."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[KeyringEntry] = ()) -> None:
        # Stable sort: equal keys keep the order they were added in (first secret first).
        self._entries = tuple(sorted(entries, key=lambda e: e.key, reverse=True))

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, Credential]]) -> Keyring:
        return cls(KeyringEntry.parse(k, c) for k, c in pairs)

    @classmethod
    def union(cls, keyrings: Iterable[Keyring]) -> Keyring:
        """One keyring of several, earlier ones first among equal keys (the kubelet's merge
        of a pod's pull secrets)."""
        return cls(e for keyring in keyrings for e in keyring.entries)

    @property
    def entries(self) -> tuple[KeyringEntry, ...]:
        return self._entries

    def lookup(self, registry: str, repository: str) -> tuple[Credential, ...]:
        """Every credential whose key covers the image, most specific first."""
        return tuple(e.credential for e in self._entries if e.matches(registry, repository))

    def first(self, registry: str, repository: str) -> Credential | None:
        for entry in self._entries:
            if entry.matches(registry, repository):
                return entry.credential
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keyring):
            return NotImplemented
        return [(e.key, e.credential) for e in self._entries] == [
            (e.key, e.credential) for e in other._entries
        ]

    def __hash__(self) -> int:
        return hash(tuple(e.key for e in self._entries))

    def __repr__(self) -> str:
        return f"Keyring({[e.key for e in self._entries]!r})"


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

    auths: Keyring = field(default_factory=Keyring)
    helpers: Mapping[str, str] = field(default_factory=dict)
    store: str = ""

    def __post_init__(self) -> None:
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


def parse_docker_config(data: bytes | str | Mapping[str, Any]) -> Keyring:
    """The keyring of a Docker ``config.json`` (or of its ``auths`` alone), inline credentials
    only (what a pull secret carries)."""
    doc = _document(data)
    auths = doc.get("auths", doc)
    if not isinstance(auths, Mapping):
        raise InvalidArgument("Docker config 'auths' must be a JSON object")
    pairs: list[tuple[str, Credential]] = []
    for key, value in auths.items():
        credential = _entry(str(key), value)
        assert credential is not None
        pairs.append((str(key), credential))
    return Keyring.of(pairs)


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
    inline: list[tuple[str, Credential]] = []
    for key, value in auths.items():
        host = _split_key(str(key))[0]
        credential = _entry(str(key), value, helped=bool(store or host in helpers))
        if credential is not None:
            inline.append((str(key), credential))
    return DockerConfig(Keyring.of(inline), helpers, store)


def parse_pull_secret(secret: Mapping[str, Any]) -> Keyring:
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
