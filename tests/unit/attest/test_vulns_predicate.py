"""in-toto's vulns v0.1 predicate: what chainproof writes is what the judge reads back, and
both spellings the spec shows (the field list nests ``vulnerability``, the example does not)
are read."""

from __future__ import annotations

from datetime import UTC, datetime

from chainproof.attest.vuln_scan import (
    VULNS_V01,
    build_vulns_predicate,
    is_vuln_scan,
    read_vuln_scan,
)

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_written_and_read_back() -> None:
    predicate = build_vulns_predicate(
        scanner_uri="projects/osv/notes/chainproof-scanner",
        scanner_version="",
        scanned_at=WHEN,
        findings=[
            {"id": "CVE-2024-1", "severity": "LOW", "fixAvailable": True, "package": "zlib"},
            {"id": "GHSA-x", "severity": "MEDIUM", "fixAvailable": False, "package": ""},
        ],
    )
    assert is_vuln_scan(VULNS_V01)
    assert predicate["metadata"]["scanFinishedOn"] == "2026-11-30T12:00:00Z"
    assert predicate["scanner"]["db"]["lastUpdate"] == "2026-11-30T12:00:00Z"
    report = read_vuln_scan(predicate)
    assert report.problem is None and report.finished == WHEN
    assert [(f.cve, f.severity, f.fix_available, f.package) for f in report.findings] == [
        ("CVE-2024-1", "LOW", True, "zlib"),
        ("GHSA-x", "MEDIUM", False, None),
    ]


def test_an_empty_result_is_a_clean_scan_and_nested_findings_are_read() -> None:
    clean = build_vulns_predicate(
        scanner_uri="trivy", scanner_version="0.50", scanned_at=WHEN, findings=[]
    )
    assert read_vuln_scan(clean).findings == ()
    nested = {
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy",
            "result": [
                {"vulnerability": {"id": "CVE-1", "severity": [{"method": "nvd", "score": "9.8"}]}}
            ],
        },
        "metadata": {"scanFinishedOn": "2026-11-30T12:00:00Z"},
    }
    [finding] = read_vuln_scan(nested).findings
    assert finding.cve == "CVE-1" and finding.severity == "CRITICAL"
