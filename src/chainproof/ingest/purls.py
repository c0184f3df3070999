"""Package URLs: one canonical spelling, and the matching rule VEX scoping uses.

The vulnerability scanner (``vuln/``) and the "images containing X" query both compare purls
as strings, so every purl chainproof stores goes through :func:`canonical_purl` (parsed and
re-rendered by packageurl-python: type lower-cased, qualifiers sorted, parts percent-encoded
one way).
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
    return _parse(text).to_string()


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
