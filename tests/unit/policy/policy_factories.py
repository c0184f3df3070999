"""Builders shared by the policy tests: small policies, attestors and evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chainproof.policy import (
    AttestationKind,
    Attestor,
    Evidence,
    ImageEvidence,
    Policy,
    VerifiedAttestation,
    parse_attestor,
    parse_policy,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
APP = f"gcr.io/x/app@{DIGEST}"
QA = "projects/p/attestors/qa"
BUILD = "projects/p/attestors/build"
KEY_QA = "7F3A0000000000000000000000000000000000A1"
KEY_QA_NEW = "7F3A0000000000000000000000000000000000B2"
KEY_BUILD = "https://kms.example/keys/build/1"


def attestor(name: str, *key_ids: str) -> Attestor:
    return parse_attestor(
        {
            "name": name,
            "userOwnedGrafeasNote": {
                "noteReference": name.replace("attestors", "notes"),
                "publicKeys": [
                    {"id": k, "asciiArmoredPgpPublicKey": "-----BEGIN PGP PUBLIC KEY BLOCK-----"}
                    for k in key_ids
                ],
            },
        }
    )


ATTESTORS = {QA: attestor(QA, KEY_QA, KEY_QA_NEW), BUILD: attestor(BUILD, KEY_BUILD)}


def rule(
    mode: str = "REQUIRE_ATTESTATION",
    enforcement: str = "ENFORCED_BLOCK_AND_AUDIT_LOG",
    attestors: tuple[str, ...] = (QA,),
    **checks: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"evaluationMode": mode, "enforcementMode": enforcement}
    if attestors and mode == "REQUIRE_ATTESTATION":
        out["requireAttestationsBy"] = list(attestors)
    if checks:
        out["chainproofChecks"] = checks
    return out


def policy(default: dict[str, Any] | None = None, **extra: Any) -> Policy:
    doc: dict[str, Any] = {"name": "projects/p/policy", "defaultAdmissionRule": default or rule()}
    doc.update(extra)
    return parse_policy(doc)


def signed(
    attestor_name: str = QA,
    key_id: str = KEY_QA,
    *,
    occurrence: str = "projects/p/occurrences/1",
    predicate_type: str | None = None,
    predicate: dict[str, Any] | None = None,
) -> VerifiedAttestation:
    kind = AttestationKind.IN_TOTO if predicate_type else AttestationKind.SIMPLE_SIGNING
    return VerifiedAttestation(
        attestor=attestor_name,
        key_id=key_id,
        occurrence=occurrence,
        kind=kind,
        predicate_type=predicate_type,
        predicate=predicate,
        statement={"predicateType": predicate_type, "predicate": predicate}
        if predicate_type
        else None,
        created=NOW,
    )


def evidence(image: str = APP, **fields: Any) -> Evidence:
    return Evidence(images={image: ImageEvidence(**fields)}, attestors=ATTESTORS)
