"""Matching packages to advisories: real Go vulndb records, a syft SBOM of a real Debian root
file system against advisories built from Debian's own changelogs, and the index's upkeep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import realdebian
from chainproof.vuln.match import AdvisoryIndex, keys_of
from chainproof.vuln.osv import parse_document, parse_record
from chainproof.vuln.packages import Package, package_from_fields

FIXTURES = Path(__file__).parents[2] / "fixtures" / "osv"


def _purl(purl: str, name: str = "", version: str = "") -> Package:
    return package_from_fields(name=name, version=version, purl=purl)


@pytest.fixture(scope="module")
def go_index() -> AdvisoryIndex:
    index = AdvisoryIndex()
    for path in realdebian.go_vulndb_files():
        for advisory in parse_document(path.read_bytes(), source=path.name):
            index.put(advisory)
    return index


def test_go_vulndb_matches_go_modules_by_purl(go_index: AdvisoryIndex) -> None:
    # GO-2020-0015: golang.org/x/text, introduced 0, fixed 0.3.3 (Go's own record).
    old = _purl("pkg:golang/golang.org/x/text@v0.3.2")
    fixed = _purl("pkg:golang/golang.org/x/text@v0.3.3")
    report = go_index.match([old, fixed])
    assert report.scanned == 2
    by_package: dict[str, set[str]] = {}
    for f in report.findings:
        by_package.setdefault(f.package.version, set()).add(f.advisory_id)
    assert "GO-2020-0015" in by_package["v0.3.2"]
    assert "GO-2020-0015" not in by_package.get("v0.3.3", set())
    [finding] = [f for f in report.findings if f.advisory_id == "GO-2020-0015" and f.package is old]
    assert finding.fixed_version == "0.3.3"
    assert finding.matched_name == "golang.org/x/text"


def test_go_vulndb_beego_major_version_modules_are_different_packages(
    go_index: AdvisoryIndex,
) -> None:
    v1 = _purl("pkg:golang/github.com/beego/beego@v1.12.8")
    v2 = _purl("pkg:golang/github.com/beego/beego/v2@v2.0.2")
    v2_fixed = _purl("pkg:golang/github.com/beego/beego/v2@v2.0.3")
    safe = _purl("pkg:golang/github.com/beego/beego@v1.12.9")
    report = go_index.match([v1, v2, safe, v2_fixed])
    ids = {(f.package.name, f.package.version, f.advisory_id) for f in report.findings}
    assert ("github.com/beego/beego", "v1.12.8", "GO-2022-0463") in ids
    assert ("github.com/beego/beego/v2", "v2.0.2", "GO-2022-0463") in ids
    for p in (safe, v2_fixed):
        assert not any(f.package is p and f.advisory_id == "GO-2022-0463" for f in report.findings)


def test_packages_that_cannot_be_matched_are_reported(go_index: AdvisoryIndex) -> None:
    no_purl = package_from_fields(name="mystery", version="1.0", purl=None)
    odd_type = _purl("pkg:swift/github.com/apple/swift-nio@2.0.0")
    bad_purl = package_from_fields(name="x", version="1", purl="not-a-purl")
    no_version = _purl("pkg:pypi/requests")
    bad_version = _purl("pkg:golang/golang.org/x/text@latest-and-greatest")
    report = go_index.match([no_purl, odd_type, bad_purl, no_version, bad_version])
    assert report.findings == []
    reasons = {u.package.name: u.reason for u in report.unknown}
    assert set(reasons) == {
        "mystery",
        "swift-nio",
        "x",
        "requests",
        "golang.org/x/text",
    }
    assert "ecosystem is unknown" in reasons["mystery"]
    assert "'swift'" in reasons["swift-nio"]
    assert "does not parse" in reasons["x"]
    assert "no version" in reasons["requests"]
    assert "not a Go module version" in reasons["golang.org/x/text"]


def test_ghsa_records_match_their_ecosystems() -> None:
    index = AdvisoryIndex()
    for path in FIXTURES.glob("*.osv.json"):
        index.put(parse_record(json.loads(path.read_text())))
    assert "GHSA-35c4-f3rq-f9g3" not in index  # withdrawn: never indexed
    report = index.match(
        [
            _purl("pkg:npm/mixin-deep@1.3.1"),
            _purl("pkg:npm/jquery@2.2.4"),
            _purl("pkg:maven/com.typesafe.akka/akka-actor_2.12@2.5.15"),
            _purl("pkg:maven/com.typesafe.akka/akka-actor_2.12@2.5.16"),
            _purl("pkg:gem/passenger@4.0.4"),
            _purl("pkg:gem/activesupport@4.2.1"),
        ]
    )
    hits = {(f.package.name, f.package.version): f.advisory_id for f in report.findings}
    assert hits == {
        ("mixin-deep", "1.3.1"): "GHSA-fhjf-83wg-r2j9",
        ("jquery", "2.2.4"): "GHSA-mhpp-875w-9cpv",
        ("com.typesafe.akka:akka-actor_2.12", "2.5.15"): "GHSA-mr95-9rr4-668f",
        ("passenger", "4.0.4"): "GHSA-9qj7-jvg4-qr2x",
    }


def _debian_record(osv_id: str, source: str, fixed: str, ecosystem: str = "Debian:12") -> dict:
    return {
        "id": osv_id,
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": source},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def test_distro_packages_match_through_their_source_package_and_release() -> None:
    index = AdvisoryIndex()
    index.put(parse_record(_debian_record("DEB-1", "glibc", "2.36-9+deb12u15")))
    index.put(parse_record(_debian_record("DEB-2", "glibc", "2.31-99", ecosystem="Debian:11")))
    # syft's purls: the source in "upstream", with its version when it differs (binNMU).
    libc = _purl(
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
        name="libc6",
        version="2.36-9+deb12u14",
    )
    report = index.match([libc])
    assert [(f.advisory_id, f.matched_name, f.fixed_version) for f in report.findings] == [
        ("DEB-1", "glibc", "2.36-9+deb12u15")
    ]
    index.put(parse_record(_debian_record("DEB-3", "bash", "5.2.15-3")))
    bash = _purl(
        "pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2"
    )
    [finding] = index.match([bash]).findings
    assert finding.matched_version == "5.2.15-2"  # the source version, not the binNMU's


def test_put_replaces_and_withdrawal_removes_and_caches_follow() -> None:
    index = AdvisoryIndex()
    pkg = _purl("pkg:pypi/Django@3.2.0")
    record = {
        "id": "PYSEC-TEST-1",
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "django"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.2.1"}]}
                ],
            }
        ],
    }
    touched = index.put(parse_record(record))
    assert touched == {("PyPI", "django")} == keys_of(parse_record(record))
    assert [f.fixed_version for f in index.match([pkg]).findings] == ["3.2.1"]
    record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "3.1.0"}  # type: ignore[index]
    index.put(parse_record(record))
    assert index.match([pkg]).findings == []  # the cached verdict died with the old copy
    record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "4.0"}  # type: ignore[index]
    index.put(parse_record(record))
    assert len(index.match([pkg]).findings) == 1
    index.put(parse_record({**record, "withdrawn": "2026-02-01T00:00:00Z"}))
    assert "PYSEC-TEST-1" not in index and index.match([pkg]).findings == []


@pytest.fixture(scope="module")
def debian_root() -> Path:
    return realdebian.debian_rootfs()


def test_syft_sbom_of_a_debian_root_against_debian_changelog_cve_fixes(
    debian_root: Path,
) -> None:
    """Advisories built from what Debian's changelogs say each upload fixed.

    For every (source package, CVE, fixing upload) a changelog names, the real installed
    package must not be affected (it is at or above the fix), and the same package at the
    upload before the fix must be — with dpkg itself as the judge of which is older.
    """
    packages = [
        package_from_fields(name=p["name"], version=p["version"], purl=p["purl"])
        for p in realdebian.sbom_packages(realdebian.syft_sbom(debian_root))
    ]
    debs = [p for p in packages if p.ecosystem == "Debian"]
    assert len(debs) >= 80
    fixes = realdebian.changelog_cve_fixes(debian_root)
    assert len(fixes) >= 50
    by_source: dict[str, list[Package]] = {}
    for p in debs:
        by_source.setdefault(p.source_name or p.name, []).append(p)
    usable = [f for f in fixes if f.source in by_source]
    assert len(usable) >= 50
    index = AdvisoryIndex()
    for n, fix in enumerate(usable):
        index.put(parse_record(_debian_record(f"DEBFIX-{n}-{fix.cve}", fix.source, fix.fixed)))
    report = index.match(debs)
    assert report.unknown == []
    # The installed versions are what dpkg says is at or above each fix.
    pairs = [
        (p.source_version or p.version, fix.fixed) for fix in usable for p in by_source[fix.source]
    ]
    verdicts = realdebian.dpkg_compare_many(pairs)
    expected_affected: set[tuple[str, str]] = set()
    i = 0
    for n, fix in enumerate(usable):
        for p in by_source[fix.source]:
            if verdicts[i] == -1:
                expected_affected.add((p.name, f"DEBFIX-{n}-{fix.cve}"))
            i += 1
    assert {(f.package.name, f.advisory_id) for f in report.findings} == expected_affected
    # Now the same packages one upload earlier, where the changelog names one.
    older = [(fix, p) for fix in usable if fix.previous for p in by_source[fix.source][:1]]
    truth = realdebian.dpkg_compare_many([(fix.previous or "", fix.fixed) for fix, _ in older])
    checked = 0
    for (fix, p), cmp in zip(older, truth, strict=True):
        if cmp is None:
            continue  # an upload from before today's version syntax; dpkg cannot judge it
        previous = Package(
            name=p.name,
            version=fix.previous or "",
            purl=p.purl,
            ecosystem="Debian",
            release="12",
            source_name=fix.source,
        )
        n = usable.index(fix)
        hit = any(
            f.advisory_id == f"DEBFIX-{n}-{fix.cve}" for f in index.match([previous]).findings
        )
        assert hit is (cmp == -1), (fix, cmp)
        checked += 1
    assert checked >= 40


def test_remembered_results_follow_every_change_like_a_fresh_index() -> None:
    """Per-package results are remembered; after records are replaced, narrowed and withdrawn
    the remembered index answers exactly as one built from scratch (real Go vulndb records,
    the module versions they name)."""
    advisories = [
        a
        for path in realdebian.go_vulndb_files()
        for a in parse_document(path.read_bytes(), source=path.name)
    ]
    packages = []
    for a in advisories:
        for entry in a.affected:
            if entry.package is None:
                continue
            versions = [e.version for r in entry.ranges for e in r.events] + list(entry.versions)
            for v in versions:
                if v and v != "0":
                    packages.append(_purl(f"pkg:golang/{entry.package.name}@v{v.lstrip('v')}"))
    assert len(packages) > 20
    remembered = AdvisoryIndex()
    for a in advisories:
        remembered.put(a)

    def answer(index: AdvisoryIndex) -> list[tuple[object, ...]]:
        report = index.match(packages)
        return [(f.advisory_id, f.package, f.fixed_version) for f in report.findings] + [
            (u.advisory_id, u.package, u.reason) for u in report.unknown
        ]

    before = answer(remembered)
    assert before and answer(remembered) == before  # the second answer comes from memory
    changed = []
    for i, a in enumerate(advisories[::2]):
        raw = json.loads(json.dumps(a.raw))
        raw["modified"] = "2030-01-01T00:00:00Z"
        if i % 3 == 0:
            raw["withdrawn"] = "2030-01-01T00:00:00Z"
        elif i % 3 == 1:
            for entry in raw.get("affected", []):
                entry["ranges"] = [
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.0.1"}]}
                ]
        changed.append(parse_record(raw))
    for a in changed:
        remembered.put(a)
    fresh = AdvisoryIndex()
    by_id = {a.id: a for a in advisories} | {a.id: a for a in changed}
    for a in by_id.values():
        fresh.put(a)
    after = answer(remembered)
    assert after == answer(fresh)
    assert after != before
