"""CVSS scores computed from vectors, against scores NVD publishes for well-known CVEs."""

from __future__ import annotations

import pytest

from chainproof.vuln.osv import Affected, PackageRef, Severity, parse_record
from chainproof.vuln.severity import advisory_score, best_score, score_vector


@pytest.mark.parametrize(
    ("kind", "vector", "score", "severity"),
    [
        # CVE-2021-44228 (Log4Shell), NVD: 10.0 CRITICAL.
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"),
        # CVE-2014-0160 (Heartbleed), NVD v3.1: 7.5 HIGH; v2: 5.0 MEDIUM.
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "HIGH"),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0, "MEDIUM"),
        # The osv-schema's own CVSS_V4 example.
        (
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
            5.1,
            "MEDIUM",
        ),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "MINIMAL"),
    ],
)
def test_vectors_score_as_nvd_publishes(
    kind: str, vector: str, score: float, severity: str
) -> None:
    scored = score_vector(Severity(kind, vector))
    assert (scored.base_score, scored.severity, scored.version) == (score, severity, kind)


def test_bad_vectors_and_other_types_are_unspecified_with_a_reason() -> None:
    bad = score_vector(Severity("CVSS_V3", "CVSS:3.1/AV:X"))
    assert bad.severity == "SEVERITY_UNSPECIFIED" and "does not parse" in bad.problems[0]
    ubuntu = score_vector(Severity("Ubuntu", "high"))
    assert ubuntu.severity == "SEVERITY_UNSPECIFIED" and "not a CVSS vector" in ubuntu.problems[0]


def test_newest_cvss_version_wins_and_per_package_severity_is_a_fallback() -> None:
    both = best_score(
        [
            Severity("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C"),
            Severity("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"),
        ]
    )
    assert (both.version, both.base_score) == ("CVSS_V3", 7.5)
    record = parse_record(
        {
            "id": "X-1",
            "modified": "2026-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "npm", "name": "a"},
                    "severity": [
                        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}
                    ],
                }
            ],
        }
    )
    assert advisory_score(record).severity == "CRITICAL"
    none = parse_record({"id": "X-2", "modified": "2026-01-01T00:00:00Z"})
    assert advisory_score(none).severity == "SEVERITY_UNSPECIFIED"
    assert Affected(package=PackageRef("npm", "a")).severity == ()
