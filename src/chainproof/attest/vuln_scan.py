"""Vulnerability-scan predicates: what a signed scan says it found, and when it finished.

This module owns reading the predicate of a verified vulnerability-scan attestation:

* cosign's ``https://cosign.sigstore.dev/attestation/vuln/v1`` (``scanner.result`` holds the
  scanner's own report: Trivy's JSON report, ``Results[].Vulnerabilities[]``, as
  ``trivy --format cosign-vuln`` writes it, or Grype's JSON, ``matches[]``);
* in-toto's ``https://in-toto.io/attestation/vulns/v0.1`` (``scanner.result[]`` of ``id``,
  ``severity[{method, score}]``, ``annotations``).

A scan whose findings cannot be read is reported as such (``problem``), never as a scan that
found nothing: the caller must not count it as clean. Trust is not decided here — the
predicate has already been verified against the attestor's keys and the image's digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.attest.predicates import VULN_SCAN_INTOTO, predicate_kind
from chainproof.domain.timestamps import parse_rfc3339, rfc3339

__all__ = [
    "VULNS_V01",
    "ScanFinding",
    "ScanReport",
    "build_vulns_predicate",
    "is_vuln_scan",
    "read_vuln_scan",
]

#: in-toto's vulnerability predicate as chainproof writes it (``vouch --format in-toto-vulns``).
VULNS_V01 = VULN_SCAN_INTOTO + "/v0.1"

_SEVERITIES = {"MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
# Grype says "Negligible" where Grafeas says MINIMAL.
_ALIASES = {"NEGLIGIBLE": "MINIMAL", "MODERATE": "MEDIUM", "IMPORTANT": "HIGH"}


@dataclass(frozen=True, slots=True)
class ScanFinding:
    cve: str
    severity: str  # a Grafeas severity name, or SEVERITY_UNSPECIFIED when the scan gave none
    fix_available: bool
    package: str | None = None


@dataclass(frozen=True, slots=True)
class ScanReport:
    finished: datetime | None
    scanner: str
    findings: tuple[ScanFinding, ...] = ()
    problem: str | None = None  # why the findings cannot be read (then they are unknown)


def is_vuln_scan(predicate_type: str | None) -> bool:
    return predicate_kind(predicate_type or "") == "vulnerability-scan"


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def _severity(value: Any) -> str:
    name = str(value or "").strip().upper()
    name = _ALIASES.get(name, name)
    return name if name in _SEVERITIES else "SEVERITY_UNSPECIFIED"


def _from_score(score: Any) -> str:
    try:
        value = float(score)
    except (TypeError, ValueError):
        return _severity(score)
    # CVSS v3 qualitative rating scale.
    if value >= 9.0:
        return "CRITICAL"
    if value >= 7.0:
        return "HIGH"
    if value >= 4.0:
        return "MEDIUM"
    return "LOW" if value > 0 else "SEVERITY_UNSPECIFIED"


def _trivy(report: Mapping[str, Any]) -> tuple[ScanFinding, ...] | None:
    results = report.get("Results")
    if results is None:
        results = []
    if not isinstance(results, list):
        return None
    found: list[ScanFinding] = []
    for result in results:
        if not isinstance(result, Mapping):
            return None
        vulns = result.get("Vulnerabilities") or []
        if not isinstance(vulns, list):
            return None
        for v in vulns:
            if not isinstance(v, Mapping) or not isinstance(v.get("VulnerabilityID"), str):
                return None
            found.append(
                ScanFinding(
                    v["VulnerabilityID"],
                    _severity(v.get("Severity")),
                    bool(v.get("FixedVersion")),
                    str(v["PkgName"]) if v.get("PkgName") else None,
                )
            )
    return tuple(found)


def _grype(report: Mapping[str, Any]) -> tuple[ScanFinding, ...] | None:
    matches = report.get("matches")
    if not isinstance(matches, list):
        return None
    found: list[ScanFinding] = []
    for m in matches:
        vuln = m.get("vulnerability") if isinstance(m, Mapping) else None
        if not isinstance(vuln, Mapping) or not isinstance(vuln.get("id"), str):
            return None
        fix = vuln.get("fix")
        artifact = m.get("artifact")
        package = artifact.get("name") if isinstance(artifact, Mapping) else None
        found.append(
            ScanFinding(
                vuln["id"],
                _severity(vuln.get("severity")),
                isinstance(fix, Mapping) and fix.get("state") == "fixed",
                str(package) if package else None,
            )
        )
    return tuple(found)


def _intoto(results: list[Any]) -> tuple[ScanFinding, ...] | None:
    found: list[ScanFinding] = []
    for item in results:
        # The spec's field list nests each finding under ``vulnerability``; its example (and
        # most writers) put ``id`` and ``severity`` on the item itself. Both are read.
        if isinstance(item, Mapping) and isinstance(item.get("vulnerability"), Mapping):
            item = item["vulnerability"]
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            return None
        ratings = item.get("severity") or []
        severities = [_from_score(r.get("score")) for r in ratings if isinstance(r, Mapping)] or [
            "SEVERITY_UNSPECIFIED"
        ]
        # Several methods rate one finding: the worst rating is the one to judge by.
        order = ["SEVERITY_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
        worst = max(severities, key=order.index)
        annotations = item.get("annotations") or []
        fix = any(
            isinstance(a, Mapping)
            and (
                a.get("fixedInVersion")
                or a.get("fixed_in_version")
                or str(a.get("fixAvailable", "")).lower() == "true"
            )
            for a in annotations
        )
        package = next(
            (
                str(a["package"])
                for a in annotations
                if isinstance(a, Mapping) and isinstance(a.get("package"), str)
            ),
            None,
        )
        found.append(ScanFinding(item["id"], worst, fix, package))
    return tuple(found)


def read_vuln_scan(predicate: Mapping[str, Any]) -> ScanReport:
    """The findings and finish time of a vulnerability-scan predicate (see module docstring)."""
    scanner = predicate.get("scanner")
    scanner = scanner if isinstance(scanner, Mapping) else {}
    metadata = predicate.get("metadata")
    finished = _time(metadata.get("scanFinishedOn")) if isinstance(metadata, Mapping) else None
    name = str(scanner.get("uri") or "")
    result = scanner.get("result")
    findings: tuple[ScanFinding, ...] | None = None
    if isinstance(result, list):
        findings = _intoto(result)
    elif isinstance(result, Mapping):
        if "Results" in result or "SchemaVersion" in result:
            findings = _trivy(result)
        elif "matches" in result:
            findings = _grype(result)
    if findings is None:
        return ScanReport(
            finished,
            name,
            problem=(
                "the findings cannot be read: scanner.result is neither a Trivy report, a "
                "Grype report nor an in-toto vulns result list"
            ),
        )
    return ScanReport(finished, name, findings)


def build_vulns_predicate(
    *,
    scanner_uri: str,
    scanner_version: str,
    scanned_at: datetime,
    findings: Sequence[Mapping[str, Any]],
    db_uri: str = "",
) -> dict[str, Any]:
    """An in-toto ``vulns`` v0.1 predicate for a scan finished at ``scanned_at``.

    ``findings``: ``{"id", "severity" (a Grafeas severity name), "fixedVersion" or
    "fixAvailable", "package"}`` each. Severities are given as method ``grafeas`` (the rating
    chainproof judged by); a fix and the package go in ``annotations``. An empty list says
    the scan found nothing."""
    stamp = rfc3339(scanned_at)
    result = []
    for f in findings:
        annotations: list[dict[str, str]] = []
        if f.get("package"):
            annotations.append({"package": str(f["package"])})
        if f.get("fixedVersion"):
            annotations.append({"fixedInVersion": str(f["fixedVersion"])})
        elif f.get("fixAvailable"):
            annotations.append({"fixAvailable": "true"})
        result.append(
            {
                "id": str(f["id"]),
                "severity": [{"method": "grafeas", "score": str(f.get("severity") or "")}],
                **({"annotations": annotations} if annotations else {}),
            }
        )
    scanner: dict[str, Any] = {
        "uri": scanner_uri,
        "version": scanner_version,
        "db": {"uri": db_uri or scanner_uri, "lastUpdate": stamp},
        "result": result,
    }
    return {"scanner": scanner, "metadata": {"scanStartedOn": stamp, "scanFinishedOn": stamp}}
