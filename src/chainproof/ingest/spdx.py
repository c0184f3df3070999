"""SPDX 2.2/2.3 (JSON, and tag-value) → PACKAGE facts and an SBOM_REFERENCE.

JSON is read directly: spdx-tools refuses real syft output whole (fractional seconds in
``created``, files without checksums — see ADR 0081), while ingest must skip a bad item and
keep the rest. Tag-value is parsed by spdx-tools, whose model is mapped onto the same reader.
"""

from __future__ import annotations

from typing import Any

from chainproof.ingest import facts
from chainproof.ingest.jsonload import check_size, items, load_json, need_object, text
from chainproof.ingest.model import Conversion, DocumentError, Format, IngestContext
from chainproof.ingest.purls import BadPurl, canonical_purl

SUPPORTED = ("SPDX-2.2", "SPDX-2.3")
MAX_PACKAGES = 200_000
_NO = frozenset({"", "NOASSERTION", "NONE"})


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("spdxVersion"), str)


def convert_json(raw: bytes, ctx: IngestContext) -> Conversion:
    doc = need_object("SPDX JSON", load_json("SPDX JSON", raw))
    return convert_document(doc, ctx, Format.SPDX_JSON)


def convert_document(doc: dict[str, Any], ctx: IngestContext, fmt: Format) -> Conversion:
    label = "SPDX"
    version = doc.get("spdxVersion")
    if version not in SUPPORTED:
        raise DocumentError(
            label, "spdxVersion", f"{version!r} is not one of {', '.join(SUPPORTED)}"
        )
    if text(doc.get("SPDXID")) != "SPDXRef-DOCUMENT":
        raise DocumentError(label, "SPDXID", 'expected "SPDXRef-DOCUMENT"')
    packages = doc.get("packages", [])
    if not isinstance(packages, list):
        raise DocumentError(label, "packages", "expected a list")
    if len(packages) > MAX_PACKAGES:
        raise DocumentError(label, "packages", f"more than {MAX_PACKAGES} packages")
    conv = Conversion(fmt, str(version).removeprefix("SPDX-"), subject=ctx.image)
    described = {x for x in items(doc.get("documentDescribes")) if isinstance(x, str)}
    for i, p in enumerate(packages):
        path = f"packages[{i}]"
        if not isinstance(p, dict):
            conv.warn(path, "not a JSON object; skipped")
            continue
        name = text(p.get("name")) or text(p.get("packageName"))
        if not name:
            conv.warn(path, "package has no name; skipped")
            continue
        purl, cpe = "", ""
        bad = False
        for ref in items(p.get("externalRefs")):
            if not isinstance(ref, dict):
                continue
            rtype, locator = text(ref.get("referenceType")), text(ref.get("referenceLocator"))
            if rtype == "purl" and not purl:
                try:
                    purl = canonical_purl(locator)
                except BadPurl as exc:
                    conv.warn(path, f"{exc}; skipped")
                    bad = True
                    break
            elif rtype in ("cpe23Type", "cpe22Type") and not cpe:
                cpe = locator
        if bad:
            continue
        version = text(p.get("versionInfo"))
        if not version:
            # The scanned thing itself (syft's directory or image root) is not a package.
            if text(p.get("SPDXID")) in described and text(p.get("primaryPackagePurpose")) in (
                "CONTAINER",
                "SOURCE",
                "FILE",
            ):
                continue
            conv.warn(path, f"package {name!r} has no versionInfo; skipped")
            continue
        licenses = tuple(
            x
            for x in (text(p.get("licenseConcluded")), text(p.get("licenseDeclared")))
            if x not in _NO
        )
        arch = purl.split("arch=", 1)[1].split("&", 1)[0] if "arch=" in purl else ""
        facts.add_package(
            conv,
            ctx,
            facts.PackageFact(
                name=name,
                version=version,
                purl=purl,
                cpe=cpe,
                package_type=purl[4:].split("/", 1)[0] if purl else "",
                licenses=licenses[:1],
                arch=arch,
            ),
        )
    facts.add_sbom_reference(conv, ctx, "SPDX", conv.format_version)
    return conv


def convert_tag_value(raw: bytes, ctx: IngestContext) -> Conversion:
    label = "SPDX tag-value"
    check_size(label, raw)
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(label, f"byte {exc.start}", "not UTF-8") from None
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.tagvalue.parser import Parser

    try:
        document = Parser().parse(content)  # type: ignore[no-untyped-call]
    except SPDXParsingError as exc:
        messages: list[str] = exc.get_messages()  # type: ignore[no-untyped-call]
        raise DocumentError(label, "", "; ".join(messages[:5])) from None
    except Exception as exc:  # the ply-based parser raises assorted types on odd input
        raise DocumentError(label, "", f"{type(exc).__name__}: {exc}") from None
    return convert_document(_as_json(document), ctx, Format.SPDX_TAG_VALUE)


def _as_json(document: Any) -> dict[str, Any]:
    """The parts of an spdx-tools Document that :func:`convert_document` reads, as JSON."""
    packages: list[dict[str, Any]] = []
    for p in document.packages:
        refs = [
            {
                "referenceCategory": str(r.category.name),
                "referenceType": str(r.reference_type),
                "referenceLocator": str(r.locator),
            }
            for r in p.external_references
        ]
        packages.append(
            {
                "SPDXID": p.spdx_id,
                "name": p.name,
                "versionInfo": p.version or "",
                "externalRefs": refs,
                "licenseConcluded": str(p.license_concluded)
                if p.license_concluded is not None
                else "",
                "licenseDeclared": str(p.license_declared)
                if p.license_declared is not None
                else "",
            }
        )
    return {
        "spdxVersion": document.creation_info.spdx_version,
        "SPDXID": document.creation_info.spdx_id,
        "packages": packages,
    }
