"""The forms the "not-vulnerable" attestor signs in, and the occurrence of each.

* ``simple-signing``: the image digest (an ATTESTATION occurrence);
* ``in-toto-vulns``: an in-toto statement about the digest with the ``vulns`` v0.1 predicate
  (https://in-toto.io/attestation/vulns/v0.1) built from a passing check's ``report`` — the
  newest scan and the findings left after VEX — in a DSSE envelope.

Pure: the signer port signs (the key stays with whoever holds it); used by the server's
voucher and by ``chainproof vouch``, so both sign the same statement.
"""

from __future__ import annotations

from typing import Any

from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.attest.vuln_scan import VULNS_V01, build_vulns_predicate
from chainproof.crypto.signing import Signer
from chainproof.domain.images import ImageReference
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import InvalidArgument

__all__ = [
    "FORMS",
    "INTOTO_VULNS",
    "SIMPLE_SIGNING",
    "attestation_body",
    "read_forms",
    "vulns_predicate",
]

SIMPLE_SIGNING = "simple-signing"
INTOTO_VULNS = "in-toto-vulns"
FORMS = (SIMPLE_SIGNING, INTOTO_VULNS)


def read_forms(text: str) -> tuple[str, ...]:
    """``simple-signing``, ``in-toto-vulns`` or ``both``, as the CLI and configuration say."""
    word = (text or SIMPLE_SIGNING).strip().lower()
    if word == "both":
        return FORMS
    if word not in FORMS:
        raise InvalidArgument(
            f"attestation format {text!r} is not known: expected simple-signing, in-toto-vulns "
            "or both"
        )
    return (word,)


def vulns_predicate(report: dict[str, Any]) -> dict[str, Any]:
    """The in-toto ``vulns`` v0.1 predicate of a passing check's ``report``."""
    scan = report.get("scan") or {}
    return build_vulns_predicate(
        scanner_uri=str(scan.get("scanner") or "chainproof"),
        scanner_version=str(scan.get("version") or ""),
        scanned_at=parse_rfc3339(str(scan.get("scannedAt", ""))),
        findings=list(report.get("findings") or []),
    )


def attestation_body(
    ref: ImageReference,
    form: str,
    note_name: str,
    signer: Signer,
    report: dict[str, Any],
    *,
    resource_uri: str | None = None,
) -> dict[str, Any]:
    """The occurrence JSON of one signed form (the key stays with ``signer``);
    ``resource_uri`` defaults to the canonical reference."""
    if form == INTOTO_VULNS:
        return attestation_occurrence(
            ref,
            PayloadFormat.IN_TOTO,
            signer,
            predicate_type=VULNS_V01,
            predicate=vulns_predicate(report),
            note_name=note_name,
            resource_uri=resource_uri or ref.canonical,
        )
    return attestation_occurrence(
        ref,
        PayloadFormat.SIMPLE_SIGNING,
        signer,
        note_name=note_name,
        resource_uri=resource_uri or ref.canonical,
    )
