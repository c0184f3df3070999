"""Signed ingest: verifying the DSSE envelopes of an ingested document against attestors.

The ingest service hands over the envelopes of a DSSE document or ``.intoto.jsonl`` bundle and
the image the facts are about (the request's ``resourceUri`` when given — a statement naming
another digest is refused, never believed). This module reads the candidate attestors — the
ones the caller named, or else every attestor of the project, up to :data:`MAX_ATTESTORS` —
and verifies each envelope with each attestor's keys through
:func:`chainproof.attest.verify_attestation`, exactly as the judge verifies attestations: the
signature first, then the signed statement's subject against the trusted digest.

It returns, per envelope, which attestors verified it (and under which keys) or why none did,
and builds the ``DSSE_ATTESTATION`` occurrence each verified envelope is stored as: one per
(envelope, attestor note), on the subject digest, under the attestor's note — where the judge
looks for that attestor's evidence (and verifies it again itself). Verification is CPU-bound,
so it runs on a worker thread, paid from one
:class:`~chainproof.crypto.verify.VerificationBudget` per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from chainproof.attest.verify import verify_attestation
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.crypto.verify import BudgetExhausted, VerificationBudget
from chainproof.domain.images import ImageReference
from chainproof.domain.kinds import note_kind_accepts, occurrence_problems
from chainproof.domain.messages import occurrence_from_json
from chainproof.domain.names import parse_attestor_name, parse_note_name
from chainproof.errors import ChainproofError, InvalidArgument
from chainproof.policy.attestors import Attestor, parse_attestor
from chainproof.services.judge.evidence import attestor_keys
from chainproof.services.judge.resources import ATTESTORS
from chainproof.store.port import OccurrenceRecord, UnitOfWork

#: Attestors tried per request when the caller names none (every attestor of the project).
MAX_ATTESTORS = 100
#: Signature checks (one signature against one key) per request.
MAX_SIGNATURE_CHECKS = 2_000


@dataclass(frozen=True, slots=True)
class EnvelopeVerdict:
    """Who vouched for one envelope: attestor name → the key IDs that verified; or, when no
    attestor did, why (one reason per attestor tried)."""

    index: int
    verified: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidates:
    """The attestors an ingest may be vouched for by, and those that could not be used."""

    attestors: dict[str, Attestor]
    unusable: dict[str, str]


async def candidate_attestors(s: UnitOfWork, project: str, named: Sequence[str]) -> Candidates:
    """The attestors ``named`` (each must exist and parse), or every attestor of ``project``."""
    found: dict[str, Attestor] = {}
    unusable: dict[str, str] = {}
    if named:
        for name in dict.fromkeys(named):
            parsed = parse_attestor_name(name)
            record = await s.documents.get(parsed.project, ATTESTORS, parsed.attestor_id)
            if record is None:
                raise InvalidArgument(
                    f"attestor {name} does not exist: create it (chainproof attestors create) "
                    "or name one that does"
                )
            try:
                found[name] = parse_attestor(record.data)
            except ChainproofError as exc:
                unusable[name] = exc.message
        return Candidates(found, unusable)
    records = await s.documents.page(project, ATTESTORS, None, MAX_ATTESTORS + 1)
    if len(records) > MAX_ATTESTORS:
        raise InvalidArgument(
            f"project {project} has more than {MAX_ATTESTORS} attestors: name the ones that may "
            "vouch for this document (attestor=projects/…/attestors/…)"
        )
    for record in records:
        name = f"projects/{project}/attestors/{record.doc_id}"
        try:
            found[name] = parse_attestor(record.data)
        except ChainproofError as exc:
            unusable[name] = exc.message
    return Candidates(found, unusable)


async def verify_envelopes(
    envelopes: Sequence[DsseEnvelope],
    image: ImageReference,
    attestors: dict[str, Attestor],
    now: datetime,
) -> list[EnvelopeVerdict]:
    """One verdict per envelope (see :class:`EnvelopeVerdict`), computed on a worker thread."""
    return await asyncio.to_thread(_verify_all, envelopes, image, attestors, now)


def _verify_all(
    envelopes: Sequence[DsseEnvelope],
    image: ImageReference,
    attestors: dict[str, Attestor],
    now: datetime,
) -> list[EnvelopeVerdict]:
    budget = VerificationBudget(MAX_SIGNATURE_CHECKS)
    keys = {name: attestor_keys(a) for name, a in attestors.items()}
    verdicts: list[EnvelopeVerdict] = []
    for index, envelope in enumerate(envelopes):
        verified: dict[str, tuple[str, ...]] = {}
        reasons: list[str] = []
        for name in sorted(attestors):
            if not keys[name]:
                reasons.append(
                    f"{name}: has no public key to verify with (keyless attestors "
                    "are verified from the registry, not on ingest)"
                )
                continue
            try:
                result = verify_attestation(image, envelope, keys[name], now=now, budget=budget)
            except BudgetExhausted as exc:
                reasons.append(f"{name}: {exc.reason}")
                continue
            except ChainproofError as exc:
                reasons.append(f"{name}: {exc.message}")
                continue
            if result.verified:
                verified[name] = result.key_ids
            else:
                reasons.append(f"{name}: {'; '.join(result.reasons)}")
        if not attestors:
            reasons.append("no attestor was there to verify it")
        verdicts.append(EnvelopeVerdict(index, verified, tuple(reasons)))
    return verdicts


@dataclass(slots=True)
class Attestations:
    """What a verified document adds: its DSSE_ATTESTATION records (not yet stored), which
    attestors vouched for each envelope (by index), and the problems met on the way."""

    records: list[OccurrenceRecord] = field(default_factory=list)
    #: envelope index → attestor → the name of the occurrence it is filed as
    vouched: dict[int, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def attestation_records(
    s: UnitOfWork,
    project: str,
    subject: ImageReference,
    envelopes: Sequence[DsseEnvelope],
    verdicts: Sequence[EnvelopeVerdict],
    attestors: dict[str, Attestor],
    ids: Sequence[str],
    stamp: Timestamp,
) -> Attestations:
    """DSSE_ATTESTATION records for the verified envelopes, filed under each vouching
    attestor's note (which must exist and accept them); ``ids`` supplies occurrence IDs."""
    out = Attestations()
    notes: dict[str, tuple[str, str]] = {}
    for name in sorted({n for v in verdicts for n in v.verified}):
        try:
            note = parse_note_name(attestors[name].note_reference)
        except ChainproofError as exc:
            out.problems.append(f"attestor {name}: {exc.message}")
            continue
        notes[name] = (note.project, note.note_id)
    found = await s.notes.get_many(sorted(set(notes.values())))
    next_id = iter(ids)
    for verdict in verdicts:
        filed: dict[tuple[str, str], str] = {}
        for name in sorted(verdict.verified):
            key = notes.get(name)
            if key is None:
                continue
            record = found.get(key)
            note_name = f"projects/{key[0]}/notes/{key[1]}"
            if record is None or not note_kind_accepts(record.kind, "DSSE_ATTESTATION"):
                why = "does not exist" if record is None else f"is kind {record.kind}"
                out.problems.append(
                    f"attestor {name} verified envelope {verdict.index + 1}, but its note "
                    f"{note_name} {why}: the attestation cannot be filed under it"
                )
                continue
            if key not in filed:
                made = _record(
                    project, subject, envelopes[verdict.index], key, next(next_id), stamp
                )
                out.records.append(made)
                filed[key] = made.occurrence.name
            out.vouched.setdefault(verdict.index, {})[name] = filed[key]
    return out


def _record(
    project: str,
    subject: ImageReference,
    envelope: DsseEnvelope,
    note: tuple[str, str],
    occurrence_id: str,
    stamp: Timestamp,
) -> OccurrenceRecord:
    what = "the DSSE_ATTESTATION occurrence"
    occ = occurrence_from_json(
        {
            "resourceUri": subject.canonical,
            "noteName": f"projects/{note[0]}/notes/{note[1]}",
            "dsseAttestation": {"envelope": envelope.to_json()},
        },
        what,
    )
    problems = occurrence_problems(occ)
    if problems:
        raise InvalidArgument(f"{what}: {'; '.join(problems)}")
    occ.name = f"projects/{project}/occurrences/{occurrence_id}"
    occ.create_time.CopyFrom(stamp)
    occ.update_time.CopyFrom(stamp)
    occ.kind = (
        occ.DESCRIPTOR.fields_by_name["kind"].enum_type.values_by_name["DSSE_ATTESTATION"].number
    )
    return OccurrenceRecord(
        project, occurrence_id, "DSSE_ATTESTATION", note[0], note[1], subject.canonical, occ
    )
