"""Offline policy evaluation: the server's own services on an in-memory store, no server.

The services are wired by the composition root (:func:`chainproof.bootstrap.build_services`),
as for the server: same change feed, same caches, same bounds. The files a user hands over
(a policy or Kritis resources, attestors, and a JSON dump of Grafeas notes and occurrences)
are loaded into a :class:`~chainproof.store.memory.MemoryStore` through them (the Grafeas
service for notes and occurrences, the judge's resources for attestors and the policy), and
the decision comes from the judge (:meth:`Judge.evaluate` for Binary Authorization policies,
:meth:`Judge.evaluate_kritis` for Kritis resources). Nothing is re-implemented here: only the
loading order and the error messages that name the input file belong to this module.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chainproof.config import DecisionLogSettings, ScanningSettings, Settings
from chainproof.domain.kinds import DETAILS_TO_KIND
from chainproof.domain.legacy import upgrade_note_json, upgrade_occurrence_json
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.names import (
    is_attestor_name,
    parse_attestor_name,
    parse_note_name,
    parse_occurrence_name,
)
from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import ChainproofError, InvalidArgument, NotFound
from chainproof.policy import AdmissionRequest, Decision
from chainproof.policy.attestors import parse_attestor
from chainproof.policy.kritis import (
    AttestationAuthority,
    GenericAttestationPolicy,
    ImageSecurityPolicy,
)
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.store.memory import MemoryStore

KritisResource = ImageSecurityPolicy | GenericAttestationPolicy | AttestationAuthority

#: Notes made up for occurrences whose note the file does not carry: the smallest valid note
#: of the kind the occurrence needs. Other kinds need real content; the file must include them.
_PLACEHOLDER_NOTES: dict[str, dict[str, Any]] = {
    "ATTESTATION": {"attestation": {"hint": {"humanReadableName": "offline"}}},
    "DSSE_ATTESTATION": {"attestation": {"hint": {"humanReadableName": "offline"}}},
    "VULNERABILITY": {"vulnerability": {}},
    "DISCOVERY": {"discovery": {"analysisKind": "VULNERABILITY"}},
    "VULNERABILITY_ASSESSMENT": {"vulnerabilityAssessment": {}},
}


@dataclass
class OfflineInputs:
    """What the user gave: a policy or Kritis resources, attestors, notes and occurrences."""

    project: str
    policy: dict[str, Any] | None = None
    kritis: tuple[KritisResource, ...] = ()
    attestors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (source, doc)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (where, note)
    occurrences: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def split_grafeas_dump(
    data: Any, source: str
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(notes, occurrences) from a list, a ListOccurrences/ListNotes response or one object."""
    items: list[tuple[str, Any]] = []
    if isinstance(data, dict) and ("occurrences" in data or "notes" in data):
        for key in ("notes", "occurrences"):
            value = data.get(key) or []
            if not isinstance(value, list):
                raise InvalidArgument(f"{source}: {key} must be a JSON list")
            items += [(f"{source} {key}[{i}]", v) for i, v in enumerate(value)]
    elif isinstance(data, list):
        items = [(f"{source} [{i}]", v) for i, v in enumerate(data)]
    elif isinstance(data, dict):
        items = [(source, data)]
    else:
        raise InvalidArgument(
            f"{source} must hold a JSON list of Grafeas notes and occurrences, or a "
            '{"occurrences": [...]} response'
        )
    notes: list[tuple[str, Any]] = []
    occurrences: list[tuple[str, Any]] = []
    for where, item in items:
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where} must be a JSON object (a note or an occurrence)")
        if any(k in item for k in ("noteName", "resourceUri", "resourceUrl")):
            occurrences.append((where, item))
        elif isinstance(item.get("name"), str) and "/notes/" in item["name"]:
            notes.append((where, item))
        else:
            raise InvalidArgument(
                f"{where} is neither an occurrence (with noteName and resourceUri) nor a note "
                "(with name projects/P/notes/N)"
            )
    return notes, occurrences


def _occurrence_kind(message: Any) -> str | None:
    details = message.WhichOneof("details")
    return DETAILS_TO_KIND.get(details) if details else None


