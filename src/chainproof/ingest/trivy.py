"""Trivy JSON reports (SchemaVersion 2) → a DISCOVERY occurrence and one VULNERABILITY
occurrence per (advisory, package) of the report; packages listed with ``--list-all-pkgs``
become PACKAGE occurrences too.
"""

from __future__ import annotations

from typing import Any

from chainproof.ingest import facts
from chainproof.ingest.jsonload import items, load_json, need_object, obj, text
from chainproof.ingest.model import Conversion, DocumentError, Format, IngestContext, ScanIdentity
from chainproof.ingest.purls import BadPurl, canonical_purl

FMT = "Trivy JSON"
MAX_FINDINGS = 200_000
# Trivy's statuses that mean a fixed version exists
_FIXED = frozenset({"fixed"})


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and "SchemaVersion" in data and "Results" in data


def convert(raw: bytes, ctx: IngestContext) -> Conversion:
    return convert_document(need_object(FMT, load_json(FMT, raw)), ctx)


def convert_document(doc: dict[str, Any], ctx: IngestContext) -> Conversion:
    if doc.get("SchemaVersion") != 2:
        raise DocumentError(FMT, "SchemaVersion", f"expected 2, got {doc.get('SchemaVersion')!r}")
    results = doc.get("Results", [])
    if not isinstance(results, list):
        raise DocumentError(FMT, "Results", "expected a list")
    conv = Conversion(Format.TRIVY_JSON, "2", subject=ctx.image)
    version = text(obj(doc.get("Trivy")).get("Version"))
    facts.add_discovery(
        conv, ctx, ScanIdentity("trivy", version, facts.parse_time(doc.get("CreatedAt")))
    )
    seen: set[tuple[str, str, str]] = set()
    count = 0
    for i, result in enumerate(results):
        rpath = f"Results[{i}]"
        if not isinstance(result, dict):
            conv.warn(rpath, "not a JSON object; skipped")
            continue
        rtype = text(result.get("Type"))
        for j, p in enumerate(items(result.get("Packages"))):
            pkg = _package(conv, f"{rpath}.Packages[{j}]", p, rtype)
            if pkg is not None:
                facts.add_package(conv, ctx, pkg)
        vulns = result.get("Vulnerabilities")
        if vulns is not None and not isinstance(vulns, list):
            conv.warn(f"{rpath}.Vulnerabilities", "not a list; skipped")
            continue
        for j, v in enumerate(vulns or []):
            count += 1
            if count > MAX_FINDINGS:
                raise DocumentError(FMT, rpath, f"more than {MAX_FINDINGS} findings")
            finding = _finding(conv, f"{rpath}.Vulnerabilities[{j}]", v, rtype, result)
            if finding is None:
                continue
            key = (finding.advisory, finding.purl or finding.package, finding.version)
            if key in seen:
                continue  # the same package found again in another file of the image
            seen.add(key)
            facts.add_finding(conv, ctx, finding)
    return conv


def _purl(conv: Conversion, path: str, item: dict[str, Any]) -> str | None:
    raw = text(obj(item.get("PkgIdentifier") or item.get("Identifier")).get("PURL"))
    if not raw:
        return ""
    try:
        return canonical_purl(raw)
    except BadPurl as exc:
        conv.warn(path, f"{exc}; skipped")
        return None


def _package(conv: Conversion, path: str, p: Any, rtype: str) -> facts.PackageFact | None:
    if not isinstance(p, dict):
        conv.warn(path, "not a JSON object; skipped")
        return None
    name, version = text(p.get("Name")), text(p.get("Version"))
    if not name or not version:
        conv.warn(
            path, f"package {name or '(no name)'} has no {'version' if name else 'name'}; skipped"
        )
        return None
    purl = _purl(conv, path, p)
    if purl is None:
        return None
    return facts.PackageFact(
        name=name,
        version=version,
        purl=purl,
        package_type=rtype,
        licenses=tuple(x for x in items(p.get("Licenses")) if isinstance(x, str) and x),
        arch=text(p.get("Arch")),
        locations=(text(p.get("FilePath")),) if text(p.get("FilePath")) else (),
    )


def _finding(
    conv: Conversion, path: str, v: Any, rtype: str, result: dict[str, Any]
) -> facts.FindingFact | None:
    if not isinstance(v, dict):
        conv.warn(path, "not a JSON object; skipped")
        return None
    vid, name = text(v.get("VulnerabilityID")), text(v.get("PkgName"))
    version = text(v.get("InstalledVersion"))
    if not vid or not name:
        conv.warn(path, "finding has no VulnerabilityID or PkgName; skipped")
        return None
    if not version:
        conv.warn(path, f"{vid} in {name} has no InstalledVersion; skipped")
        return None
    purl = _purl(conv, path, v)
    if purl is None:
        return None
    fixed = text(v.get("FixedVersion"))
    status = text(v.get("Status"))
    score, vector, cvss_version = _cvss(v)
    severity = facts.severity_name(v.get("Severity"))
    urls = [text(v.get("PrimaryURL"))] + [
        u for u in items(v.get("References")) if isinstance(u, str)
    ]
    aliases = tuple(a for a in items(v.get("VendorIDs")) if isinstance(a, str) and a)
    return facts.FindingFact(
        advisory=vid,
        package=name,
        version=version,
        purl=purl,
        package_type=rtype,
        severity=severity,
        cvss_score=score,
        cvss_vector=vector,
        cvss_version=cvss_version,
        fixed_version=fixed,
        fix_available=bool(fixed) and (status in _FIXED or not status),
        title=text(v.get("Title")),
        description=text(v.get("Description")),
        urls=tuple(dict.fromkeys(u for u in urls if u)),
        aliases=aliases,
        locations=(text(v.get("PkgPath")),) if text(v.get("PkgPath")) else (),
        extra={"status": status, "target": text(result.get("Target"))[:200]},
    )


def _cvss(v: dict[str, Any]) -> tuple[float, str, str]:
    cvss = obj(v.get("CVSS"))
    source = text(v.get("SeveritySource"))
    ordered = [source, "nvd", *cvss.keys()] if source else ["nvd", *cvss.keys()]
    for name in ordered:
        entry = obj(cvss.get(name))
        for key, vkey, ver in (("V3Score", "V3Vector", "3"), ("V2Score", "V2Vector", "2")):
            s = entry.get(key)
            if isinstance(s, int | float) and not isinstance(s, bool) and s > 0:
                return float(s), text(entry.get(vkey)), ver
    return 0.0, "", ""
