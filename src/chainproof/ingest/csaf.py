"""CSAF 2.0 VEX (and security advisories' product status) → scoped VEX claims.

Products are resolved through the product tree: a full product name's
``product_identification_helper`` (purl) identifies it, and a relationship
``default_component_of`` (component *in* product) scopes a claim to that subcomponent of that
product. A product ID chainproof cannot resolve to a purl or an image is named in a warning.
"""

from __future__ import annotations

from typing import Any

from chainproof.ingest import cyclonedx
from chainproof.ingest.jsonload import items, load_json, need_object, obj, text
from chainproof.ingest.model import (
    Conversion,
    DocumentError,
    Format,
    IngestContext,
    VexClaim,
    VexScope,
)
from chainproof.ingest.purls import note_id_for
from chainproof.ingest.vex import product_identity

FMT = "CSAF"
_STATUS = {
    "known_not_affected": "NOT_AFFECTED",
    "fixed": "FIXED",
    "first_fixed": "FIXED",
    "known_affected": "AFFECTED",
    "first_affected": "AFFECTED",
    "last_affected": "AFFECTED",
    "under_investigation": "UNDER_INVESTIGATION",
}
_FLAGS = {
    "component_not_present": "COMPONENT_NOT_PRESENT",
    "vulnerable_code_not_present": "VULNERABLE_CODE_NOT_PRESENT",
    "vulnerable_code_not_in_execute_path": "VULNERABLE_CODE_NOT_IN_EXECUTE_PATH",
    "vulnerable_code_cannot_be_controlled_by_adversary": (
        "VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY"
    ),
    "inline_mitigations_already_exist": "INLINE_MITIGATIONS_ALREADY_EXIST",
}
MAX_CLAIMS = 100_000


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and text(obj(data.get("document")).get("csaf_version")) != ""


def convert(raw: bytes, ctx: IngestContext) -> Conversion:
    return convert_document(need_object(FMT, load_json(FMT, raw)), ctx)


def convert_document(doc: dict[str, Any], ctx: IngestContext) -> Conversion:
    document = obj(doc.get("document"))
    version = text(document.get("csaf_version"))
    if version != "2.0":
        raise DocumentError(FMT, "document.csaf_version", f'expected "2.0", got {version!r}')
    if not isinstance(doc.get("vulnerabilities", []), list):
        raise DocumentError(FMT, "vulnerabilities", "expected a list")
    conv = Conversion(Format.CSAF_VEX, version, subject=ctx.image)
    names, scopes = _product_tree(obj(doc.get("product_tree")))
    publisher = text(obj(document.get("publisher")).get("name"))
    tracking = text(obj(document.get("tracking")).get("id"))
    made = 0
    for i, v in enumerate(items(doc.get("vulnerabilities"))):
        path = f"vulnerabilities[{i}]"
        if not isinstance(v, dict):
            conv.warn(path, "not a JSON object; skipped")
            continue
        vid = text(v.get("cve")) or next(
            (text(obj(x).get("text")) for x in items(v.get("ids")) if text(obj(x).get("text"))), ""
        )
        if not vid:
            conv.warn(path, "names no cve or ids; skipped")
            continue
        flags: dict[str, str] = {}
        for f in items(v.get("flags")):
            label = _FLAGS.get(text(obj(f).get("label")), "")
            for pid in items(obj(f).get("product_ids")):
                if isinstance(pid, str) and label:
                    flags[pid] = label
        impacts: dict[str, str] = {}
        for t in items(v.get("threats")):
            if text(obj(t).get("category")) == "impact":
                for pid in items(obj(t).get("product_ids")):
                    if isinstance(pid, str):
                        impacts[pid] = text(obj(t).get("details"))
        for status_key, pids in obj(v.get("product_status")).items():
            state = _STATUS.get(status_key)
            if state is None:
                continue  # "recommended" says nothing about exploitability
            for pid in items(pids):
                if not isinstance(pid, str):
                    continue
                scope = scopes.get(pid)
                if scope is None:
                    conv.warn(
                        f"{path}.product_status.{status_key}",
                        f"product {pid!r} ({names.get(pid, 'unnamed')}) has no purl or image "
                        "digest to match findings on; skipped",
                    )
                    continue
                made += 1
                if made > MAX_CLAIMS:
                    raise DocumentError(FMT, path, f"more than {MAX_CLAIMS} product statements")
                cyclonedx.add_vex_claim(
                    conv,
                    ctx,
                    VexClaim(
                        vulnerability=vid,
                        status=state,
                        scope=scope,
                        note_id=note_id_for("vex-", f"{ctx.document_digest}/{path}/{pid}"),
                        justification=flags.get(pid, ""),
                        detail=impacts.get(pid, "") or f"{tracking} {status_key}".strip(),
                    ),
                    publisher=publisher,
                )
    return conv


def _product_tree(tree: dict[str, Any]) -> tuple[dict[str, str], dict[str, VexScope]]:
    names: dict[str, str] = {}
    idents: dict[str, str] = {}

    def visit(fpn: Any) -> None:
        if not isinstance(fpn, dict) or not text(fpn.get("product_id")):
            return
        pid = text(fpn.get("product_id"))
        names[pid] = text(fpn.get("name"))
        helper = obj(fpn.get("product_identification_helper"))
        ident = product_identity({"@id": text(helper.get("purl"))}) if helper.get("purl") else None
        if ident is None:
            sha = [h for h in items(helper.get("hashes")) if isinstance(h, dict)]
            for h in sha:
                for fh in items(h.get("file_hashes")):
                    if text(obj(fh).get("algorithm")) == "sha256":
                        ident = product_identity({"hashes": {"sha256": text(obj(fh).get("value"))}})
        if ident is not None:
            idents[pid] = ident

    def branches(nodes: Any, depth: int = 0) -> None:
        if depth > 32:
            return
        for b in items(nodes):
            if not isinstance(b, dict):
                continue
            visit(b.get("product"))
            branches(b.get("branches"), depth + 1)

    branches(tree.get("branches"))
    for fpn in items(tree.get("full_product_names")):
        visit(fpn)
    scopes: dict[str, VexScope] = {pid: VexScope(ident) for pid, ident in idents.items()}
    for rel in items(tree.get("relationships")):
        rel = obj(rel)
        fpn = obj(rel.get("full_product_name"))
        pid = text(fpn.get("product_id"))
        if not pid:
            continue
        names[pid] = text(fpn.get("name"))
        component = idents.get(text(rel.get("product_reference")))
        product = idents.get(text(rel.get("relates_to_product_reference")))
        if text(rel.get("category")) in ("default_component_of", "installed_on", "installed_with"):
            if product is not None and component is not None and component.startswith("pkg:"):
                scopes[pid] = VexScope(product, (component,))
            elif component is not None and component.startswith("pkg:") and product is None:
                # The component in an unidentified product: scope to the package itself.
                scopes[pid] = VexScope(component)
    return names, scopes
