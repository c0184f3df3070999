"""Package URLs: one canonical spelling, and the matching rule VEX scoping uses.

The vulnerability scanner (``vuln/``) and the "images containing X" query both compare purls
as strings, so every purl chainproof stores goes through :func:`canonical_purl` (parsed and
re-rendered by packageurl-python: type lower-cased, qualifiers sorted, parts percent-encoded
one way).

packageurl-python costs about 25 µs a purl, a quarter of a 10,000-component SBOM's ingest.
:func:`_plain_canonical` spells the common, plain purls (lower-case type, path segments of
unreserved characters, simple qualifiers) itself, exactly as packageurl-python would — a
property test compares the two on generated purls — and hands everything else to the library.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from packageurl import PackageURL


class BadPurl(ValueError):
    """Not a package URL."""


@lru_cache(maxsize=65536)
def canonical_purl(text: str) -> str:
    """The canonical form of ``text``; BadPurl when it is not a purl."""
    plain = _plain_canonical(text)
    return plain if plain is not None else _parse(text).to_string()


# The plain subset. Types whose names packageurl-python rewrites beyond lower-casing (pub,
# hackage, mlflow), whose versions it lower-cases (oci, huggingface) or whose namespace it
# upper-cases (cpan) always take the library's path.
_PLAIN_TYPE = re.compile(r"[a-z][a-z0-9.-]*")
_LIBRARY_TYPES = frozenset({"pub", "hackage", "mlflow", "oci", "huggingface", "cpan"})
_LOWER_NAME = frozenset(
    {"bitbucket", "github", "pypi", "gitlab", "composer", "luarocks", "npm", "alpm", "apk"}
    | {"bitnami", "hex"}
)
_LOWER_NAMESPACE = frozenset(
    {"bitbucket", "github", "pypi", "gitlab", "composer", "luarocks", "qpkg", "alpm", "apk"}
    | {"hex"}
)
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
_LOWER_NAMESPACE_TEXT = re.compile(r"[a-z0-9._~/-]*")
_PATH_CHARS = re.compile(r"[A-Za-z0-9._~+:%@/-]+")
_VALUE_CHARS = re.compile(r"[A-Za-z0-9._~+:%@/-]+")
_OTHER_PATH_ESCAPE = re.compile(r"%(?!40|2[Bb]|3[Aa])")
_OTHER_VALUE_ESCAPE = re.compile(r"%(?!40|2[BbFf]|3[Aa])")
_QUALIFIER_KEY = re.compile(r"[a-z][a-z0-9._-]*")


def _spelled(part: str) -> str:
    """One component as packageurl-python writes it (decoded, then percent-encoded with ``/``
    and ``:`` kept), for the characters and escapes the plain patterns admit."""
    if _UNRESERVED.fullmatch(part):
        return part
    if "%" in part:
        part = (
            part.replace("%2b", "+")
            .replace("%2B", "+")
            .replace("%3a", ":")
            .replace("%3A", ":")
            .replace("%2f", "/")
            .replace("%2F", "/")
            .replace("%40", "@")
        )
    return part.replace("+", "%2B").replace("@", "%40")


def _plain_canonical(text: str) -> str | None:
    """The canonical form of a plain purl, or None when ``text`` is not one (the library
    decides then, including whether it is a purl at all)."""
    if not text.startswith("pkg:") or "#" in text:
        return None
    kind, slash, rest = text[4:].partition("/")
    if not slash or not _PLAIN_TYPE.fullmatch(kind) or kind in _LIBRARY_TYPES:
        return None
    path, question, query = rest.partition("?")
    if not _PATH_CHARS.fullmatch(path) or path.count("@") > 1:
        return None
    if "%" in path and _OTHER_PATH_ESCAPE.search(path):
        return None
    location, at, version = path.partition("@")
    if (at and not version) or not location or "//" in location:
        return None
    if location[0] == "/" or location[-1] == "/":
        return None
    spelled = _spelled(location)
    if ":" in spelled:
        return None  # a colon before the version: packageurl-python's URL split decides
    namespace, _, name = location.rpartition("/")
    # These types are lower-cased after percent-encoding (``%2B`` becomes ``%2b``): only
    # names without escapes are spelled here.
    if kind in _LOWER_NAME and (name != name.lower() or not _UNRESERVED.fullmatch(name)):
        return None
    if kind in _LOWER_NAMESPACE and not _LOWER_NAMESPACE_TEXT.fullmatch(namespace):
        return None
    if kind == "pypi" and "_" in name:
        return None
    out = "pkg:" + kind + "/" + spelled
    if version:
        out += "@" + _spelled(version)
    if question:
        if not query or "?" in query:
            return None
        pairs: dict[str, str] = {}
        for item in query.split("&"):
            key, equals, value = item.partition("=")
            if (
                not equals
                or key in pairs
                or not _QUALIFIER_KEY.fullmatch(key)
                or not _VALUE_CHARS.fullmatch(value)
                or ("%" in value and _OTHER_VALUE_ESCAPE.search(value))
            ):
                return None
            pairs[key] = _spelled(value)
        out += "?" + "&".join(f"{k}={pairs[k]}" for k in sorted(pairs))
    return out


@lru_cache(maxsize=65536)
def _parse(text: str) -> PackageURL:
    if not text.startswith("pkg:"):
        raise BadPurl(f"{text[:80]!r} is not a package URL (pkg:type/namespace/name@version)")
    try:
        return PackageURL.from_string(text)
    except ValueError as exc:
        raise BadPurl(f"{text[:80]!r} is not a valid package URL: {exc}") from None


def purl_or_none(text: str) -> str | None:
    try:
        return canonical_purl(text)
    except BadPurl:
        return None


def versionless(purl: str) -> str:
    """``pkg:type/ns/name`` of a canonical purl (no version, qualifiers or subpath)."""
    p = _parse(purl)
    return PackageURL(type=p.type, namespace=p.namespace, name=p.name).to_string()


def purl_version(purl: str) -> str:
    return _parse(purl).version or ""


def purl_matches(pattern: str, purl: str) -> bool:
    """Whether ``purl`` is the package ``pattern`` names.

    Type, namespace and name must be equal; a version in ``pattern`` must equal the purl's;
    each qualifier in ``pattern`` (``arch=x86_64``) must be present with the same value. A
    pattern without version or qualifiers names every version of the package.
    """
    try:
        a, b = _parse(pattern), _parse(purl)
    except BadPurl:
        return False
    if (a.type, a.namespace or "", a.name) != (b.type, b.namespace or "", b.name):
        return False
    if a.version and a.version != b.version:
        return False
    qa = a.qualifiers if isinstance(a.qualifiers, dict) else {}
    qb = b.qualifiers if isinstance(b.qualifiers, dict) else {}
    return all(qb.get(k) == v for k, v in qa.items())


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def note_id_for(prefix: str, key: str) -> str:
    """A Grafeas note ID for ``key`` (a purl, an advisory): readable, unique, within grammar."""
    slug = _UNSAFE.sub("-", key).strip("-")[:80] or "x"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{prefix}{slug}-{digest}"
