"""Grype JSON reports → a DISCOVERY occurrence and VULNERABILITY occurrences per match."""

from __future__ import annotations

from typing import Any

from chainproof.ingest import facts
from chainproof.ingest.jsonload import items, load_json, need_object, obj, text
from chainproof.ingest.model import Conversion, DocumentError, Format, IngestContext, ScanIdentity
from chainproof.ingest.purls import BadPurl, canonical_purl

FMT = "Grype JSON"


def looks_like(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "matches" in data
        and text(obj(data.get("descriptor")).get("name")) == "grype"
    )


def convert(raw: bytes, ctx: IngestContext) -> Conversion:
    return convert_document(need_object(FMT, load_json(FMT, raw)), ctx)


def convert_document(doc: dict[str, Any], ctx: IngestContext) -> Conversion:
    matches = doc.get("matches")
    if not isinstance(matches, list):
        raise DocumentError(FMT, "matches", "expected a list of matches")
    desc = obj(doc.get("descriptor"))
    if text(desc.get("name")) != "grype":
        raise DocumentError(FMT, "descriptor.name", f'expected "grype", got {desc.get("name")!r}')
    conv = Conversion(Format.GRYPE_JSON, text(desc.get("version")), subject=ctx.image)
    facts.add_discovery(
        conv,
        ctx,
        ScanIdentity("grype", text(desc.get("version")), facts.parse_time(desc.get("timestamp"))),
    )
    seen: set[tuple[str, str, str]] = set()
    for i, m in enumerate(matches):
        path = f"matches[{i}]"
        if not isinstance(m, dict):
            conv.warn(path, "not a JSON object; skipped")
            continue
        vuln, art = obj(m.get("vulnerability")), obj(m.get("artifact"))
        vid, name, version = text(vuln.get("id")), text(art.get("name")), text(art.get("version"))
        if not vid or not name:
            conv.warn(path, "match has no vulnerability id or artifact name; skipped")
            continue
        if not version:
            conv.warn(path, f"{vid} in {name} has no version; skipped")
            continue
        purl = ""
        if text(art.get("purl")):
            try:
                purl = canonical_purl(text(art.get("purl")))
            except BadPurl as exc:
                conv.warn(path, f"{exc}; skipped")
                continue
        key = (vid, purl or name, version)
        if key in seen:
            continue
        seen.add(key)
        fix = obj(vuln.get("fix"))
        fixed = [x for x in items(fix.get("versions")) if isinstance(x, str) and x]
        score, vector, cvss_version = 0.0, "", ""
        for c in items(vuln.get("cvss")):
            s = obj(obj(c).get("metrics")).get("baseScore")
            if isinstance(s, int | float) and not isinstance(s, bool) and s > score:
                score, vector = float(s), text(obj(c).get("vector"))
                cvss_version = "3" if text(obj(c).get("version")).startswith("3") else "2"
        cpes = [x for x in items(art.get("cpes")) if isinstance(x, str)]
        related = [text(obj(r).get("id")) for r in items(m.get("relatedVulnerabilities"))]
        facts.add_finding(
            conv,
            ctx,
            facts.FindingFact(
                advisory=vid,
                package=name,
                version=version,
                purl=purl,
                package_type=text(art.get("type")),
                cpe=cpes[0] if cpes else "",
                severity=facts.severity_name(vuln.get("severity")),
                cvss_score=score,
                cvss_vector=vector,
                cvss_version=cvss_version,
                fixed_version=fixed[0] if fixed else "",
                fix_available=text(fix.get("state")) == "fixed" and bool(fixed),
                description=text(vuln.get("description")),
                urls=tuple(u for u in items(vuln.get("urls")) if isinstance(u, str) and u),
                aliases=tuple(r for r in related if r and r != vid),
                locations=tuple(
                    text(obj(loc).get("path"))
                    for loc in items(art.get("locations"))
                    if text(obj(loc).get("path"))
                ),
            ),
        )
    return conv
