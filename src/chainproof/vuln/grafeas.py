"""OSV advisories and scanner findings in Grafeas' terms (protobuf JSON mapping, camelCase).

- :func:`advisory_note`: an advisory becomes a ``VULNERABILITY`` note in the provider project
  (``projects/osv/notes/GHSA-…``): severity and CVSS computed from its vectors, one
  ``details[]`` item per affected package with its fixed version, the advisory's
  ``modified`` as ``sourceUpdateTime`` and ``withdrawn`` as ``isObsolete``;
- :func:`finding_occurrence`: a finding becomes a ``VULNERABILITY`` occurrence on the image;
- :func:`discovery_occurrence`: a scan becomes a ``DISCOVERY`` occurrence dated at the match,
  under chainproof's own scanner note, so it never mixes with Trivy's or Grype's.

Grafeas requires ``affectedCpeUri`` on every package issue; OSV packages have no CPE, so the
package's CPE is used when its SBOM gave one, else its purl, else ``osv:<ecosystem>:<name>``.
These are plain dicts; the services parse them into messages with the domain's codec.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chainproof.domain.timestamps import rfc3339
from chainproof.vuln.match import Finding
from chainproof.vuln.osv import Advisory
from chainproof.vuln.severity import Score, advisory_score

SCANNER_NOTE_ID = "chainproof-scanner"
SCANNER_NAME = "chainproof"
_CVSS_VERSION = {"CVSS_V2": "CVSS_VERSION_2", "CVSS_V3": "CVSS_VERSION_3"}
_MAX_TEXT = 16_000
_MAX_URLS = 50


def _rfc3339(when: datetime) -> str:
    return rfc3339(when.astimezone(UTC))


def _cvss(score: Score) -> dict[str, Any]:
    if score.base_score is None or score.version is None:
        return {}
    out: dict[str, Any] = {"cvssScore": score.base_score}
    if score.version in _CVSS_VERSION:
        out["cvssVersion"] = _CVSS_VERSION[score.version]
    field = {"CVSS_V2": "cvssV2", "CVSS_V3": "cvssV3", "CVSS_V4": "cvssV4"}[score.version]
    out[field] = {"baseScore": score.base_score}
    return out


def advisory_note(advisory: Advisory) -> dict[str, Any]:
    """The ``VULNERABILITY`` note that stands for an advisory."""
    score = advisory_score(advisory)
    details = []
    for entry in advisory.affected:
        if entry.package is None:
            continue
        fixed = [
            e.version
            for r in entry.ranges
            if r.type != "GIT"
            for e in r.events
            if e.kind == "fixed"
        ]
        details.append(
            {
                "affectedCpeUri": entry.package.purl
                or f"osv:{entry.package.ecosystem}:{entry.package.name}",
                "affectedPackage": entry.package.name,
                "packageType": entry.package.ecosystem,
                "severityName": score.severity,
                "description": (advisory.summary or advisory.details)[:_MAX_TEXT],
                "fixedVersion": {"name": fixed[-1], "kind": "NORMAL"}
                if len(fixed) == 1
                else {"kind": "MAXIMUM"},
                "isObsolete": advisory.is_withdrawn,
                "sourceUpdateTime": _rfc3339(advisory.modified),
                "source": "osv",
            }
        )
    vulnerability: dict[str, Any] = {
        "severity": score.severity,
        "details": details,
        "sourceUpdateTime": _rfc3339(advisory.modified),
        **_cvss(score),
    }
    if advisory.published is not None:
        vulnerability["advisoryPublishTime"] = _rfc3339(advisory.published)
    urls = [
        {"url": r["url"], "label": str(r.get("type", ""))}
        for r in advisory.raw.get("references", []) or []
        if isinstance(r, dict) and isinstance(r.get("url"), str)
    ][:_MAX_URLS]
    return {
        "shortDescription": (advisory.summary or advisory.id)[:_MAX_TEXT],
        "longDescription": advisory.details[:_MAX_TEXT],
        "relatedUrl": urls,
        "relatedNoteNames": [],
        "vulnerability": vulnerability,
    }


def finding_occurrence(
    resource_uri: str,
    finding: Finding,
    advisory: Advisory,
    provider_project: str,
    cpe_uri: str | None = None,
) -> dict[str, Any]:
    """The ``VULNERABILITY`` occurrence of one finding on one image."""
    score = advisory_score(advisory)
    pkg = finding.package
    fixed = finding.fixed_version
    issue: dict[str, Any] = {
        "affectedCpeUri": cpe_uri or pkg.purl or f"osv:{finding.ecosystem}:{pkg.name}",
        "affectedPackage": pkg.name,
        "affectedVersion": {"name": pkg.version, "kind": "NORMAL"},
        "fixedVersion": {"name": fixed, "kind": "NORMAL"} if fixed else {"kind": "MAXIMUM"},
        "fixAvailable": fixed is not None,
        "packageType": finding.ecosystem,
        "effectiveSeverity": score.severity,
    }
    return {
        "resourceUri": resource_uri,
        "noteName": f"projects/{provider_project}/notes/{advisory.id}",
        "vulnerability": {
            "severity": score.severity,
            "effectiveSeverity": score.severity,
            "fixAvailable": fixed is not None,
            "shortDescription": (advisory.summary or advisory.id)[:_MAX_TEXT],
            "longDescription": finding.verdict.reason,
            "packageIssue": [issue],
            # key=value;… as SBOM ingestion writes it; the judge reads aliases from here so
            # that VEX and CVE lists apply to a finding filed under a GHSA or GO id.
            "extraDetails": ";".join(
                f"{k}={v}"
                for k, v in (("osv", advisory.id), ("aliases", ",".join(advisory.aliases)))
                if v
            ),
            **{k: v for k, v in _cvss(score).items() if k in ("cvssScore", "cvssVersion")},
        },
    }


def scanner_note() -> dict[str, Any]:
    return {
        "shortDescription": "chainproof's own vulnerability scanner (OSV advisories)",
        "discovery": {"analysisKind": "VULNERABILITY"},
    }


def discovery_occurrence(
    resource_uri: str, provider_project: str, now: datetime, *, problems: int = 0
) -> dict[str, Any]:
    """The ``DISCOVERY`` occurrence that dates a scan of an image at ``now``."""
    stamp = _rfc3339(now)
    return {
        "resourceUri": resource_uri,
        "noteName": f"projects/{provider_project}/notes/{SCANNER_NOTE_ID}",
        "discovery": {
            "continuousAnalysis": "ACTIVE",
            "analysisStatus": "FINISHED_SUCCESS",
            "analysisCompleted": {"analysisType": ["OSV"]},
            "lastScanTime": stamp,
            "lastVulnerabilityUpdateTime": stamp,
            **(
                {"analysisError": [{"code": 2, "message": f"{problems} packages not decidable"}]}
                if problems
                else {}
            ),
        },
    }
