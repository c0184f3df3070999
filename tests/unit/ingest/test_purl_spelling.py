"""The plain-purl fast path spells every purl it accepts exactly as packageurl-python does.

Generated purls mix the characters and escapes that change a purl's spelling (``+``, ``%2b``,
``%40``, ``:``, ``/``, upper case, empty qualifier values, repeated keys, types the library
treats specially); each one the fast path accepts must come out as the library writes it, and
one the library refuses must not be accepted.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from packageurl import PackageURL

from chainproof.ingest.purls import _plain_canonical, canonical_purl

# Mostly plain characters, so that most purls reach the fast path; the rest change spelling.
_PIECES = [*"abcxyz0189.-_" * 6, *"AZ~+:@/ ", "%40", "%2B", "%2b", "%3A", "%3a", "%2F", "%20"]
_PIECES += ["%zz", "%"]
_TYPES = ["deb", "rpm", "apk", "npm", "pypi", "maven", "golang", "github", "GitHub", "oci"]
_TYPES += ["pub", "cpan", "hackage", "generic", "cargo", "9x", "a_b", "composer", "hex"]

_PLAIN = [*"abcxyz0189.-_"]
plain = st.lists(st.sampled_from(_PLAIN), min_size=1, max_size=8).map("".join)
tricky = st.lists(st.sampled_from(_PIECES), min_size=0, max_size=8).map("".join)
part = st.one_of(plain, plain, plain, tricky)
keys = st.sampled_from(["arch", "distro", "upstream", "arch", "distro", "Arch", "1a", "a.b", ""])
qualifier = st.tuples(keys, part)


@st.composite
def purls(draw: st.DrawFn) -> str:
    text = "pkg:" + draw(st.sampled_from(_TYPES)) + "/"
    text += "/".join(draw(st.lists(part, min_size=1, max_size=3)))
    if draw(st.booleans()):
        text += "@" + draw(part)
    quals = draw(st.lists(qualifier, max_size=3))
    if quals or draw(st.integers(0, 9)) == 0:
        text += "?" + "&".join(f"{k}={v}" for k, v in quals)
    if draw(st.integers(0, 9)) == 0:
        text += "#" + draw(part)
    return text


def _library(text: str) -> str | None:
    try:
        return PackageURL.from_string(text).to_string()
    except ValueError:
        return None


@settings(max_examples=4000, deadline=None)
@given(purls())
def test_the_fast_path_spells_as_the_library(text: str) -> None:
    fast = _plain_canonical(text)
    if fast is not None:
        assert fast == _library(text), text


def test_seeded_purls_mostly_take_the_fast_path_and_spell_as_the_library() -> None:
    # The same alphabet, drawn from a seeded generator: the property above is about purls the
    # fast path really takes (most of these), and each one is checked again here.
    rng = random.Random(12)

    def draw_part() -> str:
        pieces = _PLAIN if rng.random() < 0.8 else _PIECES
        return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))

    taken = 0
    for _ in range(2000):
        text = f"pkg:{rng.choice(_TYPES)}/" + "/".join(
            draw_part() for _ in range(rng.randint(1, 3))
        )
        if rng.random() < 0.7:
            text += "@" + draw_part()
        if rng.random() < 0.5:
            text += "?" + "&".join(
                f"{rng.choice(['arch', 'distro', 'upstream'])}={draw_part()}"
                for _ in range(rng.randint(1, 3))
            )
        fast = _plain_canonical(text)
        if fast is not None:
            taken += 1
            assert fast == _library(text), text
    assert taken > 500


def test_the_fast_path_takes_the_common_purls() -> None:
    for text, expected in (
        (
            "pkg:deb/debian/libc6@2.36-9+deb12u4?distro=debian-12&arch=amd64&upstream=glibc",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
        ),
        ("pkg:npm/%40babel/core@7.0.0", "pkg:npm/%40babel/core@7.0.0"),
        ("pkg:golang/github.com/foo/bar@v1.2.3", "pkg:golang/github.com/foo/bar@v1.2.3"),
        ("pkg:deb/debian/a@1%2b2", "pkg:deb/debian/a@1%2B2"),
    ):
        assert _plain_canonical(text) == expected == _library(text)


def test_real_purls_of_the_fixtures_spell_the_same_both_ways() -> None:
    root = Path(__file__).resolve().parents[2] / "fixtures"
    found = set()
    for path in root.rglob("*.json"):
        found |= set(re.findall(r'"(pkg:[^"\\\\]+)"', path.read_text(errors="replace")))
    assert len(found) > 50
    # and every package installed on this machine, as syft names Debian packages
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for line in filter(None, listed):
        name, version, arch = line.split(" ")
        found.add(f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12")
    assert len(found) > 300
    for text in found:
        library = _library(text)
        if library is not None:
            assert canonical_purl(text) == library, text
