"""Version orders: each ecosystem's real "is u older than v", behind one small interface.

The orders themselves come from ``univers`` (Debian's dpkg algorithm with epochs and ``~``,
RPM's rpmvercmp, Alpine apk, PEP 440, SemVer 2.0, Maven's ComparableVersion, Go modules,
RubyGems, NuGet, Composer). This module only gives them one face, :class:`VersionOrder`, whose
:meth:`~VersionOrder.key` turns a version string into something ``<``/``==`` compare, and
turns univers' many failure modes into one :class:`IncomparableVersion` that says which
version, which order, and what the order expects. It never guesses a fallback order: a
version an ecosystem cannot read is reported by matching, never compared as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, cast

from univers import versions as uv


class IncomparableVersion(ValueError):
    """A version string that this order cannot read."""

    def __init__(self, version: str, order: str, expected: str) -> None:
        super().__init__(f"{version!r} is not a {order} version; expected {expected}")
        self.version = version
        self.order = order
        self.expected = expected


class Comparable(Protocol):
    def __lt__(self, other: object, /) -> bool: ...

    def __le__(self, other: object, /) -> bool: ...

    def __eq__(self, other: object, /) -> bool: ...


class VersionOrder(Protocol):
    """A total order on one ecosystem's version strings."""

    @property
    def name(self) -> str: ...

    def key(self, version: str) -> Comparable:
        """A comparable stand-in for ``version``; raises :class:`IncomparableVersion`."""
        ...


# A bound on the per-order parse cache: SBOMs of many images repeat the same few thousand
# versions, so parsing each once keeps matching linear in distinct versions, not packages.
_CACHE_LIMIT = 200_000


@dataclass(slots=True)
class UniversOrder:
    """An order backed by one ``univers`` version class, with a bounded parse cache."""

    name: str
    version_class: type[uv.Version] | type[PhpVersion]
    expected: str
    strip_v: bool = False
    _cache: dict[str, Comparable | IncomparableVersion] = field(default_factory=dict, repr=False)

    def key(self, version: str) -> Comparable:
        cached = self._cache.get(version)
        if cached is None:
            cached = self._parse(version)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[version] = cached
        if isinstance(cached, IncomparableVersion):
            raise cached
        return cached

    def _parse(self, version: str) -> Comparable | IncomparableVersion:
        text = version.strip()
        if self.strip_v and text[:1] in ("v", "V") and text[1:2].isdigit():
            text = text[1:]
        if not text or text != text.strip() or any(c.isspace() for c in text):
            return IncomparableVersion(version, self.name, self.expected)
        try:
            parsed = self.version_class(text)
        # univers raises InvalidVersion for most bad strings, but some classes let a
        # TypeError, ValueError or IndexError escape from their parsers on odd input.
        except (uv.InvalidVersion, TypeError, ValueError, IndexError, AttributeError):
            return IncomparableVersion(version, self.name, self.expected)
        if orders_by_value(self.version_class):
            # The same order without attrs' generated comparison around it (a tuple built
            # per operand, per comparison): 2-10x faster in the range walk.
            return cast(Comparable, cast(uv.Version, parsed).value)
        return cast(Comparable, parsed)


def orders_by_value(version_class: type) -> bool:
    """Whether ``version_class`` orders its instances exactly as their ``value`` attributes
    order: a univers Version subclass that keeps the base class's attrs-generated
    comparisons, with ``value`` the only field they compare. Then a key may be the value
    itself. (Alpine's class compares on its own, and keeps its objects as keys.)"""
    known = _BY_VALUE.get(version_class)
    if known is None:
        known = _BY_VALUE[version_class] = _compares_value_alone(version_class)
    return known


_BY_VALUE: dict[type, bool] = {}


def _compares_value_alone(version_class: type) -> bool:
    if not (isinstance(version_class, type) and issubclass(version_class, uv.Version)):
        return False
    methods = ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__hash__")
    if any(getattr(version_class, m) is not getattr(uv.Version, m) for m in methods):
        return False
    fields = getattr(version_class, "__attrs_attrs__", ())  # attrs' own field list
    return [f.name for f in fields if f.order or f.eq] == ["value"]


def dpkg() -> VersionOrder:
    return UniversOrder("Debian (dpkg)", uv.DebianVersion, "[epoch:]upstream[-revision]")


def rpm() -> VersionOrder:
    return UniversOrder("RPM", uv.RpmVersion, "[epoch:]version[-release]")


