"""Version orders: Debian's checked against dpkg itself, the others against their specs' examples."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess

import pytest

import realdebian
from chainproof.vuln import ecosystems, versions
from chainproof.vuln.versions import IncomparableVersion, VersionOrder


def _sign(order: VersionOrder, a: str, b: str) -> int:
    ka, kb = order.key(a), order.key(b)
    return -1 if ka < kb else (1 if kb < ka else 0)


def _installed_versions() -> list[str]:
    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query is not installed: this check needs a Debian machine")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}\n"], capture_output=True, check=True, text=True
    ).stdout
    return sorted({v for v in out.split() if v})


def test_dpkg_order_agrees_with_dpkg_on_thousands_of_real_pairs() -> None:
    installed = _installed_versions()
    assert len(installed) >= 50
    rng = random.Random(20261201)
    pairs: set[tuple[str, str]] = set()
    # Neighbours in text order share prefixes (1.2-3 vs 1.2-3+deb12u1, 1:… vs 2:…): the
    # places where a wrong tilde, epoch or revision rule shows; random pairs cover the rest.
    for a, b in itertools.pairwise(installed):
        pairs.add((a, b))
        pairs.add((b, a))
    while len(pairs) < 2_500:
        pairs.add((rng.choice(installed), rng.choice(installed)))
    ordered = sorted(pairs)
    expected = realdebian.dpkg_compare_many(ordered)
    order = versions.dpkg()
    disagreements = [
        (a, b, want, _sign(order, a, b))
        for (a, b), want in zip(ordered, expected, strict=True)
        if want is not None and _sign(order, a, b) != want
    ]
    assert sum(w is not None for w in expected) >= 2_400
    assert disagreements == []


def test_dpkg_tilde_epoch_and_revision_rules_agree_with_dpkg() -> None:
    tricky = [
        ("1.0~rc1", "1.0"),
        ("1.0~~", "1.0~"),
        ("1.0", "1.0+b1"),
        ("1:0.1", "2.0"),
        ("2.36-9", "2.36-9+deb12u4"),
        ("2.36-9+deb12u4", "2.36-9+deb12u14"),
        ("1.0-1", "1.0.0-1"),
        ("0:1.0", "1.0"),
        ("1.2a", "1.2+"),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12"),
    ]
    expected = realdebian.dpkg_compare_many(tricky)
    order = versions.dpkg()
    assert [_sign(order, a, b) for a, b in tricky] == expected


@pytest.mark.parametrize(
    ("ecosystem", "ascending"),
    [
        # PEP 440's own ordering example (dev < pre < final < post).
        (
            "PyPI",
            [
                "1.0.dev456",
                "1.0a1",
                "1.0a2.dev456",
                "1.0a12",
                "1.0b1",
                "1.0rc1",
                "1.0",
                "1.0.post456",
                "1.1",
            ],
        ),
        # SemVer 2.0, section 11.
        (
            "npm",
            [
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
            ],
        ),
        ("crates.io", ["0.9.9", "1.0.0-rc.1", "1.0.0", "1.10.0"]),
        # Maven ComparableVersion: qualifiers alpha < beta < milestone < rc < snapshot < release < sp.
        (
            "Maven",
            [
                "1.0-alpha-1",
                "1.0-beta-1",
                "1.0-milestone-1",
                "1.0-rc-1",
                "1.0-SNAPSHOT",
                "1.0",
                "1.0-sp-1",
                "1.0.1",
            ],
        ),
        # Go modules: pseudo-versions sort before the release they precede; "v" is optional.
        ("Go", ["v0.0.0-20200101000000-abcdefabcdef", "0.3.2", "v0.3.3-pre", "v0.3.3", "0.3.10"]),
        # RubyGems: a letter makes a prerelease.
        ("RubyGems", ["3.0.0.rc1", "3.0.0", "3.0.21", "4.0.1"]),
        ("NuGet", ["1.0.0-alpha", "1.0.0-beta", "1.0.0", "1.0.0.1", "1.0.1"]),
        ("Packagist", ["1.0.0-alpha", "1.0.0-beta", "1.0.0-RC1", "1.0.0", "1.0.1"]),
        ("Alpine", ["1.2.3_alpha", "1.2.3_rc1", "1.2.3", "1.2.3-r1", "1.2.3_p1", "1.2.4"]),
        ("Red Hat", ["1.0~rc1-1", "1.0-1", "1.0-1.el8", "1.0-2", "1:0.5-1"]),
        ("Debian", ["1.0~rc1-1", "1.0-1", "1.0-1+b1", "1.0-1+deb12u1", "1:0.5-1"]),
    ],
)
def test_each_ecosystem_orders_its_own_examples(ecosystem: str, ascending: list[str]) -> None:
    eco = ecosystems.lookup(ecosystem)
    assert eco is not None
    order = eco.order_factory()
    for lower, higher in itertools.pairwise(ascending):
        assert _sign(order, lower, higher) == -1, (lower, higher)
        assert _sign(order, higher, lower) == 1, (higher, lower)


def test_go_v_prefix_names_the_same_version() -> None:
    assert _sign(versions.go_modules(), "v1.2.3", "1.2.3") == 0
    assert _sign(versions.semver(), "v1.2.3", "1.2.3") == 0


@pytest.mark.parametrize(
    ("factory", "bad"),
    [
        (versions.dpkg, "abc!"),
        (versions.dpkg, ""),
        (versions.pep440, "not a version"),
        (versions.apk, "bad..x"),
        (versions.semver, "1.2.3 beta"),
    ],
)
def test_unreadable_versions_raise_with_what_was_expected(factory, bad: str) -> None:  # type: ignore[no-untyped-def]
    order = factory()
    with pytest.raises(IncomparableVersion) as caught:
        order.key(bad)
    assert order.name in str(caught.value) and "expected" in str(caught.value)
    with pytest.raises(IncomparableVersion):
        order.key(bad)  # the cached failure raises again, it is never a silent pass


def test_ecosystem_suffixes_and_purl_types() -> None:
    assert ecosystems.split_ecosystem("Debian:12") == ("Debian", "12")
    assert ecosystems.split_ecosystem("Maven:https://maven.google.com") == (
        "Maven",
        "https://maven.google.com",
    )
    assert ecosystems.split_ecosystem("npm") == ("npm", None)
    assert ecosystems.from_purl_type("deb", "debian") == "Debian"
    assert ecosystems.from_purl_type("deb", "ubuntu") == "Ubuntu"
    assert ecosystems.from_purl_type("rpm", "rocky") == "Rocky Linux"
    assert ecosystems.from_purl_type("golang", None) == "Go"
    assert ecosystems.from_purl_type("swift", None) is None
    assert ecosystems.release_of_distro("Debian", "debian-12") == "12"
    assert ecosystems.release_of_distro("Alpine", "alpine-3.18.4") == "v3.18"
    assert ecosystems.lookup("pypi") is ecosystems.lookup("PyPI")
    pypi = ecosystems.lookup("PyPI")
    assert pypi is not None and pypi.normalize("Zope.Interface_x") == "zope-interface-x"


def test_keys_that_are_values_order_exactly_as_their_univers_objects() -> None:
    """Where a key is the univers object's ``value`` (orders_by_value), every comparison
    agrees with the object's own, on real Debian versions and on generated ones of each
    ecosystem; an order with comparisons of its own (Alpine's) keeps its objects."""
    from univers import versions as uv

    rng = random.Random(13)
    generated = [
        f"{rng.randint(0, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        + rng.choice(["", "-1", "-rc.1", "-beta", "+b1", "~rc1", "-2+deb12u1"])
        for _ in range(150)
    ]
    real = _installed_versions()[:150]
    checked = 0
    for cls in (uv.DebianVersion, uv.RpmVersion, uv.PypiVersion, uv.SemverVersion,
                uv.MavenVersion, uv.GolangVersion, uv.RubygemsVersion, uv.NugetVersion):  # fmt: skip
        assert versions.orders_by_value(cls), cls
        texts = generated + (real if cls is uv.DebianVersion else [])
        objects = [cls(t) for t in texts if _readable(cls, t)]  # this ecosystem's syntax
        assert len(objects) > 30, cls
        for a, b in itertools.product(objects[:80], repeat=2):
            assert (a < b, a <= b, a == b, a > b, a >= b) == (
                a.value < b.value,
                a.value <= b.value,
                a.value == b.value,
                a.value > b.value,
                a.value >= b.value,
            ), (cls, a.string, b.string)
            checked += 1
    assert checked > 40_000
    assert not versions.orders_by_value(uv.AlpineLinuxVersion)
    assert not versions.orders_by_value(versions.PhpVersion)


def _readable(cls: type, text: str) -> bool:
    try:
        cls(text)
    except (ValueError, TypeError, IndexError, AttributeError):  # InvalidVersion is a ValueError
        return False
    return True