async def _load(
    inputs: OfflineInputs, grafeas: GrafeasService, resources: JudgeResources
) -> list[str]:
    """Fill the store; return the projects that hold occurrences (the evidence projects)."""
    known_notes: set[str] = set()
    for where, raw in inputs.notes:
        try:
            name = parse_note_name(str(raw.get("name", "")), field=f"{where} name")
            message = note_from_json(upgrade_note_json(_without(raw, "name")), where)
            await grafeas.create_note(f"projects/{name.project}", name.note_id, message)
        except ChainproofError as exc:
            raise InvalidArgument(f"{where}: {exc.message}", details=exc.details) from None
        known_notes.add(str(name))

    parsed: list[tuple[str, str, Any]] = []
    for where, raw in inputs.occurrences:
        try:
            message = occurrence_from_json(upgrade_occurrence_json(raw), where)
            note_name = parse_note_name(message.note_name, field=f"{where} noteName")
            project = (
                parse_occurrence_name(message.name).project if message.name else inputs.project
            )
        except ChainproofError as exc:
            raise InvalidArgument(f"{where}: {exc.message}", details=exc.details) from None
        if str(note_name) not in known_notes:
            await _placeholder_note(grafeas, str(note_name), _occurrence_kind(message), where)
            known_notes.add(str(note_name))
        parsed.append((where, project, message))

    # Attestors need their notes before they can be stored.
    attestor_docs: list[tuple[str, str, dict[str, Any]]] = []
    for source, doc in inputs.attestors:
        attestor_ref = doc.get("name")
        if not isinstance(attestor_ref, str) or not is_attestor_name(attestor_ref):
            raise InvalidArgument(
                f"attestor {source} needs name: projects/PROJECT/attestors/ID (the name the "
                "policy's requireAttestationsBy uses)"
            )
        attestor = parse_attestor(doc)
        if attestor.note_reference not in known_notes:
            await _placeholder_note(grafeas, attestor.note_reference, "ATTESTATION", source)
            known_notes.add(attestor.note_reference)
        attestor_docs.append((source, attestor_ref, doc))
    for authority in (r for r in inputs.kritis if isinstance(r, AttestationAuthority)):
        note_ref = authority.as_attestor().note_reference
        if note_ref not in known_notes:
            await _placeholder_note(grafeas, note_ref, "ATTESTATION", authority.meta.name)
            known_notes.add(note_ref)

    projects: list[str] = [inputs.project]
    for where, project, message in parsed:
        try:
            await grafeas.create_occurrence(f"projects/{project}", message)
        except ChainproofError as exc:
            raise InvalidArgument(f"{where}: {exc.message}", details=exc.details) from None
        if project not in projects:
            projects.append(project)

    for source, attestor_ref, doc in attestor_docs:
        named = parse_attestor_name(attestor_ref)
        try:
            await resources.create_attestor(
                f"projects/{named.project}", named.attestor_id, _without(doc, "name")
            )
        except ChainproofError as exc:
            raise InvalidArgument(
                f"attestor {source}: {exc.message}", details=exc.details
            ) from None
    if inputs.policy is not None:
        try:
            await resources.put_policy(
                f"projects/{inputs.project}", _without(inputs.policy, "name", "etag", "updateTime")
            )
        except ChainproofError as exc:
            raise InvalidArgument(f"policy: {exc.message}", details=exc.details) from None
    return projects


async def _placeholder_note(
    grafeas: GrafeasService, note_name: str, kind: str | None, where: str
) -> None:
    name = parse_note_name(note_name, field=f"{where} note")
    try:
        await grafeas.get_note(str(name))
        return
    except NotFound:
        pass
    template = _PLACEHOLDER_NOTES.get(kind or "")
    if template is None:
        raise InvalidArgument(
            f"{where} refers to note {name}, which the occurrences file does not hold: add the "
            f"note (with its name) to the file"
        )
    await grafeas.create_note(f"projects/{name.project}", name.note_id, note_from_json(template))


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


async def _evaluate(inputs: OfflineInputs, request: AdmissionRequest, now: datetime) -> Decision:
    from chainproof.bootstrap import build_services

    store = MemoryStore()
    await store.open()
    services = build_services(
        store, settings=offline_settings(), tokens=PageTokenCodec(secrets.token_bytes(32))
    )
    try:
        projects = await _load(inputs, services.grafeas, services.judge_resources)
        if inputs.policy is not None:
            return await services.judge.evaluate(
                inputs.project, request, evidence_projects=projects, now=now
            )
        return await services.kritis.evaluate(
            inputs.kritis, request, evidence_projects=projects, now=now
        )
    finally:
        await services.close()


def offline_settings() -> Settings:
    """The server's defaults, read from nowhere (not the environment: the files given are
    the whole input), except that nothing scans and nothing spills to disk. Offline there are
    no advisories, so a scan of the files' SBOM packages would find nothing and could stand in
    for a real scan; and no decision-log writer runs, so nothing may be left in a directory.
    """
    return Settings.model_construct(
        scanning=ScanningSettings(scan_on_sbom=False),
        decision_log=DecisionLogSettings(spill_dir=None),
    )


def evaluate_offline(inputs: OfflineInputs, request: AdmissionRequest, now: datetime) -> Decision:
    """Evaluate ``request`` against the given files, entirely in this process."""
    return asyncio.run(_evaluate(inputs, request, now))


#: The ``kind`` values that mark a file as Kritis resources rather than a Binary Authorization
#: policy.
KRITIS_KINDS = ("ImageSecurityPolicy", "GenericAttestationPolicy", "AttestationAuthority")


def is_kritis(documents: Sequence[Any]) -> bool:
    return any(isinstance(d, dict) and d.get("kind") in KRITIS_KINDS for d in documents)
