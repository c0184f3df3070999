"""Container image references and the canonical identity of a resource URI.

Evidence about an image is matched on one canonical string, ``registry/repository@sha256:…``,
so that ``nginx@sha256:…``, ``docker.io/library/nginx@sha256:…`` and
``https://index.docker.io/library/nginx:1.27@sha256:…`` all name the same artifact and a missing
scheme never silently hides an attestation. Follows the reference grammar of the
distribution project (domain, path components, tag, digest).

This module only parses strings; it never contacts a registry to resolve a tag.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from chainproof.errors import InvalidArgument

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"(?P<alg>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-fA-F0-9]{32,})")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")

REFERENCE_FORM = "[registry/]repository[:tag][@sha256:<64 hex digits>]"


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed, normalised image reference. ``digest`` is ``sha256:<hex>`` when present."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """The identity evidence is matched on: the digest wins over the tag when both exist."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        if self.tag:
            return f"{self.name}:{self.tag}"
        return self.name

    def __str__(self) -> str:
        return self.canonical


def _strip_scheme(uri: str) -> str:
    lowered = uri[:8].lower()
    if lowered.startswith("https://"):
        return uri[8:]
    if lowered.startswith("http://"):
        return uri[7:]
    return uri


@functools.lru_cache(maxsize=65536)  # admission judges the same few references all day
def parse_image_reference(text: str) -> ImageReference:
    """Parse a container image reference; raise InvalidArgument saying what is wrong."""
    ref = _strip_scheme(text.strip())
    if not ref:
        raise InvalidArgument(f"image reference is empty: expected {REFERENCE_FORM}")

    digest: str | None = None
    if "@" in ref:
        ref, _, raw_digest = ref.partition("@")
        m = _DIGEST.fullmatch(raw_digest)
        if m is None:
            raise InvalidArgument(
                f"image reference {text!r} has a malformed digest {raw_digest!r}: "
                "expected sha256:<64 hex digits>"
            )
        alg, hexpart = m.group("alg"), m.group("hex").lower()
        if alg != "sha256" or not _SHA256_HEX.fullmatch(hexpart):
            raise InvalidArgument(
                f"image reference {text!r} has digest {raw_digest!r}: only sha256 digests of "
                "64 hex digits are supported"
            )
        digest = f"sha256:{hexpart}"

    tag: str | None = None
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidArgument(
                f"image reference {text!r} has an invalid tag {tag!r}: expected up to 128 "
                "letters, digits, '_', '.' or '-', not starting with '.' or '-'"
            )

    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, ref
    if not _HOST.fullmatch(registry):
        raise InvalidArgument(f"image reference {text!r} has an invalid registry {registry!r}")
    registry = registry.lower()
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if not _PATH.fullmatch(path):
        raise InvalidArgument(
            f"image reference {text!r} has an invalid repository {path!r}: expected lowercase "
            f"path components separated by '/', in the form {REFERENCE_FORM}"
        )
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)


@functools.lru_cache(maxsize=65536)  # many occurrences name the same few images
def canonical_resource(uri: str) -> str:
    """The matching key for a resource URI.

    Image references become ``registry/repository@sha256:…`` (or ``…:tag`` without a digest);
    any other URI (a package URL, a source repository) is kept as written, trimmed.
    Never raises: a URI that is not an image is still a valid resource.
    """
    try:
        return parse_image_reference(uri).canonical
    except InvalidArgument:
        return uri.strip()
