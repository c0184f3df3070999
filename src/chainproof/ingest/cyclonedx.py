"""CycloneDX (JSON 1.4–1.7, and XML) → PACKAGE facts, an SBOM_REFERENCE, and, when the BOM has
a ``vulnerabilities`` section, findings (as Trivy writes) or VEX claims (``analysis``).

JSON is read directly: cyclonedx-python-lib's deserialiser takes about 7 s for 10,000
components here, against a budget of 1 s (ADR 0081). XML is parsed by cyclonedx-python-lib
(after defusedxml refuses entity tricks) and re-serialised to JSON, so both spellings go
through one reader.
"""

from __future__ import annotations

from typing import Any

from chainproof.ingest import facts
from chainproof.ingest.jsonload import items, load_json, need_object, obj, text
from chainproof.ingest.model import (
    Conversion,
    DocumentError,
    Format,
    IngestContext,
    ScanIdentity,
    VexClaim,
    VexScope,
)
from chainproof.ingest.purls import BadPurl, canonical_purl, note_id_for

SUPPORTED = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
MAX_COMPONENTS = 200_000

# CycloneDX analysis.state → Grafeas Assessment.State
_STATES = {
    "resolved": "FIXED",
    "resolved_with_pedigree": "FIXED",
    "exploitable": "AFFECTED",
    "in_triage": "UNDER_INVESTIGATION",
    "false_positive": "NOT_AFFECTED",
    "not_affected": "NOT_AFFECTED",
}
_JUSTIFICATIONS = {
    "code_not_present": "VULNERABLE_CODE_NOT_PRESENT",
    "code_not_reachable": "VULNERABLE_CODE_NOT_IN_EXECUTE_PATH",
    "requires_configuration": "VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY",
    "requires_dependency": "COMPONENT_NOT_PRESENT",
    "requires_environment": "VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY",
    "protected_by_compiler": "INLINE_MITIGATIONS_ALREADY_EXIST",
    "protected_at_runtime": "INLINE_MITIGATIONS_ALREADY_EXIST",
    "protected_at_perimeter": "INLINE_MITIGATIONS_ALREADY_EXIST",
    "protected_by_mitigating_control": "INLINE_MITIGATIONS_ALREADY_EXIST",
}


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and data.get("bomFormat") == "CycloneDX"


def convert_json(raw: bytes, ctx: IngestContext) -> Conversion:
    fmt = "CycloneDX JSON"
    doc = need_object(fmt, load_json(fmt, raw))
    return convert_document(doc, ctx, Format.CYCLONEDX_JSON)


def convert_xml(raw: bytes, ctx: IngestContext) -> Conversion:
    import json as _json

    from chainproof.ingest.cyclonedx_xml import xml_to_json

    doc = _json.loads(xml_to_json(raw))
    return convert_document(doc, ctx, Format.CYCLONEDX_XML)


def convert_document(doc: dict[str, Any], ctx: IngestContext, fmt: Format) -> Conversion:
    label = "CycloneDX"
    if doc.get("bomFormat") != "CycloneDX":
        raise DocumentError(
            label, "bomFormat", f'expected "CycloneDX", got {doc.get("bomFormat")!r}'
        )
    version = doc.get("specVersion")
    if not isinstance(version, str) or version not in SUPPORTED:
        raise DocumentError(
            label, "specVersion", f"{version!r} is not a supported version ({', '.join(SUPPORTED)})"
        )
    if "components" in doc and not isinstance(doc["components"], list):
        raise DocumentError(label, "components", "expected a list")
    if "vulnerabilities" in doc and not isinstance(doc["vulnerabilities"], list):
        raise DocumentError(label, "vulnerabilities", "expected a list")
    conv = Conversion(fmt, version, subject=ctx.image)
    by_ref: dict[str, facts.PackageFact] = {}
    flat = list(_walk(items(doc.get("components"))))
    if len(flat) > MAX_COMPONENTS:
        raise DocumentError(label, "components", f"more than {MAX_COMPONENTS} components")
    for path, comp in flat:
        pkg = _package(conv, path, comp)
        if pkg is None:
            continue
        ref = text(comp.get("bom-ref"))
        if ref:
            by_ref[ref] = pkg
        facts.add_package(conv, ctx, pkg)
    vulns = items(doc.get("vulnerabilities"))
    packages = len(conv.occurrences)
    if packages or not vulns:
        facts.add_sbom_reference(conv, ctx, "CycloneDX", version)
    if vulns:
        _vulnerabilities(conv, ctx, doc, vulns, by_ref)
    return conv


def _walk(components: list[Any], prefix: str = "components") -> Any:
    for i, comp in enumerate(components):
        path = f"{prefix}[{i}]"
        if not isinstance(comp, dict):
            yield path, comp
            continue
        yield path, comp
        nested = comp.get("components")
        if isinstance(nested, list):
            yield from _walk(nested, f"{path}.components")


