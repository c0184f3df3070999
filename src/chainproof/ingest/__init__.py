"""Pure converters from the documents supply-chain tools write to Grafeas notes and occurrences.

SBOMs (CycloneDX, SPDX), scan reports (Trivy, Grype, CycloneDX with vulnerabilities), VEX
(OpenVEX, CycloneDX VEX, CSAF), SLSA provenance, and in-toto statements bare or in DSSE
envelopes. Each converter takes the raw bytes and an :class:`IngestContext` and returns a
:class:`Conversion` (notes, occurrences, warnings for skipped items) or raises
:class:`DocumentError` for a document that cannot be read as a whole. Nothing here does I/O,
reads the clock or verifies signatures; storing, superseding, applying VEX to stored findings
and verifying envelopes belong to the ingest service.
"""

from chainproof.ingest.convert import convert, detect_format, parse_format, read_envelopes
from chainproof.ingest.model import (
    Conversion,
    DocumentError,
    Format,
    IngestContext,
    ScanIdentity,
    VexClaim,
    VexScope,
)

__all__ = [
    "Conversion",
    "DocumentError",
    "Format",
    "IngestContext",
    "ScanIdentity",
    "VexClaim",
    "VexScope",
    "convert",
    "detect_format",
    "parse_format",
    "read_envelopes",
]
