"""SLSA provenance (v0.2 and v1, as in-toto statements) → a BUILD occurrence.

The statement's subject must name the image the facts are filed under (by digest and
repository, as :meth:`chainproof.attest.intoto.Statement.mismatches` decides); when no image
was given, the statement's single subject is used.
"""

from __future__ import annotations

from typing import Any

from chainproof.attest.intoto import Statement
from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.domain.images import ImageReference
from chainproof.ingest.jsonload import items, obj, text
from chainproof.ingest.model import Conversion, Format, IngestContext
from chainproof.ingest.purls import note_id_for


def convert_statement(statement: Statement, ctx: IngestContext, fmt: Format) -> Conversion:
    pred = statement.predicate or {}
    version = "1" if statement.predicate_type == SLSA_PROVENANCE_V1 else "0.2"
    conv = Conversion(fmt, version, subject=ctx.image)
    if version == "1":
        builder = text(obj(obj(pred.get("runDetails")).get("builder")).get("id"))
        definition = obj(pred.get("buildDefinition"))
        build_type = text(definition.get("buildType"))
        sources = [
            text(obj(d).get("uri"))
            for d in items(definition.get("resolvedDependencies"))
            if text(obj(d).get("uri"))
        ]
        invocation = text(obj(obj(pred.get("runDetails")).get("metadata")).get("invocationId"))
    else:
        builder = text(obj(pred.get("builder")).get("id"))
        build_type = text(pred.get("buildType"))
        src = obj(obj(pred.get("invocation")).get("configSource"))
        sources = [text(src.get("uri"))] if text(src.get("uri")) else []
        sources += [
            text(obj(m).get("uri")) for m in items(pred.get("materials")) if text(obj(m).get("uri"))
        ]
        invocation = text(obj(pred.get("metadata")).get("buildInvocationId"))
    if not builder:
        conv.warn("predicate", "provenance names no builder id; the BUILD fact has none")
    note_id = note_id_for("builder-", builder or "unknown")
    conv.notes.setdefault(
        note_id,
        {
            "shortDescription": f"builds by {builder or 'an unnamed builder'}",
            "build": {"builderVersion": builder or "unknown"},
        },
    )
    image = conv.subject
    provenance: dict[str, Any] = {
        "id": invocation or ctx.document_digest,
        "builderVersion": builder,
        "builtArtifacts": [
            {
                "id": f"{s.name}@sha256:{s.digest.get('sha256', '')}",
                "checksum": f"sha256:{s.digest.get('sha256', '')}",
            }
            for s in statement.subjects[:64]
        ],
    }
    if sources:
        provenance["sourceProvenance"] = {"artifactStorageSourceUri": sources[0]}
    occ: dict[str, Any] = {
        "resourceUri": image.canonical if isinstance(image, ImageReference) else "",
        "noteName": f"projects/{ctx.project}/notes/{note_id}",
        "kind": "BUILD",
        "build": {"provenance": provenance},
    }
    if build_type:
        occ["build"]["provenance"]["buildOptions"] = {"buildType": build_type[:1024]}
    conv.occurrences.append(occ)
    return conv
