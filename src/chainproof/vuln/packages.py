"""The package side of matching: one installed package, as an SBOM describes it.

A :class:`Package` is read from what a Grafeas ``PackageOccurrence`` carries (name, version,
purl, architecture, CPE); the purl decides the ecosystem (``pkg:deb/debian/…`` → Debian),
the release (``distro=debian-12`` → ``12``) and, for distributions, the *source* package,
which is what OSV's Debian, Ubuntu, Alpine and RPM records name. syft writes the source as
the ``upstream`` qualifier, ``upstream=glibc`` or, when the source version differs from the
binary's (a binNMU such as ``5.2.15-2+b13``), ``upstream=bash@5.2.15-2``.

:meth:`Package.lookups` gives the ``(ecosystem, name, version)`` triples to look up: the
source package at its version first, then the binary's own name when it differs (some RPM
ecosystems name binary packages). A package whose purl is missing or whose type chainproof
has no ecosystem for has no lookups, and :attr:`Package.unscannable` says why, so matching
can report it instead of passing it silently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from packageurl import PackageURL

from chainproof.vuln import ecosystems


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    purl: str | None = None
    ecosystem: str | None = None
    release: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    architecture: str | None = None
    #: Why this package cannot be matched at all (no purl, unknown type, no version…).
    unscannable: str | None = None

    @property
    def display(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name

    def lookups(self) -> list[tuple[str, str, str]]:
        """``(ecosystem, normalised name, version)`` keys under which advisories may name it."""
        if self.unscannable or self.ecosystem is None:
            return []
        eco = ecosystems.lookup(self.ecosystem)
        if eco is None:
            return []
        out: list[tuple[str, str, str]] = []
        if eco.source_packages and self.source_name:
            out.append(
                (eco.name, eco.normalize(self.source_name), self.source_version or self.version)
            )
        own = (eco.name, eco.normalize(self.name), self.version)
        if own[:2] not in {o[:2] for o in out}:
            out.append(own)
        return out


@functools.lru_cache(maxsize=65_536)
def package_from_fields(
    *,
    name: str,
    version: str,
    purl: str | None,
    architecture: str | None = None,
    package_type: str | None = None,
) -> Package:
    """A package from a PackageOccurrence's fields; never raises (problems: ``unscannable``).

    Memoized: a fleet's SBOMs repeat the same packages, and purl parsing is the costly part.
    """
    if not purl:
        eco = ecosystems.from_purl_type(package_type, None) if package_type else None
        if eco is None:
            return Package(
                name=name,
                version=version,
                architecture=architecture,
                unscannable="no purl and no known package type: its ecosystem is unknown",
            )
        return _checked(
            Package(name=name, version=version, ecosystem=eco, architecture=architecture)
        )
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as exc:
        return Package(
            name=name,
            version=version,
            purl=purl,
            architecture=architecture,
            unscannable=f"purl {purl!r} does not parse ({exc})",
        )
    base = ecosystems.from_purl_type(parsed.type, parsed.namespace)
    if base is None:
        return Package(
            name=name or _osv_name("", parsed),
            version=version or (parsed.version or ""),
            purl=purl,
            architecture=architecture,
            unscannable=(
                f"purl type {parsed.type!r}"
                + (f" (namespace {parsed.namespace!r})" if parsed.namespace else "")
                + " has no ecosystem chainproof matches"
            ),
        )
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    source_name, source_version = _upstream(qualifiers.get("upstream"))
    return _checked(
        Package(
            name=_osv_name(base, parsed),
            version=version or (parsed.version or ""),
            purl=purl,
            ecosystem=base,
            release=ecosystems.release_of_distro(base, qualifiers.get("distro")),
            source_name=source_name,
            source_version=source_version,
            architecture=architecture or qualifiers.get("arch"),
        )
    )


def _checked(package: Package) -> Package:
    if not package.version:
        return Package(
            **{
                **{f: getattr(package, f) for f in Package.__slots__ if f != "unscannable"},
                "unscannable": "no version: nothing to compare",
            }
        )
    return package


def _osv_name(base: str, purl: PackageURL) -> str:
    """The package name the way OSV spells it in this ecosystem."""
    ns, name = purl.namespace, purl.name
    if base == "Maven" and ns:
        return f"{ns}:{name}"
    if base in ("Go", "Packagist") and ns:
        return f"{ns}/{name}"
    if base == "npm" and ns:
        return f"{ns}/{name}"  # scoped packages: @scope/name
    return name


def _upstream(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    name, sep, version = value.partition("@")
    name = name.strip()
    return (name or None), (version.strip() or None) if sep else None
