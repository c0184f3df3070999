"""Parsing OSV records: real records from two publishers, and every way a record can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import realdebian
from chainproof.errors import InvalidArgument
from chainproof.vuln.osv import parse_document, parse_record

FIXTURES = Path(__file__).parents[2] / "fixtures" / "osv"


def _load(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return loaded


def test_every_ghsa_fixture_parses_with_its_ranges_kept_in_order() -> None:
    files = sorted(FIXTURES.glob("*.osv.json"))
    assert len(files) == 7
    for path in files:
        [advisory] = parse_document(path.read_bytes(), source=path.name)
        assert advisory.id.startswith("GHSA-")
        assert advisory.affected and advisory.affected[0].package is not None
    mixin = parse_record(_load("equals_with_patch.osv.json"))
    assert mixin.id == "GHSA-fhjf-83wg-r2j9"
    assert mixin.aliases == ("CVE-2019-10746",)
    assert mixin.modified == datetime(2021, 7, 27, 21, 26, 1, tzinfo=UTC)
    [entry] = mixin.affected
    assert entry.package is not None
    assert (entry.package.ecosystem, entry.package.name) == ("npm", "mixin-deep")
    [rng] = entry.ranges
    assert [(e.kind, e.version) for e in rng.events] == [
        ("introduced", "0"),
        ("introduced", "2.0.0"),
        ("fixed", "2.0.1"),
        ("fixed", "1.3.2"),
    ]
    assert mixin.fixed_versions() == ("2.0.1", "1.3.2")
    assert entry.database_specific["cwes"]  # kept as published


def test_withdrawn_record_is_read_as_withdrawn() -> None:
    advisory = parse_record(_load("withdrawn.osv.json"))
    assert advisory.is_withdrawn
    assert advisory.withdrawn == datetime(2018, 10, 11, 17, 29, 49, tzinfo=UTC)


def test_go_vulndb_records_from_debian_parse_including_module_arrays() -> None:
    files = realdebian.go_vulndb_files()
    assert len(files) >= 8
    ids: set[str] = set()
    for path in files:
        advisories = parse_document(path.read_bytes(), source=str(path))
        assert advisories
        for a in advisories:
            ids.add(a.id)
            assert a.id.startswith("GO-")
            assert all(p.ecosystem == "Go" for p in a.packages())
            assert a.raw["id"] == a.id
    assert {"GO-2020-0015", "GO-2022-0463"} <= ids
    beego = parse_document(
        (realdebian.go_vulndb_dir() / "client/testdata/vulndb/ID/GO-2022-0463.json").read_bytes()
    )[0]
    assert [p.name for p in beego.packages()] == [
        "github.com/beego/beego",
        "github.com/beego/beego/v2",
    ]
    assert beego.affected[0].ecosystem_specific["imports"][0]["path"] == "github.com/beego/beego"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": None}, "id: missing"),
        ({"id": "GHSA/../x"}, "id 'GHSA/../x': expected letters"),
        ({"modified": None}, "modified: missing"),
        ({"modified": "yesterday"}, "not an RFC 3339 time"),
        ({"aliases": "CVE-1"}, "aliases: expected a list of strings"),
        ({"affected": {"package": {}}}, "affected: expected a list"),
        ({"affected": [{"package": {"name": "x"}}]}, "affected[0].package.ecosystem: missing"),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}],
                    }
                ]
            },
            "no 'introduced' event",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [
                            {"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1.0"}]}
                        ],
                    }
                ]
            },
            "expected exactly one of introduced, fixed, last_affected, limit",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [
                            {
                                "type": "SEMVER",
                                "events": [
                                    {"introduced": "0"},
                                    {"fixed": "1.0.0"},
                                    {"last_affected": "0.9.0"},
                                ],
                            }
                        ],
                    }
                ]
            },
            "both 'fixed' and 'last_affected'",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [{"type": "GIT", "events": [{"introduced": "abc"}]}],
                    }
                ]
            },
            "repo: required for a GIT range",
        ),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "npm", "name": "x"},
                        "ranges": [{"type": "DATE", "events": [{"introduced": "0"}]}],
                    }
                ]
            },
            "type: 'DATE'; expected one of SEMVER, ECOSYSTEM, GIT",
        ),
        ({"severity": [{"type": "CVSS_V3"}]}, "severity[0]: expected"),
    ],
)
def test_bad_records_are_refused_naming_the_field(change: dict[str, object], expected: str) -> None:
    record = _load("npm_greater_than.osv.json")
    for key, value in change.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    with pytest.raises(InvalidArgument) as caught:
        parse_record(record)
    assert expected in str(caught.value)


def test_all_problems_of_a_record_are_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_record({"id": "", "affected": [{"package": 7}]})
    assert len(caught.value.details) >= 3


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{not json", "not JSON"),
        (b"42", "a JSON int; expected an OSV record"),
        (b"[1]", r"document\[0\]: a JSON int"),
    ],
)
def test_documents_that_are_not_records(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        parse_document(data)
