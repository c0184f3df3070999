"""The vocabulary every converter speaks: formats, the document being converted, the result.

A converter turns one parsed document into Grafeas notes and occurrences in their JSON mapping
(camelCase, enums by name) plus *warnings*: items it skipped and why. A document that cannot be
read at all raises :class:`DocumentError`, which says where and why; nothing partial escapes.
This module owns those records only; it converts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument


class Format(StrEnum):
    """The document formats chainproof ingests (the ``format=`` query parameter)."""

    CYCLONEDX_JSON = "cyclonedx-json"
    CYCLONEDX_XML = "cyclonedx-xml"
    SPDX_JSON = "spdx-json"
    SPDX_TAG_VALUE = "spdx-tag-value"
    TRIVY_JSON = "trivy-json"
    GRYPE_JSON = "grype-json"
    OPENVEX = "openvex"
    CSAF_VEX = "csaf-vex"
    SLSA_PROVENANCE = "slsa-provenance"  # a bare in-toto statement of SLSA v0.2 or v1
    INTOTO_STATEMENT = "in-toto-statement"  # a bare statement of any predicate ingest knows
    DSSE_ENVELOPE = "dsse"  # a DSSE envelope, or an .intoto.jsonl bundle of them


class DocumentError(InvalidArgument):
    """The document as a whole cannot be used: refused with where and why."""

    def __init__(self, fmt: str, where: str, why: str) -> None:
        self.where = where
        # A reason quoting the document (every subject, say) is cut: the 400 must stay readable.
        why = why if len(why) <= 600 else why[:600] + "…"
        self.why = why
        location = f" at {where}" if where else ""
        super().__init__(f"{fmt} document cannot be read{location}: {why}")


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the caller knows beyond the document: where the facts go and what they are about.

    ``image`` is the artifact the facts are about; a converter of a document that names its
    own subject (an in-toto statement) checks it against ``image`` or, when ``image`` is None,
    supplies it. ``document_uri`` is where the stored document is served back from.
    """

    project: str
    image: ImageReference | None
    document_digest: str  # sha256:<hex> of the raw bytes
    document_uri: str = ""
    attested_by: str | None = None  # the DSSE_ATTESTATION occurrence the facts were signed in


@dataclass(frozen=True, slots=True)
class ScanIdentity:
    """Which scanner produced a report and when it scanned (the scanner's time, not ours)."""

    scanner: str  # e.g. "trivy", "grype" — supersession is per (scanner, image)
    version: str
    scanned_at: datetime | None


@dataclass(frozen=True, slots=True)
class VexScope:
    """What one VEX statement is about: a product and, optionally, subcomponents of it.

    ``product`` is a canonical image reference (``registry/repo@sha256:…``), a bare digest
    (``sha256:…``) or a canonical purl; ``subcomponents`` are canonical purls. An empty
    ``subcomponents`` means the statement is about the product as a whole.
    """

    product: str
    subcomponents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VexClaim:
    """One scoped VEX statement: a vulnerability, a status, and the product it speaks for."""

    vulnerability: str
    status: str  # NOT_AFFECTED, AFFECTED, FIXED, UNDER_INVESTIGATION (Grafeas Assessment.State)
    scope: VexScope
    note_id: str
    justification: str = ""  # Grafeas JustificationType name, or ""
    detail: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class Conversion:
    """What a converter produced from one document."""

    format: Format
    format_version: str
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # note id → Note JSON
    occurrences: list[dict[str, Any]] = field(default_factory=list)  # Occurrence JSON
    warnings: list[str] = field(default_factory=list)
    scan: ScanIdentity | None = None
    vex: list[VexClaim] = field(default_factory=list)
    subject: ImageReference | None = None  # the image the facts are about
    envelopes: list[Any] = field(default_factory=list)  # DSSE envelopes, still unverified
    #: For an envelope or bundle: the index in :attr:`envelopes` each occurrence came from
    #: (parallel to :attr:`occurrences`), so the service can tell whose signature it carries.
    origins: list[int] = field(default_factory=list)

    def warn(self, where: str, why: str) -> None:
        self.warnings.append(f"{where}: {why}")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for occ in self.occurrences:
            kind = occ.get("kind", "")
            out[kind] = out.get(kind, 0) + 1
        return out
