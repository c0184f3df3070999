"""What a verified SBOM statement states, in the judge's terms: its format and its packages.

The judge counts packages as *attested by* an attestor only when it has itself verified the
attestor's signature over the SBOM (a ``DSSE_ATTESTATION`` occurrence, as signed ingest files
it). It then reads the packages from that signed predicate with the same converters ingest
uses — never from the PACKAGE occurrences ingest stored beside it, which are unsigned Grafeas
facts anyone allowed to write occurrences could change or delete (ADR 0084). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chainproof.attest.predicates import predicate_kind
from chainproof.domain.images import ImageReference
from chainproof.ingest import cyclonedx, spdx
from chainproof.ingest.facts import purl_of_package
from chainproof.ingest.model import DocumentError, Format, IngestContext

__all__ = ["SignedPackage", "SignedSbom", "read_signed_sbom"]

_FORMATS = {"cyclonedx": "CycloneDX", "spdx": "SPDX"}


@dataclass(frozen=True, slots=True)
class SignedPackage:
    name: str
    version: str
    purl: str
    license: str


@dataclass(frozen=True, slots=True)
class SignedSbom:
    format: str  # "CycloneDX" or "SPDX"
    version: str
    packages: tuple[SignedPackage, ...]


def read_signed_sbom(
    predicate_type: str, predicate: Mapping[str, Any], image: ImageReference
) -> SignedSbom | None:
    """The SBOM a verified statement carries; None when its predicate is no SBOM.

    Raises :class:`~chainproof.ingest.model.DocumentError` when it is one but cannot be read
    (the caller records the attestor's evidence as incomplete)."""
    kind = predicate_kind(predicate_type)
    if kind not in _FORMATS:
        return None
    ctx = IngestContext("judge", image, "sha256:" + "0" * 64)
    doc = dict(predicate)
    try:
        if kind == "cyclonedx":
            conv = cyclonedx.convert_document(doc, ctx, Format.CYCLONEDX_JSON)
        else:
            conv = spdx.convert_document(doc, ctx, Format.SPDX_JSON)
    except RecursionError:
        raise DocumentError(_FORMATS[kind], "", "nested too deeply") from None
    packages = []
    for occ in conv.occurrences:
        details = occ.get("package")
        if occ.get("kind") != "PACKAGE" or not isinstance(details, dict):
            continue
        packages.append(
            SignedPackage(
                str(details.get("name", "")),
                str((details.get("version") or {}).get("fullName", "")),
                purl_of_package(details),
                str((details.get("license") or {}).get("expression", "")),
            )
        )
    return SignedSbom(_FORMATS[kind], conv.format_version, tuple(packages))
