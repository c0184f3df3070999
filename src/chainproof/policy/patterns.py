"""Name patterns: the allowlist globs of Binary Authorization and the string globs of chainproof.

Binary Authorization's ``admissionWhitelistPatterns[].namePattern`` is ``registry/path/to/image``
where ``*`` matches any run of characters *within one path segment* (it never crosses ``/``)
and ``**`` matches across segments. Google only documents the wildcards at the end of a pattern;
chainproof accepts them anywhere after the registry, which is a strict superset. Wildcards in
the registry itself are refused: ``*.io/**`` would allowlist nearly everything by accident; so
is a pattern that starts with a wildcard and names no registry (``**``, ``*``): it reads as
"every registry".

Patterns are normalised the same way image references are (``docker.io`` implied,
``index.docker.io`` folded into ``docker.io``, ``library/`` added to official images), so that the
pattern ``nginx`` and the image ``docker.io/library/nginx:1.27`` meet. A pattern without a tag or
digest matches every tag and digest of the repositories it names; a pattern with one matches only
references that carry it, and a tag never covers a reference that also carries a digest
(what runs is the digest): name, tag and digest are matched separately.

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
    """One compiled allowlist pattern; ``text`` is kept exactly as the author wrote it.

    The name (``registry/repository``), the tag and the digest are matched separately, never
    as one string: a ``*`` in the name must not swallow a tag or a digest, and a tag pattern
    must never cover a reference that also carries a digest (the runtime pulls the digest and
    ignores the tag, so ``app:1.0@sha256:<anything>`` is not ``app:1.0``).
    """

    text: str
    normalised: str
    _name: re.Pattern[str] = field(repr=False, compare=False, hash=False)
    _tag: re.Pattern[str] | None = field(default=None, repr=False, compare=False, hash=False)
    digest: str | None = None

    def matches(self, image: ImageReference) -> bool:
        if not self._name.fullmatch(image.name):
            return False
        if self.digest is not None:
            return image.digest == self.digest
        if self._tag is not None:
            return (
                image.digest is None
                and image.tag is not None
                and bool(self._tag.fullmatch(image.tag))
            )
        return True


def _split_tag_and_digest(path: str, text: str) -> tuple[str, str | None, str | None]:
    """``team/app:1.*@sha256:…`` → (``team/app``, ``1.*``, ``sha256:…``). Only the last path
    segment can carry them (a registry port lives in the first, which is already split off)."""
    head, slash, last = path.rpartition("/")
    last, at, digest = last.partition("@")
    if at:
        try:
            digest = parse_image_reference(f"x@{digest}").digest or ""
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"name pattern {text!r} has a malformed digest: {exc.message}"
            ) from exc
    last, colon, tag = last.partition(":")
    if colon and not tag:
        raise InvalidArgument(f"name pattern {text!r} ends its tag with nothing after ':'")
    return head + slash + last, (tag if colon else None), (digest if at else None)


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
        tag = None if ref.tag is None else re.compile(re.escape(ref.tag))
        return ImageNamePattern(text, normalised, re.compile(re.escape(ref.name)), tag, ref.digest)

    first, sep, rest = pattern.partition("/")
    if sep and _looks_like_registry(first):
        registry, path = first.lower(), rest
    elif sep and "*" in first:
        raise InvalidArgument(
            f"name pattern {text!r} has a wildcard in the registry: wildcards are allowed "
            "only after 'registry/'"
        )
    elif first.startswith("*"):
        # "**", "*" or "**app": read as "any registry" by anyone who writes them, and an
        # allowlist entry that admits every image must never be accepted silently.
        raise InvalidArgument(
            f"name pattern {text!r} starts with a wildcard and names no registry, so it reads "
            "as covering every registry: write the registry first (for example "
            "docker.io/library/* or gcr.io/my-project/**)"
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
    path, tag_glob, digest = _split_tag_and_digest(path, text)
    if not path:
        raise InvalidArgument(f"name pattern {text!r} names a registry but no repository")
    normalised = f"{registry}/{path}"
    name_regex = re.compile(_glob_to_regex(normalised))
    if tag_glob is not None:
        normalised += f":{tag_glob}"
    if digest is not None:
        normalised += f"@{digest}"
    tag_regex = None if tag_glob is None else re.compile(_glob_to_regex(tag_glob))
    return ImageNamePattern(text, normalised, name_regex, tag_regex, digest)


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


_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def remove_dot_segments(path: str) -> str:
    """A URI path with ``.`` and ``..`` segments resolved (RFC 3986 §5.2.4) and ``//`` folded.

    ``org/trusted/../evil`` names ``org/evil``, and a pattern must see it so: otherwise
    ``org/trusted/**`` would trust any repository reached by climbing out of ``trusted``.
    Percent-encoded dots (``%2e``) count as dots, since servers decode them; ``..`` above the
    root stays at the root, as URL resolution does.
    """
    leading = "/" if path.startswith("/") else ""
    kept: list[str] = []
    for segment in _ENCODED_DOT.sub(".", path).split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    trailing = "/" if path.endswith("/") and kept else ""
    return leading + "/".join(kept) + trailing


def normalise_uri_path(uri: str) -> str:
    """``uri`` with the dot segments of its path resolved (scheme and authority kept)."""
    scheme_end = uri.find("://")
    start = scheme_end + 3 if scheme_end != -1 else 0
    slash = uri.find("/", start)
    if slash == -1:
        return uri
    head, path = uri[:slash], uri[slash:]
    cut = min((i for i in (path.find("?"), path.find("#")) if i != -1), default=len(path))
    return head + remove_dot_segments(path[:cut]) + path[cut:]


def normalise_source_uri(uri: str) -> str:
    """``git+https://github.com/o/r.git@refs/heads/main`` → ``github.com/o/r``.

    Provenance writers spell one repository many ways (scheme, ``git+`` prefix, ``.git``
    suffix, a ref or commit after ``@``); trust is about the repository, so those are dropped.
    Dot segments are resolved (see :func:`remove_dot_segments`).
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
    path = remove_dot_segments(path).rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}{slash}{path}" if path else host.lower()
