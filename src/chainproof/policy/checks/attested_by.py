"""The attestor requirement: a verified attestation for the image signed by a named attestor.

Shared by ``requireAttestationsBy`` (:mod:`chainproof.policy.evaluate`), by the
``requiredPredicates`` check (with a predicate type) and by Kritis' GenericAttestationPolicy.
Only attestations the service verified against *this* attestor's keys count; the reason for a
refusal names what was found instead (wrong key, wrong predicate, bad signature…).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chainproof.policy.attestors import Attestor
from chainproof.policy.checks.base import CheckContext, short_key
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import FAILURE_LABELS, AttestationKind, FailureReason

if TYPE_CHECKING:
    from chainproof.policy.checks.predicates import PredicateRequirement

_KEY_FAILURES = frozenset({FailureReason.UNKNOWN_KEY, FailureReason.BAD_SIGNATURE})


def _count_phrase(failed: Sequence[tuple[str, str | None]]) -> str:
    """``[("signed by unknown key", "7F3A…"), ("for another digest", None)]`` → phrase."""
    grouped: dict[str, list[str]] = {}
    for label, key in failed:
        grouped.setdefault(label, [])
        if key:
            grouped[label].append(short_key(key))
    parts = []
    for label, keys in grouped.items():
        count = sum(1 for lab, _ in failed if lab == label)
        suffix = f" {', '.join(sorted(set(keys)))}" if keys else ""
        parts.append(f"{count} {label}{suffix}")
    return ", ".join(parts)


def check_attested_by(
    ctx: CheckContext,
    attestor_name: str,
    *,
    requirement: PredicateRequirement | None = None,
    kind: str = "attestation",
) -> RequirementResult:
    """Is there a verified attestation for the image by ``attestor_name`` (of the predicate)?"""
    what = "attestation" if requirement is None else f"{requirement.predicate_type} attestation"
    name = f"{what} by {attestor_name}"
    image = ctx.image.canonical
    attestor = ctx.attestors.get(attestor_name)
    if attestor is None:
        return RequirementResult(
            kind,
            name,
            False,
            f"the policy requires attestor {attestor_name}, which does not exist: create it "
            "or correct the policy",
        )
    listed = attestor.key_ids
    # A PGP key stored without an id is identified by fingerprint only once crypto/ loads it;
    # then the service's key_id cannot be cross-checked here and is trusted as given.
    check_keys = all(k.id for k in attestor.public_keys)
    consulted: list[str] = []
    keys: list[str] = []
    rejected: list[tuple[str, str | None]] = []
    for att in ctx.evidence.attestations:
        if att.attestor != attestor_name:
            continue
        consulted.append(att.occurrence)
        keys.append(att.key_id)
        if check_keys and att.key_id not in listed:
            rejected.append(("signed by a key the attestor no longer lists", att.key_id))
            continue
        if requirement is not None and (
            att.kind is not AttestationKind.IN_TOTO or not requirement.accepts(att.predicate_type)
        ):
            rejected.append((f"of predicate type {att.predicate_type or 'none'}", None))
            continue
        return RequirementResult(
            kind,
            name,
            True,
            f"verified {att.kind.value} attestation {att.occurrence} signed with key "
            f"{short_key(att.key_id)}",
            (att.occurrence,),
            (att.key_id,),
        )
    for bad in ctx.evidence.failed_attestations:
        if bad.attestor not in (None, attestor_name):
            continue
        consulted.append(bad.occurrence)
        if bad.key_id:
            keys.append(bad.key_id)
        # The key matters to the reader only when the key is the problem.
        shown = bad.key_id if bad.reason in _KEY_FAILURES else None
        rejected.append((FAILURE_LABELS[bad.reason], shown))
    found = f"{len(rejected)} found, {_count_phrase(rejected)}" if rejected else "none found"
    hint = _attestation_hint(attestor, requirement)
    return RequirementResult(
        kind,
        name,
        False,
        f"no {what} by {attestor_name} for {image}: {found}; {hint}",
        tuple(consulted),
        tuple(dict.fromkeys(keys)),
    )


def _attestation_hint(attestor: Attestor, requirement: PredicateRequirement | None) -> str:
    ids = ", ".join(sorted(short_key(k) for k in attestor.key_ids)) or "its listed keys"
    if requirement is None:
        return (
            f"sign the image digest with one of the attestor's keys ({ids}) and upload the "
            f"attestation as an occurrence of {attestor.note_reference or 'its note'}"
        )
    return (
        f"attest a {requirement.predicate_type} statement about the image digest with one of "
        f"the attestor's keys ({ids})"
    )
