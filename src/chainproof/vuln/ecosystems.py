"""The ecosystems chainproof matches: their OSV names, purl types, name rules and version order.

An OSV ecosystem string may carry a suffix (``Debian:12``, ``Alpine:v3.18``,
``Maven:https://maven.google.com``); :func:`split_ecosystem` separates the base from it, and the
base selects an :class:`Ecosystem`. The same ecosystem is reached from a package URL's type
(``pkg:deb/debian/…`` → Debian), so SBOM packages and advisories meet on one key:
``(base ecosystem, normalised name)``.

Distribution ecosystems (Debian, Ubuntu, Alpine, the RPM families) name *source* packages in
OSV; :attr:`Ecosystem.source_packages` says so, and :mod:`chainproof.vuln.packages` looks up a
binary package through the source package its purl names. Their suffix is a release; a
package and an advisory of two different releases never match (see :func:`same_release`).

An ecosystem that is not in :data:`ECOSYSTEMS` has no order chainproof trusts, so packages and
advisories in it are reported as "not comparable", never compared as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chainproof.vuln import versions
from chainproof.vuln.versions import VersionOrder


@dataclass(frozen=True, slots=True)
class Ecosystem:
    """One ecosystem: its OSV name, how names compare, and its version order."""

    name: str
    order_factory: Callable[[], VersionOrder]
    normalize: Callable[[str], str]
    #: OSV names the source package (distributions).
    source_packages: bool = False
    #: The suffix after ``:`` is a release (``Debian:12``), not a repository URL.
    suffix_is_release: bool = False


def _keep(name: str) -> str:
    return name


def _lower(name: str) -> str:
    return name.lower()


_PEP503 = re.compile(r"[-_.]+")


def _pypi(name: str) -> str:
    # PEP 503 normalisation, as OSV's PyPI records and pip both use.
    return _PEP503.sub("-", name).lower()


ECOSYSTEMS: dict[str, Ecosystem] = {
    e.name: e
    for e in (
        Ecosystem("Debian", versions.dpkg, _lower, source_packages=True, suffix_is_release=True),
        Ecosystem("Ubuntu", versions.dpkg, _lower, source_packages=True, suffix_is_release=True),
        Ecosystem("Alpine", versions.apk, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("Red Hat", versions.rpm, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("AlmaLinux", versions.rpm, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("Rocky Linux", versions.rpm, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("openSUSE", versions.rpm, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("SUSE", versions.rpm, _keep, source_packages=True, suffix_is_release=True),
        Ecosystem("PyPI", versions.pep440, _pypi),
        Ecosystem("npm", versions.semver, _keep),
        Ecosystem("Maven", versions.maven, _keep),
        Ecosystem("Go", versions.go_modules, _keep),
        Ecosystem("crates.io", versions.semver, _keep),
        Ecosystem("RubyGems", versions.rubygems, _keep),
        Ecosystem("NuGet", versions.nuget, _lower),
        Ecosystem("Packagist", versions.composer, _lower),
        Ecosystem("Hex", versions.semver, _keep),
        Ecosystem("Pub", versions.semver, _keep),
    )
}

_BY_LOWER = {name.lower(): e for name, e in ECOSYSTEMS.items()}

#: purl type (and, for distributions, namespace) → OSV base ecosystem.
PURL_TYPES: dict[str, str] = {
    "pypi": "PyPI",
    "npm": "npm",
    "maven": "Maven",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "apk": "Alpine",
}
_DEB_NAMESPACES = {"debian": "Debian", "ubuntu": "Ubuntu"}
_RPM_NAMESPACES = {
    "redhat": "Red Hat",
    "rhel": "Red Hat",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "opensuse": "openSUSE",
    "suse": "SUSE",
    "sles": "SUSE",
}


def split_ecosystem(ecosystem: str) -> tuple[str, str | None]:
    """``"Debian:12"`` → ``("Debian", "12")``; ``"npm"`` → ``("npm", None)``."""
    base, sep, suffix = ecosystem.partition(":")
    return base.strip(), (suffix.strip() or None) if sep else None


def lookup(base: str) -> Ecosystem | None:
    """The ecosystem of an OSV base name (case-insensitive), or None when unsupported."""
    return ECOSYSTEMS.get(base) or _BY_LOWER.get(base.lower())


def from_purl_type(purl_type: str, namespace: str | None) -> str | None:
    """The OSV base ecosystem of a package URL's type and namespace, or None."""
    t = purl_type.lower()
    if t == "deb":
        return _DEB_NAMESPACES.get((namespace or "").lower())
    if t == "rpm":
        return _RPM_NAMESPACES.get((namespace or "").lower())
    return PURL_TYPES.get(t)


def release_of_distro(base: str, distro: str | None) -> str | None:
    """The OSV release suffix named by a purl's ``distro`` qualifier, e.g. ``debian-12`` → ``12``.

    syft writes ``distro=debian-12`` and ``distro=alpine-3.18.4``; OSV scopes Alpine by branch
    (``v3.18``) and Debian by major release (``12``).
    """
    if not distro:
        return None
    _, _, tail = distro.rpartition("-")
    tail = tail.strip()
    if not tail or not tail[0].isdigit():
        return tail or None
    if base == "Alpine":
        parts = tail.split(".")
        return "v" + ".".join(parts[:2])
    if base in ("Debian",):
        return tail.split(".")[0]
    return tail


def same_release(advisory_release: str | None, package_release: str | None) -> bool:
    """Whether an advisory scoped to one release applies to a package of another.

    Unscoped on either side means "any release": an advisory for ``Debian`` applies to every
    Debian package, and a package whose SBOM names no release is checked against every
    release's advisory, which reports more rather than less.
    """
    if advisory_release is None or package_release is None:
        return True
    return advisory_release.lower() == package_release.lower()
