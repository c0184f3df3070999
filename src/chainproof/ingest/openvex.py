"""OpenVEX 0.2 documents → one scoped VEX claim (VULNERABILITY_ASSESSMENT note) per
(statement, product).

A statement speaks for the products it names and, when it lists subcomponents, only for those
packages inside them (ADR 0082). A statement without products would speak for everything; it
is skipped with a warning rather than guessed at.
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

FMT = "OpenVEX"
STATES = {
    "not_affected": "NOT_AFFECTED",
    "affected": "AFFECTED",
    "fixed": "FIXED",
    "under_investigation": "UNDER_INVESTIGATION",
}
JUSTIFICATIONS = {
    "component_not_present": "COMPONENT_NOT_PRESENT",
    "vulnerable_code_not_present": "VULNERABLE_CODE_NOT_PRESENT",
    "vulnerable_code_not_in_execute_path": "VULNERABLE_CODE_NOT_IN_EXECUTE_PATH",
    "vulnerable_code_cannot_be_controlled_by_adversary": (
        "VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY"
    ),
    "inline_mitigations_already_exist": "INLINE_MITIGATIONS_ALREADY_EXIST",
}


def looks_like(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("statements"), list)
        and ("openvex" in text(data.get("@context")) or "@id" in data)
    )


def convert(raw: bytes, ctx: IngestContext) -> Conversion:
    doc = need_object(FMT, load_json(FMT, raw))
    return convert_document(doc, ctx)


def convert_document(
    doc: dict[str, Any], ctx: IngestContext, fmt: Format = Format.OPENVEX
) -> Conversion:
    statements = doc.get("statements")
    if not isinstance(statements, list):
        raise DocumentError(FMT, "statements", "expected a list of statements")
    context = text(doc.get("@context"))
    version = context.rsplit("/v", 1)[1] if "/v" in context else "0.2"
    conv = Conversion(fmt, version, subject=ctx.image)
    for i, st in enumerate(statements):
        path = f"statements[{i}]"
        if not isinstance(st, dict):
            conv.warn(path, "not a JSON object; skipped")
            continue
        vuln = st.get("vulnerability")
        vid = (
            text(obj(vuln).get("name") or obj(vuln).get("@id"))
            if isinstance(vuln, dict)
            else text(vuln)
        )
        status = STATES.get(text(st.get("status")))
        if not vid or status is None:
            conv.warn(
                path, f"needs a vulnerability name and a status ({', '.join(STATES)}); skipped"
            )
            continue
        aliases = tuple(a for a in items(obj(vuln).get("aliases")) if isinstance(a, str))
        products = items(st.get("products"))
        if not products:
            conv.warn(path, f"{vid} names no product, so it would apply to everything; skipped")
            continue
        for j, product in enumerate(products):
            ppath = f"{path}.products[{j}]"
            ident = product_identity(product)
            if ident is None:
                conv.warn(ppath, "product names neither an image digest nor a package URL; skipped")
                continue
            subs: list[str] = []
            for k, sub in enumerate(items(obj(product).get("subcomponents"))):
                sid = product_identity(sub)
                if sid is None or not sid.startswith("pkg:"):
                    conv.warn(f"{ppath}.subcomponents[{k}]", "not a package URL; skipped")
                    continue
                subs.append(sid)
            if items(obj(product).get("subcomponents")) and not subs:
                continue  # every subcomponent was unusable: claiming the whole product is wrong
            cyclonedx.add_vex_claim(
                conv,
                ctx,
                VexClaim(
                    vulnerability=vid,
                    status=status,
                    scope=VexScope(ident, tuple(dict.fromkeys(subs))),
                    note_id=note_id_for("vex-", f"{ctx.document_digest}/{ppath}"),
                    justification=JUSTIFICATIONS.get(text(st.get("justification")), ""),
                    detail=text(st.get("impact_statement")) or text(st.get("action_statement")),
                    aliases=aliases,
                ),
                publisher=text(doc.get("author")),
            )
    return conv
