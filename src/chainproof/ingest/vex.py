"""VEX scoping: which finding a VEX statement speaks for (pure; used by ingest and the judge).

A statement names a *product* — an image (by digest) or a package (by purl) — and optionally
*subcomponents* of it (package purls). It applies to a finding only when

- the product is the finding's image (the digests are equal, and a repository, when the
  product names one, is the image's), or the product is a purl that the finding's package
  matches; and
- when subcomponents are listed, the finding's package matches one of them.

Digests are compared as parsed values, never as substrings of some serialised text: a product
``sha256:abc…`` never matches an image whose digest merely contains it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.ingest.model import VexScope
from chainproof.ingest.purls import BadPurl, _parse, canonical_purl, purl_matches

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{64}")


def product_identity(product: Any) -> str | None:
    """The canonical identity of an OpenVEX/CSAF product: image, ``sha256:…`` or purl."""
    hashes: dict[str, Any] = {}
    identifiers: dict[str, Any] = {}
    if isinstance(product, str):
        ident = product
    elif isinstance(product, dict):
        ident = str(product.get("@id") or "")
        if isinstance(product.get("hashes"), dict):
            hashes = product["hashes"]
        if isinstance(product.get("identifiers"), dict):
            identifiers = product["identifiers"]
    else:
        return None
    purl = identifiers.get("purl") if isinstance(identifiers.get("purl"), str) else ""
    for candidate in (str(ident), str(purl)):
        found = _identity_of(candidate.strip())
        if found is not None:
            return found
    sha = hashes.get("sha-256") or hashes.get("sha256")
    if isinstance(sha, str) and _HEX.fullmatch(sha.lower()):
        return f"sha256:{sha.lower()}"
    return None


def _identity_of(text: str) -> str | None:
    if not text:
        return None
    if text.startswith("pkg:"):
        try:
            purl = canonical_purl(text)
        except BadPurl:
            return None
        p = _parse(purl)
        if p.type == "oci":  # pkg:oci/name@sha256%3A… names an image by digest
            version = unquote(p.version or "")
            if not _DIGEST.fullmatch(version):
                return None
            repo = p.qualifiers.get("repository_url") if isinstance(p.qualifiers, dict) else None
            if repo:
                try:
                    return parse_image_reference(f"{repo}@{version}").canonical
                except InvalidArgument:
                    return None
            return version
        return purl
    if _DIGEST.fullmatch(text):
        return text
    try:
        ref = parse_image_reference(text)
    except InvalidArgument:
        return None
    return ref.canonical if ref.digest else None


def product_names_image(product: str, image: ImageReference) -> bool:
    """Whether a scope's product is this image (digest equal; repository equal when named)."""
    if not image.digest:
        return False
    if _DIGEST.fullmatch(product):
        return product == image.digest
    if product.startswith("pkg:"):
        return False
    try:
        ref = parse_image_reference(product)
    except InvalidArgument:
        return False
    return ref.digest == image.digest and ref.name == image.name


def scope_applies(scope: VexScope, image: ImageReference, package_purl: str) -> bool:
    """Whether a statement with ``scope`` speaks for a finding in ``package_purl`` on ``image``.

    ``package_purl`` is the finding's canonical purl ("" when the scanner gave none: then only
    a statement about the whole image, without subcomponents, can apply).
    """
    if scope.product.startswith("pkg:"):
        if not package_purl or not purl_matches(scope.product, package_purl):
            return False
    elif not product_names_image(scope.product, image):
        return False
    if not scope.subcomponents:
        return True
    return bool(package_purl) and any(purl_matches(s, package_purl) for s in scope.subcomponents)


def purl_is_package(purl: str, package: str) -> bool:
    """Whether the package ``purl`` names is ``package``, or was built from a source package of
    that name (syft's ``upstream=glibc`` or ``upstream=bash@5.2.15-2`` qualifier): a statement
    about a Debian source package speaks for the binary packages built from it."""
    if not purl or not package:
        return False
    try:
        parsed = _parse(purl)
    except BadPurl:
        return False
    if parsed.name == package:
        return True
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    return str(qualifiers.get("upstream", "")).split("@", 1)[0] == package
