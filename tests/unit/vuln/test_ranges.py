"""The OSV evaluation algorithm, on the schema's own examples, real records and random timelines."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.vuln import versions
from chainproof.vuln.osv import Affected, Event, PackageRef, Range, parse_record
from chainproof.vuln.ranges import compile_affected, evaluate

FIXTURES = Path(__file__).parents[2] / "fixtures" / "osv"
SEMVER = versions.semver()


def _entry(*events: tuple[str, str], versions_list: tuple[str, ...] = (), kind: str = "SEMVER"):
    return Affected(
        package=PackageRef("npm", "x"),
        ranges=(Range(kind, tuple(Event(k, v) for k, v in events)),),  # type: ignore[arg-type]
        versions=versions_list,
    )


def _status(version: str, entry: Affected, order: versions.VersionOrder = SEMVER) -> str:
    return evaluate(version, entry, order, SEMVER).status


def test_schema_examples() -> None:
    unfixed = _entry(("introduced", "0"))
    assert _status("0.0.1", unfixed) == "affected"
    assert _status("99.0.0", unfixed) == "affected"
    fixed = _entry(("introduced", "0"), ("fixed", "1.0.2"))
    assert _status("1.0.1", fixed) == "affected"
    assert _status("1.0.2", fixed) == "not_affected"
    multiple = _entry(
        ("introduced", "1.0.0"), ("fixed", "1.0.2"), ("introduced", "3.0.0"), ("fixed", "3.2.5")
    )
    assert [
        _status(v, multiple) for v in ("0.9.0", "1.0.0", "1.0.2", "2.0.0", "3.2.4", "3.2.5")
    ] == [
        "not_affected",
        "affected",
        "not_affected",
        "not_affected",
        "affected",
        "not_affected",
    ]
    last = _entry(("introduced", "0"), ("last_affected", "2.1.214"))
    assert _status("2.1.214", last) == "affected"
    assert _status("2.1.215", last) == "not_affected"


def test_fixed_version_is_the_first_fix_above_the_version() -> None:
    multiple = _entry(
        ("introduced", "3.0.0"), ("fixed", "3.2.5"), ("introduced", "1.0.0"), ("fixed", "1.0.2")
    )
    assert evaluate("1.0.1", multiple, SEMVER, SEMVER).fixed_version == "1.0.2"
    assert evaluate("3.1.0", multiple, SEMVER, SEMVER).fixed_version == "3.2.5"
    verdict = evaluate(
        "1.0.0", _entry(("introduced", "0"), ("last_affected", "1.5.0")), SEMVER, SEMVER
    )
    assert verdict.fixed_version is None and verdict.last_affected == "1.5.0"


def test_limit_events_bound_the_range() -> None:
    entry = _entry(("introduced", "1.0.0"), ("limit", "2.0.0"))
    assert _status("1.5.0", entry) == "affected"
    assert _status("2.0.0", entry) == "not_affected"
    star = _entry(("introduced", "1.0.0"), ("limit", "*"))
    assert _status("500.0.0", star) == "affected"


def test_versions_list_decides_for_git_ranges_and_git_alone_is_undecidable() -> None:
    git = Affected(
        package=PackageRef("OSS-Fuzz", "x"),
        ranges=(Range("GIT", (Event("introduced", "a" * 40),), repo="https://example.org/r"),),
        versions=("1.2.3",),
    )
    assert _status("1.2.3", git) == "affected"
    assert _status("1.2.4", git) == "not_affected"
    git_only = Affected(package=git.package, ranges=git.ranges)
    verdict = evaluate("1.2.3", git_only, SEMVER, SEMVER)
    assert verdict.status == "unknown"
    assert "GIT" in verdict.reason


def test_a_version_the_order_cannot_read_is_unknown_never_safe() -> None:
    entry = _entry(("introduced", "0"), ("fixed", "1.0.2"))
    verdict = evaluate("not a version!", entry, SEMVER, SEMVER)
    assert verdict.status == "unknown"
    assert "not a SemVer 2.0 version" in verdict.reason
    broken = _entry(("introduced", "0"), ("fixed", "1.0 final"), kind="ECOSYSTEM")
    verdict = evaluate("1.0.0", broken, versions.pep440(), SEMVER)
    assert verdict.status == "unknown" and "not comparable" in verdict.reason


def test_ecosystem_without_an_order_is_unknown_unless_listed() -> None:
    entry = Affected(
        package=PackageRef("Hackage", "x"),
        ranges=(Range("ECOSYSTEM", (Event("introduced", "0"),)),),
        versions=("1.0",),
    )
    assert evaluate("1.0", entry, None, SEMVER).status == "affected"
    assert evaluate("2.0", entry, None, SEMVER).status == "unknown"


def _fixture(name: str) -> Affected:
    return parse_record(json.loads((FIXTURES / name).read_text())).affected[0]


def test_unsorted_ghsa_timelines_are_sorted_before_the_walk() -> None:
    # mixin-deep: events as published are 0, 2.0.0, fixed 2.0.1, fixed 1.3.2 (unsorted).
    mixin = _fixture("equals_with_patch.osv.json")
    npm = versions.semver()
    got = {v: _status(v, mixin, npm) for v in ("1.3.1", "1.3.2", "1.9.0", "2.0.0", "2.0.1")}
    assert got == {
        "1.3.1": "affected",
        "1.3.2": "not_affected",
        "1.9.0": "not_affected",
        "2.0.0": "affected",
        "2.0.1": "not_affected",
    }
    passenger = _fixture("multiple_ranges_in_package.osv.json")
    gems = versions.rubygems()
    assert _status("3.0.20", passenger, gems) == "affected"
    assert _status("3.0.21", passenger, gems) == "not_affected"
    assert _status("4.0.4", passenger, gems) == "affected"
    assert _status("4.0.5", passenger, gems) == "not_affected"
    xwiki = _fixture("maven_greater_than.osv.json")
    maven = versions.maven()
    assert _status("11.6.0", xwiki, maven) == "not_affected"
    assert _status("11.6.1", xwiki, maven) == "affected"
    assert _status("12.6.7", xwiki, maven) == "not_affected"
    assert _status("12.10.1", xwiki, maven) == "affected"
    assert evaluate("12.10.1", xwiki, maven, SEMVER).fixed_version == "12.10.2"


def test_semver_prerelease_introduced_event() -> None:
    jquery = _fixture("npm_greater_than.osv.json")  # introduced 2.1.1-0, fixed 3.0.0
    npm = versions.semver()
    assert _status("2.1.0", jquery, npm) == "not_affected"
    assert _status("2.1.1-beta.1", jquery, npm) == "affected"
    assert _status("2.2.4", jquery, npm) == "affected"
    assert _status("3.0.0-rc1", jquery, npm) == "affected"
    assert _status("3.0.0", jquery, npm) == "not_affected"


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.integers(0, 60), min_size=1, max_size=10, unique=True),
    open_end=st.booleans(),
    inclusive=st.booleans(),
    shuffle=st.randoms(use_true_random=False),
)
def test_walk_agrees_with_an_interval_model(
    points: list[int], open_end: bool, inclusive: bool, shuffle: object
) -> None:
    """Any well-formed timeline, in any order, affects exactly the union of its intervals."""
    points.sort()
    if not open_end and len(points) % 2:
        points = points[:-1] or [points[0]]
    events: list[tuple[str, str]] = []
    intervals: list[tuple[int, int | None]] = []
    for i in range(0, len(points), 2):
        start = points[i]
        end = points[i + 1] if i + 1 < len(points) else None
        intervals.append((start, end))
        events.append(("introduced", f"{start}.0.0"))
        if end is not None:
            events.append(("last_affected" if inclusive else "fixed", f"{end}.0.0"))
    shuffle.shuffle(events)  # type: ignore[attr-defined]
    compiled = compile_affected(_entry(*events), SEMVER, SEMVER)
    for v in range(62):
        expected = any(
            s <= v and (e is None or (v <= e if inclusive else v < e)) for s, e in intervals
        )
        assert compiled.evaluate(f"{v}.0.0").affected is expected, (events, v)
