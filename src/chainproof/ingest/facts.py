"""Building Grafeas notes and occurrences (protobuf JSON mapping) from what converters read.

Converters say *what* they found (a package, a finding, a scan); this module says how Grafeas
v1 spells it, once, so that every format produces the same shape: the PACKAGE occurrence is
the contract the OSV scanner reads (name, version, purl, cpeUri, architecture, license,
location), and VULNERABILITY occurrences carry one package issue each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chainproof.domain.timestamps import parse_rfc3339, rfc3339
from chainproof.ingest.model import Conversion, IngestContext, ScanIdentity
from chainproof.ingest.purls import note_id_for

SEVERITIES = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_ADVISORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
_ARCHITECTURES = {"x86": "X86", "i386": "X86", "i686": "X86", "386": "X86"}
_ARCH64 = {"x86_64", "amd64", "x64", "arm64", "aarch64"}


def severity_name(value: Any) -> str:
    """Grafeas Severity for a scanner's word (``High``, ``medium``, ``negligible``, ``none``)."""
    word = str(value or "").strip().upper()
    if word in SEVERITIES:
        return word
    if word in ("NEGLIGIBLE", "NONE", "INFO", "INFORMATIONAL"):
        return "MINIMAL"
    if word in ("IMPORTANT",):
        return "HIGH"
    if word in ("MODERATE",):
        return "MEDIUM"
    return "SEVERITY_UNSPECIFIED"


