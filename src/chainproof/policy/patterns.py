"""Name patterns: the allowlist globs of Binary Authorization and the string globs of chainproof.

Binary Authorization's ``admissionWhitelistPatterns[].namePattern`` is ``registry/path/to/image``
where ``*`` matches any run of characters *within one path segment* (it never crosses ``/``)
and ``**`` matches across segments. Google only documents the wildcards at the end of a pattern;
chainproof accepts them anywhere after the registry, which is a strict superset. Wildcards in
the registry itself are refused: ``*.io/**`` would allowlist nearly everything by accident.

Patterns are normalised the same way image references are (``docker.io`` implied,
``index.docker.io`` folded into ``docker.io``, ``library/`` added to official images), so that the
pattern ``nginx`` and the image ``docker.io/library/nginx:1.27`` meet. A pattern without a tag or
digest matches every tag and digest of the repositories it names; a pattern with one matches only
references that carry it.

This module only matches strings. Parsing references belongs to :mod:`chainproof.domain.images`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chainproof.domain.images import DOCKER_HUB, ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument

_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def _glob_to_regex(glob: str) -> str:
    """``**`` → any characters; ``*`` → any characters except ``/``; the rest literal."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def _looks_like_registry(first: str) -> bool:
    # The same rule the reference grammar uses: a dot, a port or "localhost" marks a registry.
    return "." in first or ":" in first or first == "localhost"


@dataclass(frozen=True, slots=True)
class ImageNamePattern:
    """One compiled allowlist pattern; ``text`` is kept exactly as the author wrote it."""

    text: str
    normalised: str
    _regex: re.Pattern[str] = field(repr=False, compare=False, hash=False)

    def matches(self, image: ImageReference) -> bool:
        return any(self._regex.fullmatch(candidate) for candidate in _candidates(image))


def _candidates(image: ImageReference) -> tuple[str, ...]:
    """Every spelling of the reference a pattern may be written against."""
    name = image.name
    out = [name]
    if image.tag:
        out.append(f"{name}:{image.tag}")
    if image.digest:
        out.append(f"{name}@{image.digest}")
        if image.tag:
            out.append(f"{name}:{image.tag}@{image.digest}")
    return tuple(out)


def compile_image_pattern(text: str) -> ImageNamePattern:
    """Compile an allowlist pattern; raise InvalidArgument saying what is wrong with it."""
    pattern = text.strip()
    lowered = pattern[:8].lower()
    if lowered.startswith("https://"):
        pattern = pattern[8:]
    elif lowered.startswith("http://"):
        pattern = pattern[7:]
    if not pattern:
        raise InvalidArgument("name pattern is empty: expected registry/path/to/image[*|**]")
    if "***" in pattern:
        raise InvalidArgument(f"name pattern {text!r} has '***': use '*' or '**'")

    if "*" not in pattern:
        # A plain reference: normalise it exactly as an image so that aliases meet.
        ref = parse_image_reference(pattern)
        normalised = ref.name
        if ref.tag:
            normalised += f":{ref.tag}"
        if ref.digest:
            normalised += f"@{ref.digest}"
        return ImageNamePattern(text, normalised, re.compile(re.escape(normalised)))

    first, sep, rest = pattern.partition("/")
    if sep and _looks_like_registry(first):
        registry, path = first.lower(), rest
    elif sep and "*" in first:
        raise InvalidArgument(
            f"name pattern {text!r} has a wildcard in the registry: wildcards are allowed "
            "only after 'registry/'"
        )
    else:
        registry, path = DOCKER_HUB, pattern
    if "*" in registry:
        raise InvalidArgument(
            f"name pattern {text!r} has a wildcard in the registry: wildcards are allowed only "
            "after 'registry/'"
        )
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        # "docker.io/ngin*" names official images, which live under library/.
        if "/" not in path and not path.startswith("**"):
            path = f"library/{path}"
    if not path:
        raise InvalidArgument(f"name pattern {text!r} names a registry but no repository")
    normalised = f"{registry}/{path}"
    return ImageNamePattern(text, normalised, re.compile(_glob_to_regex(normalised)))


@dataclass(frozen=True, slots=True)
class StringPattern:
    """A glob over plain strings (builder IDs, source URIs): ``*`` within a segment, ``**`` any."""

    text: str
    _regex: re.Pattern[str] = field(repr=False, compare=False, hash=False)

    def matches(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None


def compile_string_pattern(text: str, *, normalise: bool = False) -> StringPattern:
    body = normalise_source_uri(text) if normalise else text.strip()
    if not body:
        raise InvalidArgument("pattern is empty")
    return StringPattern(text, re.compile(_glob_to_regex(body)))


def normalise_source_uri(uri: str) -> str:
    """``git+https://github.com/o/r.git@refs/heads/main`` → ``github.com/o/r``.

    Provenance writers spell one repository many ways (scheme, ``git+`` prefix, ``.git``
    suffix, a ref or commit after ``@``); trust is about the repository, so those are dropped.
    """
    text = uri.strip()
    if text.startswith("git+"):
        text = text[4:]
    scheme_end = text.find("://")
    if scheme_end != -1:
        text = text[scheme_end + 3 :]
    host, slash, path = text.partition("/")
    if "@" in host:  # user@host
        host = host.rpartition("@")[2]
    for stop in ("@", "#", "?"):
        cut = path.find(stop)
        if cut != -1:
            path = path[:cut]
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}{slash}{path}" if path else host.lower()
