"""The PACKAGE reduction (``package``, ``facts_of``) reads each field once and stops at the
first purl (ADR 0207); held here to the former spelling, kept as the oracle, on generated
packages: versions with and without fullName and revision, purls in a location, in the
package's cpeUri or only in the note ID, names empty or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.domain.image_summary import (
    TERM_NAME,
    TERM_PURL,
    Facts,
    Package,
    Term,
    facts_of,
    package,
)
from chainproof.domain.messages import OccurrencePB


def package_before(occurrence: Any, note_id: str) -> Package:
    p = occurrence.package
    version = p.version
    text = str(version.full_name or version.name)
    if version.revision and not version.full_name:
        text = f"{text}-{version.revision}"
    candidates = [str(loc.cpe_uri) for loc in p.location] + [str(p.cpe_uri), note_id]
    purl = next((c for c in candidates if c.startswith("pkg:")), "")
    return Package(str(p.name), text, purl, str(occurrence.name))


def facts_before(occurrence: Any, note_id: str) -> Facts:
    p = package_before(occurrence, note_id)
    pairs = {(TERM_NAME, p.name.lower())} if p.name else set()
    if p.purl:
        pairs.add((TERM_PURL, p.purl.lower()))
    return Facts(terms=tuple(Term(a, b, "PACKAGE", p.text) for a, b in sorted(pairs)))


words = st.sampled_from(["", "openssl", "Lib-X", "ÄÖ", "pkg:", "pkg:npm/a@1", "cpe:/a:x", " "])
uris = st.one_of(
    words, st.builds(lambda t, n: f"pkg:{t}/{n}", st.sampled_from(["npm", "Deb"]), words)
)


@settings(max_examples=400)
@given(
    name=words,
    full=words,
    vname=words,
    revision=words,
    locations=st.lists(st.tuples(uris, words), max_size=4),
    cpe=uris,
    note_id=uris,
)
def test_package_facts_as_before(
    name: str,
    full: str,
    vname: str,
    revision: str,
    locations: list[tuple[str, str]],
    cpe: str,
    note_id: str,
) -> None:
    occ: Any = OccurrencePB()
    occ.name = "projects/p/occurrences/o"
    p = occ.package
    p.name, p.cpe_uri = name, cpe
    p.version.full_name, p.version.name, p.version.revision = full, vname, revision
    for uri, path in locations:
        p.location.add(cpe_uri=uri, path=path)
    assert package(occ, note_id) == package_before(occ, note_id)
    assert facts_of("PACKAGE", "p", note_id, occ) == facts_before(occ, note_id)


def test_a_package_with_nothing_set() -> None:
    occ: Any = OccurrencePB()
    occ.package.SetInParent()
    assert package(occ, "n") == package_before(occ, "n") == Package("", "", "", "")
    assert facts_of("PACKAGE", "p", "n", occ) == Facts()