def apk() -> VersionOrder:
    return UniversOrder("Alpine apk", uv.AlpineLinuxVersion, "e.g. 1.2.3_rc1-r0")


def pep440() -> VersionOrder:
    return UniversOrder("PyPI (PEP 440)", uv.PypiVersion, "a PEP 440 version, e.g. 1.0rc1")


def semver() -> VersionOrder:
    return UniversOrder(
        "SemVer 2.0", uv.SemverVersion, "MAJOR.MINOR.PATCH[-pre][+build]", strip_v=True
    )


def maven() -> VersionOrder:
    return UniversOrder("Maven", uv.MavenVersion, "a Maven version, e.g. 2.5.16 or 1.0-SNAPSHOT")


def go_modules() -> VersionOrder:
    # Go module versions are SemVer with a "v" prefix (pseudo-versions included); OSV's Go
    # records drop the "v", SBOMs keep it: both spellings name the same version.
    return UniversOrder("Go module", uv.GolangVersion, "v1.2.3 or 1.2.3", strip_v=True)


def rubygems() -> VersionOrder:
    return UniversOrder("RubyGems", uv.RubygemsVersion, "a gem version, e.g. 4.0.5 or 3.0.0.rc1")


def nuget() -> VersionOrder:
    return UniversOrder("NuGet", uv.NugetVersion, "a NuGet version, e.g. 1.0.0-beta")


def composer() -> VersionOrder:
    # Hand-written on purpose: univers' ComposerVersion is its SemVer class with "v" stripped,
    # which puts 1.0.0-beta10 before 1.0.0-beta2 and 1.0.0-RC1 before 1.0.0-beta, unlike
    # Composer. Composer compares with PHP's version_compare(); PhpVersion is that algorithm.
    return UniversOrder(
        "Packagist (Composer)", PhpVersion, "e.g. 1.2.3, v2.3.0-beta2 or 1.0.0-RC1", strip_v=True
    )


# PHP's version_compare(): special words rank below numbers, except the patch-level words.
_PHP_WORDS = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "rc": 3, "#": 4, "pl": 5, "p": 5}
_PHP_SPLIT = re.compile(r"\d+|[^\d.]+")


class PhpVersion:
    """PHP's ``version_compare`` order, which Composer (Packagist) uses for versions.

    The string is cut into runs of digits and runs of other characters (``-``, ``_``, ``+``
    and ``.`` only separate). Numbers compare as numbers and rank where PHP's ``#`` does:
    above ``dev`` < ``alpha``/``a`` < ``beta``/``b`` < ``RC``/``rc``, below ``pl``/``p``; any
    other word ranks below ``dev``. A missing part compares as PHP does: ``1.0`` < ``1.0.1``,
    but ``1.0-beta`` < ``1.0`` because a word below ``#`` loses to the absence of a part.
    """

    __slots__ = ("_parts", "string")

    def __init__(self, string: str) -> None:
        text = string.replace("-", ".").replace("_", ".").replace("+", ".")
        parts = _PHP_SPLIT.findall(text)
        if not parts or not parts[0].isdigit() or not all(p.isascii() for p in parts):
            raise uv.InvalidVersion(f"{string!r} does not start with a number")
        self.string = string
        self._parts: tuple[tuple[int, int], ...] = tuple(
            (_PHP_WORDS["#"], int(p)) if p.isdigit() else (_PHP_WORDS.get(p.lower(), -1), 0)
            for p in parts
        )

    def _cmp(self, other: object) -> int:
        if not isinstance(other, PhpVersion):
            raise TypeError(f"cannot compare a PHP version with {type(other).__name__}")
        a, b = self._parts, other._parts
        for x, y in zip(a, b, strict=False):
            if x != y:
                return -1 if x < y else 1
        if len(a) == len(b):
            return 0
        # The longer one wins when its next part is a number or a patch word, else it loses.
        longer, sign = (a, 1) if len(a) > len(b) else (b, -1)
        nxt = longer[min(len(a), len(b))]
        return sign if nxt[0] >= _PHP_WORDS["#"] else -sign

    def __lt__(self, other: object) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: object) -> bool:
        return self._cmp(other) <= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhpVersion) and self._cmp(other) == 0

    def __hash__(self) -> int:
        return hash(self._parts)

    def __repr__(self) -> str:
        return f"PhpVersion({self.string!r})"
