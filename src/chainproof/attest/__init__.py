"""Attestation payloads and their verification against a trusted image.

What lives here (pure: bytes and dataclasses in, results out; no storage, no clock):

* :mod:`~chainproof.attest.simple_signing`: simple signing JSON (Binary Authorization, atomic,
  cosign);
* :mod:`~chainproof.attest.image_url`: the seed 000 payload, ``application/vnd.gcr.image.url.v1``;
* :mod:`~chainproof.attest.intoto`: in-toto Statements v1/v0.1;
* :mod:`~chainproof.attest.predicates`: the one table of predicate types and their names
  (policy aliases, command-line names, versioned families);
* :mod:`~chainproof.attest.verify`: :func:`verify_attestation`, signature first, then the
  payload against the repository and digest the caller trusts;
* :mod:`~chainproof.attest.grafeas`: extracting those plain values from grafeas.v1 Occurrences.

Signatures themselves are checked by :mod:`chainproof.crypto`; policy decisions over the
results belong to :mod:`chainproof.policy`.
"""

from chainproof.attest.grafeas import attestation_from_occurrence, envelope_from_message
from chainproof.attest.image_url import (
    IMAGE_URL_CONTENT_TYPE,
    ImageUrlPayload,
    build_image_url_payload,
    parse_image_url_payload,
)
from chainproof.attest.intoto import (
    INTOTO_PAYLOAD_TYPE,
    STATEMENT_V01,
    STATEMENT_V1,
    Statement,
    Subject,
    build_statement,
    parse_statement,
)
from chainproof.attest.predicates import (
    CYCLONEDX_BOM,
    OPENVEX,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    SPDX_DOCUMENT,
    VULN_SCAN_COSIGN,
    predicate_kind,
)
from chainproof.attest.simple_signing import (
    ATOMIC_SIGNATURE_TYPE,
    BINAUTHZ_SIGNATURE_TYPE,
    COSIGN_SIGNATURE_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SimpleSigningPayload,
    build_simple_signing,
    parse_simple_signing,
)
from chainproof.attest.verify import (
    PAYLOAD_FORMATS,
    AttestationPayload,
    AttestationVerification,
    SignedAttestation,
    verify_attestation,
)

__all__ = [
    "ATOMIC_SIGNATURE_TYPE",
    "BINAUTHZ_SIGNATURE_TYPE",
    "COSIGN_SIGNATURE_TYPE",
    "CYCLONEDX_BOM",
    "IMAGE_URL_CONTENT_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "OPENVEX",
    "PAYLOAD_FORMATS",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "SLSA_PROVENANCE_V02",
    "SLSA_PROVENANCE_V1",
    "SPDX_DOCUMENT",
    "STATEMENT_V01",
    "STATEMENT_V1",
    "VULN_SCAN_COSIGN",
    "AttestationPayload",
    "AttestationVerification",
    "ImageUrlPayload",
    "SignedAttestation",
    "SimpleSigningPayload",
    "Statement",
    "Subject",
    "attestation_from_occurrence",
    "build_image_url_payload",
    "build_simple_signing",
    "build_statement",
    "envelope_from_message",
    "parse_image_url_payload",
    "parse_simple_signing",
    "parse_statement",
    "predicate_kind",
    "verify_attestation",
]
