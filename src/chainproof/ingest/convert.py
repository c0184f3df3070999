"""One entry point: raw bytes (and an optional format) → a :class:`Conversion`.

:func:`detect_format` recognises each format by its own markers (``bomFormat``,
``SchemaVersion`` + ``Results``, ``spdxVersion``, ``document.csaf_version``, OpenVEX's
``statements``, an in-toto ``_type``, a DSSE ``payloadType``). :func:`convert` dispatches to the
converter, and unwraps in-toto statements and DSSE envelopes (bare, or a ``.intoto.jsonl``
bundle, one envelope per line) to convert the predicate inside.

Signatures are *not* verified here: verifying needs the attestors' keys, which the service
holds. A converted envelope leaves its envelopes in :attr:`Conversion.envelopes` for the
service to verify before it stores anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from chainproof.attest.intoto import INTOTO_PAYLOAD_TYPE, Statement, parse_statement
from chainproof.attest.predicates import predicate_kind
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.ingest import csaf, cyclonedx, grype, openvex, slsa, spdx, trivy
from chainproof.ingest.jsonload import check_depth, check_size, load_json, need_object
from chainproof.ingest.model import Conversion, DocumentError, Format, IngestContext

MAX_ENVELOPES = 64

_CONVERTERS: dict[Format, Callable[[bytes, IngestContext], Conversion]] = {
    Format.CYCLONEDX_JSON: cyclonedx.convert_json,
    Format.CYCLONEDX_XML: cyclonedx.convert_xml,
    Format.SPDX_JSON: spdx.convert_json,
    Format.SPDX_TAG_VALUE: spdx.convert_tag_value,
    Format.TRIVY_JSON: trivy.convert,
    Format.GRYPE_JSON: grype.convert,
    Format.OPENVEX: openvex.convert,
    Format.CSAF_VEX: csaf.convert,
}


#: Converters of an already parsed JSON document (detection parsed it: once is enough).
_DOCUMENT_CONVERTERS: dict[Format, Callable[[dict[str, Any], IngestContext], Conversion]] = {
    Format.CYCLONEDX_JSON: lambda doc, ctx: cyclonedx.convert_document(
        doc, ctx, Format.CYCLONEDX_JSON
    ),
    Format.SPDX_JSON: lambda doc, ctx: spdx.convert_document(doc, ctx, Format.SPDX_JSON),
    Format.TRIVY_JSON: trivy.convert_document,
    Format.GRYPE_JSON: grype.convert_document,
    Format.OPENVEX: openvex.convert_document,
    Format.CSAF_VEX: csaf.convert_document,
}


def parse_format(name: str) -> Format:
    try:
        return Format(name.strip().lower())
    except ValueError:
        raise InvalidArgument(
            f"format {name!r} is not known: expected one of {', '.join(f.value for f in Format)}"
        ) from None


def detect_format(raw: bytes) -> Format:
    """The format of ``raw``, from its own markers; DocumentError when none fits."""
    return _detect(raw)[0]


def _detect(raw: bytes) -> tuple[Format, Any]:
    """The format, and the document parsed as JSON when it is one (None otherwise), so that a
    converter need not parse it a second time."""
    check_size("document", raw)
    head = raw.lstrip()[:512]
    if head.startswith(b"<"):
        return Format.CYCLONEDX_XML, None
    if head.startswith((b"SPDXVersion:", b"#")) or b"\nSPDXVersion:" in raw[:4096]:
        return Format.SPDX_TAG_VALUE, None
    first_line = raw.lstrip().split(b"\n", 1)[0]
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            data = orjson.loads(first_line)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "payloadType" in data:
            return Format.DSSE_ENVELOPE, None  # an .intoto.jsonl bundle
        load_json("document", raw)  # raises with line and column
        raise DocumentError("document", "", "not a format chainproof knows") from None
    if isinstance(data, dict):
        if "payloadType" in data and "payload" in data:
            return Format.DSSE_ENVELOPE, None
        if isinstance(data.get("_type"), str) and "in-toto.io/Statement" in data["_type"]:
            return Format.INTOTO_STATEMENT, None
        for fmt, probe in (
            (Format.CYCLONEDX_JSON, cyclonedx.looks_like),
            (Format.SPDX_JSON, spdx.looks_like),
            (Format.TRIVY_JSON, trivy.looks_like),
            (Format.GRYPE_JSON, grype.looks_like),
            (Format.CSAF_VEX, csaf.looks_like),
            (Format.OPENVEX, openvex.looks_like),
        ):
            if probe(data):
                return fmt, data
    raise DocumentError(
        "document",
        "",
        "not a format chainproof knows (CycloneDX, SPDX, Trivy, Grype, OpenVEX, CSAF, in-toto, "
        "DSSE): pass format= to say which it is meant to be",
    )


def convert(raw: bytes, ctx: IngestContext, fmt: Format | None = None) -> Conversion:
    """Convert one document; DocumentError (a 400) when it cannot be read as a whole."""
    parsed: Any = None
    if fmt is None:
        fmt, parsed = _detect(raw)
    if fmt in (Format.INTOTO_STATEMENT, Format.SLSA_PROVENANCE):
        return convert_statement(raw, ctx, fmt)
    if fmt is Format.DSSE_ENVELOPE:
        return convert_envelopes(raw, ctx)
    try:
        if parsed is not None and fmt in _DOCUMENT_CONVERTERS:
            check_depth(fmt.value, raw)
            return _DOCUMENT_CONVERTERS[fmt](need_object(fmt.value, parsed), ctx)
        return _CONVERTERS[fmt](raw, ctx)
    except RecursionError:
        raise DocumentError(fmt.value, "", "nested too deeply") from None


def convert_statement(raw: bytes, ctx: IngestContext, fmt: Format) -> Conversion:
    try:
        statement = parse_statement(raw)
    except DocumentError:
        raise
    except InvalidArgument as exc:
        raise DocumentError("in-toto statement", "", exc.message) from None
    ctx = _bind_subject(statement, ctx)
    kind = predicate_kind(statement.predicate_type)
    if fmt is Format.SLSA_PROVENANCE and kind != "slsa-provenance":
        raise DocumentError(
            "SLSA provenance",
            "predicateType",
            f"{statement.predicate_type!r} is not SLSA provenance",
        )
    pred = dict(statement.predicate or {})
    if kind == "slsa-provenance":
        return slsa.convert_statement(statement, ctx, Format.SLSA_PROVENANCE)
    if kind == "cyclonedx":
        return cyclonedx.convert_document(pred, ctx, Format.CYCLONEDX_JSON)
    if kind == "spdx":
        return spdx.convert_document(pred, ctx, Format.SPDX_JSON)
    if kind == "openvex":
        return openvex.convert_document(pred, ctx)
    if kind == "vulnerability-scan":
        return _scan_predicate(statement.predicate_type, pred, ctx)
    raise DocumentError(
        "in-toto statement",
        "predicateType",
        f"{statement.predicate_type!r} is not a predicate ingest converts (SLSA provenance, "
        "CycloneDX, SPDX, OpenVEX, cosign vulnerability scan)",
    )


def _scan_predicate(predicate_type: str, pred: dict[str, Any], ctx: IngestContext) -> Conversion:
    """cosign's vulnerability predicate carries the scanner's own report in
    ``scanner.result`` (``trivy --format cosign-vuln``, or Grype's JSON): that report is
    converted as if it had been sent bare. in-toto's ``vulns`` predicate names no package per
    finding, which a Grafeas finding needs, so it is refused with what to send instead."""
    scanner = pred.get("scanner")
    result = scanner.get("result") if isinstance(scanner, dict) else None
    label = "vulnerability scan predicate"
    if isinstance(result, dict):
        if trivy.looks_like(result):
            return trivy.convert_document(result, ctx)
        if grype.looks_like(result):
            return grype.convert_document(result, ctx)
    raise DocumentError(
        label,
        "predicate.scanner.result",
        f"{predicate_type!r}: expected a Trivy (SchemaVersion 2) or Grype report in "
        "scanner.result; an in-toto vulns result list names no package per finding — ingest "
        "the scanner's own report (trivy --format cosign-vuln, grype -o json)",
    )


def _bind_subject(statement: Statement, ctx: IngestContext) -> IngestContext:
    """The image the statement's facts are filed under: the caller's, which a subject must name,
    or the statement's own single subject."""
    if ctx.image is not None:
        problems = statement.mismatches(ctx.image)
        if problems:
            raise DocumentError("in-toto statement", "subject", problems[0])
        return ctx
    named = []
    for s in statement.subjects:
        if "sha256" not in s.digest:
            continue
        try:
            named.append(parse_image_reference(f"{s.name}@sha256:{s.digest['sha256']}"))
        except InvalidArgument:
            continue
    if len(named) != 1:
        raise DocumentError(
            "in-toto statement",
            "subject",
            f"{len(named)} subjects name an image: give resourceUri to say which image "
            "this is about",
        )
    return IngestContext(
        ctx.project, named[0], ctx.document_digest, ctx.document_uri, ctx.attested_by
    )


def read_envelopes(raw: bytes) -> list[DsseEnvelope]:
    """The envelopes of a bare envelope or an ``.intoto.jsonl`` bundle (one per line)."""
    check_size("DSSE", raw)
    text = raw.strip()
    try:
        lines = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        lines = []
        for n, line in enumerate(text.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise DocumentError("DSSE bundle", f"line {n}", f"not JSON: {exc}") from None
    if len(lines) > MAX_ENVELOPES:
        raise DocumentError("DSSE bundle", "", f"more than {MAX_ENVELOPES} envelopes")
    envelopes = []
    for n, item in enumerate(lines, start=1):
        # A Sigstore bundle line carries the envelope under dsseEnvelope.
        if isinstance(item, dict) and isinstance(item.get("dsseEnvelope"), dict):
            item = item["dsseEnvelope"]
        try:
            envelopes.append(DsseEnvelope.from_json(item))
        except InvalidArgument as exc:
            raise DocumentError("DSSE envelope", f"envelope {n}", exc.message) from None
        if envelopes[-1].payload_type != INTOTO_PAYLOAD_TYPE:
            raise DocumentError(
                "DSSE envelope",
                f"envelope {n}",
                f"payloadType {envelopes[-1].payload_type!r} is not {INTOTO_PAYLOAD_TYPE}",
            )
    if not envelopes:
        raise DocumentError("DSSE bundle", "", "no envelopes")
    return envelopes


def convert_envelopes(raw: bytes, ctx: IngestContext) -> Conversion:
    """Convert the statement in every envelope; the envelopes go along, unverified.

    Every envelope of a bundle must be about one image: the caller's, or else the one the
    first envelope's statement names (a later statement about another image is refused, so
    no fact is ever filed under an image it is not about)."""
    envelopes = read_envelopes(raw)
    merged: Conversion | None = None
    for n, env in enumerate(envelopes, start=1):
        try:
            conv = convert_statement(env.payload, ctx, Format.INTOTO_STATEMENT)
        except DocumentError as exc:
            raise DocumentError("DSSE envelope", f"envelope {n}", exc.message) from None
        if merged is None:
            merged = Conversion(Format.DSSE_ENVELOPE, conv.format_version, subject=conv.subject)
            ctx = IngestContext(
                ctx.project, conv.subject, ctx.document_digest, ctx.document_uri, ctx.attested_by
            )
        merged.notes.update(conv.notes)
        merged.origins.extend([n - 1] * len(conv.occurrences))
        merged.occurrences.extend(conv.occurrences)
        merged.warnings.extend(f"envelope {n}: {w}" for w in conv.warnings)
        merged.vex.extend(conv.vex)
        merged.scan = merged.scan or conv.scan
        merged.envelopes.append(env)
    assert merged is not None
    return merged