def _package(conv: Conversion, path: str, comp: Any) -> facts.PackageFact | None:
    if not isinstance(comp, dict):
        conv.warn(path, "not a JSON object; skipped")
        return None
    kind = text(comp.get("type"))
    if kind in (
        "operating-system",
        "file",
        "container",
        "platform",
        "device",
        "firmware",
        "data",
        "machine-learning-model",
        "cryptographic-asset",
    ):
        return None  # not a package (Trivy lists the scanned lock file as an "application")
    name = text(comp.get("name"))
    if not name:
        conv.warn(path, "component has no name; skipped")
        return None
    raw_purl = text(comp.get("purl"))
    if kind == "application" and not raw_purl and not text(comp.get("version")):
        return None  # a container of packages (a lock file, a directory), not a package
    purl = ""
    if raw_purl:
        try:
            purl = canonical_purl(raw_purl)
        except BadPurl as exc:
            conv.warn(path, f"{exc}; skipped")
            return None
    version = text(comp.get("version"))
    if not version:
        conv.warn(path, f"component {name!r} has no version; skipped")
        return None
    group = text(comp.get("group"))
    full = f"{group}/{name}" if group and purl.startswith("pkg:maven") is False and group else name
    # Most components carry no properties: nothing is built for them (an SBOM has 10,000).
    listed = comp.get("properties")
    props = (
        {text(p.get("name")): text(p.get("value")) for p in listed if isinstance(p, dict)}
        if isinstance(listed, list) and listed
        else {}
    )
    arch = ""
    if purl and "arch=" in purl:
        arch = purl.split("arch=", 1)[1].split("&", 1)[0]
    locations = (
        tuple(v for k, v in props.items() if k.startswith("syft:location:") and k.endswith(":path"))
        if props
        else ()
    )
    return facts.PackageFact(
        name=full if group else name,
        version=version,
        purl=purl,
        cpe=text(comp.get("cpe")),
        package_type=purl[4:].split("/", 1)[0]
        if purl
        else (props.get("syft:package:type") or kind),
        licenses=_licenses(comp.get("licenses")),
        arch=arch,
        locations=locations,
    )


def _licenses(value: Any) -> tuple[str, ...]:
    out: list[str] = []
    for entry in items(value):
        if not isinstance(entry, dict):
            continue
        expr = text(entry.get("expression"))
        if expr:
            out.append(expr)
            continue
        lic = obj(entry.get("license"))
        name = text(lic.get("id")) or text(lic.get("name"))
        if name:
            out.append(name)
    return tuple(dict.fromkeys(out))


def _tool(doc: dict[str, Any]) -> tuple[str, str]:
    tools = obj(doc.get("metadata")).get("tools")
    candidates: list[Any] = []
    if isinstance(tools, list):
        candidates = tools
    elif isinstance(tools, dict):
        candidates = items(tools.get("components")) + items(tools.get("services"))
    for t in candidates:
        if isinstance(t, dict) and text(t.get("name")):
            return text(t.get("name")).lower(), text(t.get("version"))
    return "", ""


def _vulnerabilities(
    conv: Conversion,
    ctx: IngestContext,
    doc: dict[str, Any],
    vulns: list[Any],
    by_ref: dict[str, facts.PackageFact],
) -> None:
    # A BOM whose vulnerabilities carry an analysis is a VEX; otherwise it is a scan report.
    is_vex = any(
        isinstance(v, dict) and isinstance(v.get("analysis"), dict) and v["analysis"].get("state")
        for v in vulns
    )
    product = _product(doc, ctx)
    if not is_vex:
        scanner, version = _tool(doc)
        when = facts.parse_time(obj(doc.get("metadata")).get("timestamp"))
        facts.add_discovery(conv, ctx, ScanIdentity(scanner or "cyclonedx", version, when))
    seen: set[tuple[str, str, str]] = set()
    for i, v in enumerate(vulns):
        path = f"vulnerabilities[{i}]"
        if not isinstance(v, dict):
            conv.warn(path, "not a JSON object; skipped")
            continue
        vid = text(v.get("id"))
        if not vid:
            conv.warn(path, "vulnerability has no id; skipped")
            continue
        affects = [a for a in items(v.get("affects")) if isinstance(a, dict) and text(a.get("ref"))]
        if is_vex:
            _vex(conv, ctx, path, vid, v, affects, by_ref, product)
            continue
        if not affects:
            conv.warn(path, f"{vid} names no affected component; skipped")
            continue
        severity, score, vector, cvss_version = _rating(v)
        aliases = tuple(
            text(r.get("id"))
            for r in items(v.get("references"))
            if isinstance(r, dict) and text(r.get("id"))
        )
        for j, a in enumerate(affects):
            ref = text(a.get("ref"))
            pkg = by_ref.get(ref)
            if pkg is None:
                conv.warn(
                    f"{path}.affects[{j}]",
                    f"{vid} affects {ref!r}, which is not a component of the BOM; skipped",
                )
                continue
            key = (vid, pkg.purl or pkg.name, pkg.version)
            if key in seen:
                continue
            seen.add(key)
            fixed = _fixed_version(v)
            facts.add_finding(
                conv,
                ctx,
                facts.FindingFact(
                    advisory=vid,
                    package=pkg.name,
                    version=pkg.version,
                    purl=pkg.purl,
                    package_type=pkg.package_type,
                    cpe=pkg.cpe,
                    severity=severity,
                    cvss_score=score,
                    cvss_vector=vector,
                    cvss_version=cvss_version,
                    fixed_version=fixed,
                    fix_available=bool(fixed),
                    title=text(v.get("description"))[:200],
                    description=text(v.get("description")),
                    urls=tuple(
                        text(x.get("url"))
                        for x in items(v.get("advisories"))
                        if isinstance(x, dict) and text(x.get("url"))
                    ),
                    aliases=aliases,
                ),
            )