def severity_from_score(score: float) -> str:
    """CVSS v3 qualitative rating of a base score."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "MINIMAL"


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time (with or without fraction, Z or offset, nanoseconds trimmed)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = parse_rfc3339(text.strip())
    except ValueError:
        return None
    if parsed.year < 1971:
        return None  # "0001-01-01": a tool's zero value, not a time
    return parsed


def advisory_note_id(advisory: str) -> str:
    return advisory if _ADVISORY_ID.fullmatch(advisory) else note_id_for("adv-", advisory)


def architecture(arch: str) -> str:
    word = arch.strip().lower()
    if word in _ARCH64:
        return "X64"
    return _ARCHITECTURES.get(word, "ARCHITECTURE_UNSPECIFIED")


@dataclass(slots=True)
class PackageFact:
    name: str
    version: str
    purl: str = ""  # canonical
    cpe: str = ""
    package_type: str = ""
    licenses: tuple[str, ...] = ()
    arch: str = ""
    locations: tuple[str, ...] = ()


@dataclass(slots=True)
class FindingFact:
    advisory: str
    package: str  # name
    version: str
    purl: str = ""
    package_type: str = ""
    cpe: str = ""
    severity: str = "SEVERITY_UNSPECIFIED"
    cvss_score: float = 0.0
    cvss_vector: str = ""
    cvss_version: str = ""  # "3" or "2"
    fixed_version: str = ""
    fix_available: bool = False
    title: str = ""
    description: str = ""
    urls: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _version(version: str) -> dict[str, Any]:
    # Grafeas Version: a full version string goes in fullName with kind NORMAL.
    return {"name": version, "kind": "NORMAL", "fullName": version} if version else {}


def _base_occurrence(ctx: IngestContext, conv: Conversion, note_id: str) -> dict[str, Any]:
    image = conv.subject or ctx.image
    occ: dict[str, Any] = {
        "resourceUri": image.canonical if image is not None else "",
        "noteName": f"projects/{ctx.project}/notes/{note_id}",
    }
    return occ


def add_package(conv: Conversion, ctx: IngestContext, pkg: PackageFact) -> None:
    # Once per component of an SBOM (10,000 in one ingest): each dict is built in its final
    # key order directly, without the temporary dicts that ``**`` spreading makes.
    name, purl, package_type = pkg.name, pkg.purl, pkg.package_type
    key = purl.split("@", 1)[0] if purl else f"{package_type}/{name}"
    note_id = note_id_for("pkg-", key)
    if note_id not in conv.notes:
        noted: dict[str, Any] = {"name": name}
        if package_type:
            noted["packageType"] = package_type
        conv.notes[note_id] = {"shortDescription": name, "package": noted}
    details: dict[str, Any] = {"name": name}
    if package_type:
        details["packageType"] = package_type
    if pkg.cpe:
        details["cpeUri"] = pkg.cpe
    if pkg.arch:
        details["architecture"] = architecture(pkg.arch)
    if pkg.licenses:
        details["license"] = {"expression": " AND ".join([_paren(x) for x in pkg.licenses])}
    if pkg.version:
        details["version"] = _version(pkg.version)
    # Grafeas v1 has no purl field. The purl is the package's identity, so it goes in the
    # identity slot of the first location (``location[0].cpeUri``), which
    # :func:`purl_of_package` reads back; further locations carry file paths (ADR 0080).
    found = pkg.locations
    if purl:
        first: dict[str, Any] = {"cpeUri": purl}
        if found:
            first["path"] = found[0]
        locations: list[dict[str, Any]] = [first]
        paths = found[1:16]
    else:
        locations = []
        paths = found[:16]
    if paths:
        locations.extend({"path": p} for p in paths)
    if locations:
        details["location"] = locations
    occ = _base_occurrence(ctx, conv, note_id)
    occ["kind"] = "PACKAGE"
    occ["package"] = details
    conv.occurrences.append(occ)


def _paren(expression: str) -> str:
    return f"({expression})" if (" OR " in expression or " AND " in expression) else expression


def add_finding(conv: Conversion, ctx: IngestContext, f: FindingFact) -> None:
    note_id = advisory_note_id(f.advisory)
    note = conv.notes.get(note_id)
    if note is None:
        note = {"shortDescription": f.title or f.advisory, "vulnerability": {"details": []}}
        if f.description:
            note["longDescription"] = f.description[:8192]
        if f.urls:
            note["relatedUrl"] = [{"url": u} for u in f.urls[:32]]
        if f.aliases:
            note["relatedNoteNames"] = [
                f"projects/{ctx.project}/notes/{advisory_note_id(a)}" for a in f.aliases
            ]
        if f.severity != "SEVERITY_UNSPECIFIED":
            note["vulnerability"]["severity"] = f.severity
        if f.cvss_score:
            note["vulnerability"]["cvssScore"] = f.cvss_score
        conv.notes[note_id] = note
    note["vulnerability"]["details"].append(
        {
            "affectedCpeUri": f.cpe or f.purl or f.package,
            "affectedPackage": f.package,
            **({"affectedVersionStart": _version(f.version)} if f.version else {}),
            **({"fixedVersion": _version(f.fixed_version)} if f.fixed_version else {}),
            **({"packageType": f.package_type} if f.package_type else {}),
        }
    )
    issue: dict[str, Any] = {
        "affectedCpeUri": f.cpe or f.purl or f.package,
        "affectedPackage": f.package,
        "fixAvailable": f.fix_available,
    }
    if f.version:
        issue["affectedVersion"] = _version(f.version)
    if f.fixed_version:
        issue["fixedVersion"] = _version(f.fixed_version)
        issue["fixedPackage"] = f.package
        issue["fixedCpeUri"] = issue["affectedCpeUri"]
    if f.package_type:
        issue["packageType"] = f.package_type
    if f.severity != "SEVERITY_UNSPECIFIED":
        issue["effectiveSeverity"] = f.severity
    if f.locations:
        issue["fileLocation"] = [{"filePath": p} for p in f.locations[:16]]
    vuln: dict[str, Any] = {
        "packageIssue": [issue],
        "fixAvailable": f.fix_available,
    }
    if f.severity != "SEVERITY_UNSPECIFIED":
        vuln["severity"] = f.severity
        vuln["effectiveSeverity"] = f.severity
    if f.cvss_score:
        vuln["cvssScore"] = f.cvss_score
    if f.cvss_vector:
        # The vector is kept in extraDetails; Grafeas' CVSS messages want it taken apart.
        vuln["cvssVersion"] = "CVSS_VERSION_3" if f.cvss_version == "3" else "CVSS_VERSION_2"
    if f.title:
        vuln["shortDescription"] = f.title[:1024]
    if f.urls:
        vuln["relatedUrls"] = [{"url": u} for u in f.urls[:32]]
    extra = {"purl": f.purl, "vector": f.cvss_vector, "aliases": ",".join(f.aliases), **f.extra}
    vuln["extraDetails"] = ";".join(f"{k}={v}" for k, v in extra.items() if v)
    occ = _base_occurrence(ctx, conv, note_id)
    occ["kind"] = "VULNERABILITY"
    occ["vulnerability"] = vuln
    conv.occurrences.append(occ)


def add_discovery(conv: Conversion, ctx: IngestContext, scan: ScanIdentity) -> None:
    note_id = note_id_for("scanner-", scan.scanner)
    conv.notes.setdefault(
        note_id,
        {
            "shortDescription": f"{scan.scanner} vulnerability scans",
            "discovery": {"analysisKind": "VULNERABILITY"},
        },
    )
    details: dict[str, Any] = {"analysisStatus": "FINISHED_SUCCESS"}
    if scan.scanned_at is not None:
        details["lastScanTime"] = rfc3339(scan.scanned_at)
    occ = _base_occurrence(ctx, conv, note_id)
    occ["kind"] = "DISCOVERY"
    occ["discovery"] = details
    conv.occurrences.append(occ)
    conv.scan = scan


def add_sbom_reference(conv: Conversion, ctx: IngestContext, fmt: str, version: str) -> None:
    note_id = note_id_for("sbom-", f"{fmt}-{version}")
    conv.notes.setdefault(note_id, {"sbomReference": {"format": fmt, "version": version}})
    digest = ctx.document_digest.removeprefix("sha256:")
    occ = _base_occurrence(ctx, conv, note_id)
    occ["kind"] = "SBOM_REFERENCE"
    image = conv.subject or ctx.image
    occ["sbomReference"] = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": {
            "type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://bcid.corp.google.com/reference/v0.1",
            "subject": [
                {
                    "name": image.name if image is not None else "",
                    "digest": {"sha256": (image.digest or "").removeprefix("sha256:")}
                    if image is not None
                    else {},
                }
            ],
            "predicate": {
                "referrerId": "chainproof",
                "location": ctx.document_uri,
                "mimeType": fmt,
                "digest": {"sha256": digest},
            },
        },
    }
    conv.occurrences.append(occ)


def purl_of_package(details: dict[str, Any]) -> str:
    """The purl a PACKAGE occurrence (JSON ``package`` details) carries, or ""."""
    for loc in details.get("location") or ():
        uri = loc.get("cpeUri", "") if isinstance(loc, dict) else ""
        if isinstance(uri, str) and uri.startswith("pkg:"):
            return uri
    return ""