def _fixed_version(v: dict[str, Any]) -> str:
    # Trivy writes "Upgrade jquery to version 3.4.0" as the recommendation.
    rec = text(v.get("recommendation"))
    marker = " to version "
    if marker in rec:
        return rec.split(marker, 1)[1].split()[0].rstrip(",.;")
    return ""


def _rating(v: dict[str, Any]) -> tuple[str, float, str, str]:
    best_sev = "SEVERITY_UNSPECIFIED"
    score, vector, version = 0.0, "", ""
    for r in items(v.get("ratings")):
        if not isinstance(r, dict):
            continue
        sev = facts.severity_name(r.get("severity"))
        method = text(r.get("method")).upper()
        s = r.get("score")
        if (
            isinstance(s, int | float)
            and not isinstance(s, bool)
            and method.startswith("CVSSV3")
            and s > score
        ):
            score, vector, version = float(s), text(r.get("vector")), "3"
        if best_sev == "SEVERITY_UNSPECIFIED" and sev != "SEVERITY_UNSPECIFIED":
            best_sev = sev
    if best_sev == "SEVERITY_UNSPECIFIED" and score:
        best_sev = facts.severity_from_score(score)
    return best_sev, score, vector, version


def _product(doc: dict[str, Any], ctx: IngestContext) -> str:
    if ctx.image is not None and ctx.image.digest:
        return ctx.image.canonical
    comp = obj(obj(doc.get("metadata")).get("component"))
    purl = text(comp.get("purl"))
    try:
        return canonical_purl(purl) if purl else ""
    except BadPurl:
        return ""


def _vex(
    conv: Conversion,
    ctx: IngestContext,
    path: str,
    vid: str,
    v: dict[str, Any],
    affects: list[dict[str, Any]],
    by_ref: dict[str, facts.PackageFact],
    product: str,
) -> None:
    analysis = obj(v.get("analysis"))
    state = _STATES.get(text(analysis.get("state")))
    if state is None:
        conv.warn(
            path,
            f"{vid} has analysis state {analysis.get('state')!r}, not a CycloneDX state; skipped",
        )
        return
    if not product:
        conv.warn(
            path,
            f"{vid}: the BOM names no product (no image given, no metadata.component "
            "purl); skipped",
        )
        return
    subcomponents: list[str] = []
    for j, a in enumerate(affects):
        ref = text(a.get("ref"))
        pkg = by_ref.get(ref)
        if pkg is not None and pkg.purl:
            subcomponents.append(pkg.purl)
            continue
        try:
            subcomponents.append(canonical_purl(ref))
        except BadPurl:
            meta_ref = text(obj(obj(v.get("metadata")).get("component")).get("bom-ref"))
            if ref.endswith("#" + meta_ref) or ref == meta_ref or "#" in ref:
                continue  # a reference to the product itself (a BOM-Link): the whole product
            conv.warn(
                f"{path}.affects[{j}]",
                f"{ref!r} is neither a component with a purl nor a purl; skipped",
            )
    scope = VexScope(product, tuple(dict.fromkeys(subcomponents)))
    justification = _JUSTIFICATIONS.get(text(analysis.get("justification")), "")
    add_vex_claim(
        conv,
        ctx,
        VexClaim(
            vulnerability=vid,
            status=state,
            scope=scope,
            note_id=note_id_for("vex-", f"{ctx.document_digest}/{path}"),
            justification=justification,
            detail=text(analysis.get("detail")),
        ),
        publisher="",
    )


def add_vex_claim(conv: Conversion, ctx: IngestContext, claim: VexClaim, *, publisher: str) -> None:
    """A VULNERABILITY_ASSESSMENT note for one scoped statement (see ADR 0082)."""
    assessment: dict[str, Any] = {"vulnerabilityId": claim.vulnerability, "state": claim.status}
    if claim.justification or claim.detail:
        assessment["justification"] = {
            **({"justificationType": claim.justification} if claim.justification else {}),
            **({"details": claim.detail[:4096]} if claim.detail else {}),
        }
    if claim.detail:
        assessment["longDescription"] = claim.detail[:4096]
    conv.notes[claim.note_id] = {
        "shortDescription": f"{claim.vulnerability} {claim.status.lower()}",
        "vulnerabilityAssessment": {
            "title": f"{claim.vulnerability} in {claim.scope.product}",
            "languageCode": "en",
            **({"publisher": {"name": publisher}} if publisher else {}),
            "product": {
                "genericUri": claim.scope.product,
                "name": "\n".join(claim.scope.subcomponents)[:65536],
            },
            "assessment": assessment,
        },
    }
    conv.vex.append(claim)
