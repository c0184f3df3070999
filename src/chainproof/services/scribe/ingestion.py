"""Ingesting documents: convert (pure, :mod:`chainproof.ingest`), then store in one transaction.

One call takes one raw document and:

1. converts it; a document that cannot be read is refused whole (InvalidArgument, a 400);
2. refuses nothing more for unusable items: they are skipped and named in ``warnings``;
3. is idempotent: the same bytes about the same image in the same format change nothing;
4. supersedes: a scan by the same scanner of the same image, newer than the one recorded,
   deletes the older scan's DISCOVERY and VULNERABILITY occurrences (they would count twice);
   an *older* scan arriving late is stored as a document but its findings are not;
5. applies VEX both ways: a VEX document updates the ``vexAssessment`` of the stored findings
   its scoped statements speak for, and a new scan's findings get the assessments of VEX
   notes already stored;
6. stores the raw document content-addressed (``sha256:…``), to be served back by digest.

Everything of one call happens in one store session: all of it lands, or none.
It also answers the queries over those facts: packages of an image, vulnerabilities after
VEX, and the images containing a package.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from google.protobuf import timestamp_pb2

from chainproof.domain.bounds import storable_json
from chainproof.domain.events import EventType
from chainproof.domain.filters import And, Compare, FilterColumn
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.kinds import (
    common_occurrence_problems,
    derive_kind,
    note_problems,
    occurrence_problems,
)
from chainproof.domain.messages import (
    NotePB,
    OccurrencePB,
    note_from_json,
    occurrence_from_json,
    render_for_storage,
    strict_from_json,
    to_json,
)
from chainproof.domain.names import parse_attestor_name, parse_project_name
from chainproof.domain.timestamps import parse_rfc3339, rfc3339
from chainproof.errors import InvalidArgument, NotFound, PayloadTooLarge
from chainproof.ingest import Conversion, IngestContext, VexScope, convert, parse_format
from chainproof.ingest.facts import purl_of_package
from chainproof.ingest.purls import BadPurl, canonical_purl, purl_matches, purl_or_none
from chainproof.ingest.vex import scope_applies
from chainproof.policy.attestors import Attestor
from chainproof.services import outbox
from chainproof.services.common import utc_now
from chainproof.services.scribe.bulk_gc import cyclic_gc_paused
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.services.scribe.grafeas import new_occurrence_ids
from chainproof.services.scribe.ingest_signatures import (
    Attestations,
    EnvelopeVerdict,
    attestation_records,
    candidate_attestors,
    verify_envelopes,
)
from chainproof.store.port import (
    DocumentRecord,
    MetadataStore,
    NoteRecord,
    OccurrenceRecord,
    UnitOfWork,
)

DOCUMENTS = "ingest-documents"  # raw documents by digest
INGESTS = "ingests"  # one record per (document, image, format): idempotency
SCANS = "ingest-scans"  # the current scan per (scanner, image): supersession
MAX_LISTED = 5000
_SCAN_KINDS = frozenset({"DISCOVERY", "VULNERABILITY"})


@dataclass(frozen=True, slots=True)
class IngestResult:
    format: str
    resource_uri: str
    document: str  # sha256:…
    created: dict[str, int]
    superseded: int
    vex_applied: int
    warnings: list[str]
    unchanged: bool = False
    attestations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "resourceUri": self.resource_uri,
            "document": self.document,
            "created": self.created,
            "superseded": self.superseded,
            "vexApplied": self.vex_applied,
            "warnings": self.warnings,
            "attestations": self.attestations,
            **({"unchanged": True} if self.unchanged else {}),
        }


REQUIRED = "required"
OPTIONAL = "optional"


def _signature_mode(signatures: str, attestors: Sequence[str]) -> str:
    mode = signatures.strip().lower() or (REQUIRED if attestors else OPTIONAL)
    if mode not in (REQUIRED, OPTIONAL):
        raise InvalidArgument(
            f"signatures={signatures!r} is not known: expected required (refuse what no "
            "attestor verifies) or optional (store it as unattested)"
        )
    for name in attestors:
        parse_attestor_name(name)
    return mode


def _drop_scan_findings(conv: Conversion) -> None:
    keep = [i for i, o in enumerate(conv.occurrences) if o["kind"] not in _SCAN_KINDS]
    if conv.origins:
        conv.origins = [conv.origins[i] for i in keep]
    conv.occurrences = [conv.occurrences[i] for i in keep]


def _counts(records: Sequence[OccurrenceRecord]) -> dict[str, int]:
    created: dict[str, int] = {}
    for r in records:
        created[r.kind] = created.get(r.kind, 0) + 1
    return created


def _attested_by(att: Attestations) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for vouched in att.vouched.values():
        for attestor, occurrence in vouched.items():
            out.setdefault(attestor, []).append(occurrence)
    return out


def _attestation_problems(att: Attestations, mode: str, warnings: list[str]) -> None:
    if att.problems and mode == REQUIRED:
        raise InvalidArgument(att.problems[0], details=att.problems)
    warnings.extend(att.problems)


def _attestation_summary(att: Attestations, conv: Conversion) -> list[dict[str, Any]]:
    """Per verified envelope: who vouched, the attestation occurrences, and the converted
    facts that came from it (by kind) — the facts a policy may count as attested."""
    out = []
    for index, vouched in sorted(att.vouched.items()):
        facts: dict[str, int] = {}
        for origin, occ in zip(conv.origins, conv.occurrences, strict=True):
            if origin == index:
                facts[occ["kind"]] = facts.get(occ["kind"], 0) + 1
        out.append(
            {
                "envelope": index + 1,
                "attestors": sorted(vouched),
                "occurrences": sorted(set(vouched.values())),
                "facts": facts,
            }
        )
    return out


@dataclass(slots=True)
class _Plan:
    notes: list[NoteRecord] = field(default_factory=list)
    occurrences: list[OccurrenceRecord] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class IngestService:
    """Turns documents into stored Grafeas facts, and answers questions about them."""

    #: The most occurrences a query answer is built from; past it the query is refused.
    max_listed: int = 100_000
    list_page: int = 1000

    def __init__(
        self,
        store: MetadataStore,
        clock: Callable[[], datetime] = utc_now,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._changes = changes or ChangeFeed()
        self._listeners: list[Callable[[Sequence[OccurrenceRecord]], None]] = []

    def add_listener(self, listener: Callable[[Sequence[OccurrenceRecord]], None]) -> None:
        """Be told of the occurrences each ingest stored (the scanner matches new SBOMs)."""
        self._listeners.append(listener)

    async def ingest(
        self,
        parent: str,
        raw: bytes,
        *,
        resource_uri: str = "",
        fmt: str = "",
        signatures: str = "",
        attestors: Sequence[str] = (),
    ) -> IngestResult:
        """Ingest one document (see the module docstring).

        ``signatures``: ``required`` — the document must be a DSSE envelope or bundle, and
        each envelope must verify under an attestor, or the document is refused whole (the
        default when ``attestors`` are named); ``optional`` — envelopes that verify are
        stored as attested, the others' facts as unattested, with a warning (the default
        otherwise). ``attestors`` narrows who may vouch (default: every attestor of the
        project)."""
        mode = _signature_mode(signatures, attestors)
        with cyclic_gc_paused():  # bounded, allocation-heavy work (services.bulk_gc)
            return await self._ingest(parent, raw, resource_uri, fmt, mode, tuple(attestors))

    async def _ingest(
        self,
        parent: str,
        raw: bytes,
        resource_uri: str,
        fmt: str,
        mode: str,
        named: tuple[str, ...],
    ) -> IngestResult:
        project = parse_project_name(parent)
        image = _image(resource_uri) if resource_uri else None
        digest = _sha256(raw)
        ctx = IngestContext(project, image, digest, f"/v1/projects/{project}/documents/{digest}")
        conv = convert(raw, ctx, parse_format(fmt) if fmt else None)
        subject = conv.subject
        if subject is None or not subject.digest:
            raise InvalidArgument(
                "resourceUri is required: this document does not name the image (by digest) "
                "its facts are about; pass resourceUri=registry/repository@sha256:…"
            )
        warnings = list(conv.warnings)
        verdicts, candidates = await self._verify(project, subject, conv, mode, named, warnings)
        ingest_id = _key(digest, subject.canonical, conv.format.value)
        now = self._clock()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(now)
        async with self._store.session() as s:
            done = await s.documents.get(project, INGESTS, ingest_id)
            if done is not None:
                # The same document again: nothing new, except an attestor that vouches for
                # it now and did not then (created since, or named this time).
                recorded = dict(done.data.get("attestedBy") or {})
                fresh = [
                    EnvelopeVerdict(
                        v.index, {a: k for a, k in v.verified.items() if a not in recorded}
                    )
                    for v in verdicts
                ]
                att = await attestation_records(
                    s,
                    project,
                    subject,
                    conv.envelopes,
                    fresh,
                    candidates,
                    new_occurrence_ids(len(fresh) * max(len(candidates), 1)),
                    stamp,
                )
                _attestation_problems(att, mode, warnings)
                if att.records:
                    await s.occurrences.insert(att.records)
                    await outbox.append(
                        s,
                        outbox.occurrence_events(
                            EventType.OCCURRENCE_CREATED,
                            att.records,
                            now,
                        ),
                    )
                    data = dict(done.data)
                    data["attestedBy"] = recorded | _attested_by(att)
                    await s.documents.put(replace(done, data=data, update_time=now))
                    self._changes.resources_changed([subject.canonical])
                return IngestResult(
                    conv.format.value,
                    subject.canonical,
                    digest,
                    _counts(att.records),
                    0,
                    0,
                    warnings,
                    True,
                    attestations=_attestation_summary(att, conv),
                )
            superseded, keep_findings = await self._supersede(s, project, subject, conv)
            if not keep_findings:
                warnings.append(
                    f"a newer {conv.scan.scanner if conv.scan else ''} scan of "
                    f"{subject.canonical} is already recorded: this older scan's findings "
                    "were not stored"
                )
                _drop_scan_findings(conv)
            plan = await self._plan(s, project, conv)
            att = await attestation_records(
                s,
                project,
                subject,
                conv.envelopes,
                verdicts,
                candidates,
                new_occurrence_ids(len(verdicts) * max(len(candidates), 1)),
                stamp,
            )
            _attestation_problems(att, mode, warnings)
            plan.occurrences.extend(att.records)
            applied = await self._apply_stored_vex(s, project, subject, plan)
            applied += await self._apply_new_vex(s, project, subject, conv)
            await s.notes.insert(plan.notes)
            await s.occurrences.insert(plan.occurrences)
            await s.projects.add(project)
            # What changed, announced in this same transaction (the outbox).
            await outbox.append(
                s,
                outbox.note_events(((r.project, r.note_id, r.kind) for r in plan.notes), now)
                + outbox.occurrence_events(
                    EventType.OCCURRENCE_CREATED,
                    plan.occurrences,
                    now,
                ),
            )
            await s.documents.put(
                DocumentRecord(
                    project,
                    DOCUMENTS,
                    digest,
                    {
                        "format": conv.format.value,
                        "size": len(raw),
                        "content": base64.b64encode(raw).decode(),
                    },
                    digest,
                    now,
                    now,
                )
            )
            if conv.scan is not None and keep_findings:
                await s.documents.put(
                    DocumentRecord(
                        project,
                        SCANS,
                        _key(conv.scan.scanner, subject.canonical),
                        {
                            "scanner": conv.scan.scanner,
                            "resource": subject.canonical,
                            "scannedAt": conv.scan.scanned_at.isoformat()
                            if conv.scan.scanned_at
                            else "",
                            "document": digest,
                            "occurrences": [
                                r.occurrence_id for r in plan.occurrences if r.kind in _SCAN_KINDS
                            ],
                        },
                        digest,
                        now,
                        now,
                    )
                )
            await s.documents.put(
                DocumentRecord(
                    project,
                    INGESTS,
                    ingest_id,
                    {
                        "document": digest,
                        "resource": subject.canonical,
                        "format": conv.format.value,
                        "occurrences": [r.occurrence_id for r in plan.occurrences],
                        # The mark of signed input: who vouched, and the attestation each
                        # vouching is filed as (the judge verifies those itself).
                        "attestedBy": _attested_by(att),
                    },
                    digest,
                    now,
                    now,
                )
            )
        self._changes.resources_changed([subject.canonical])
        for listener in self._listeners:
            listener(plan.occurrences)
        return IngestResult(
            conv.format.value,
            subject.canonical,
            digest,
            _counts(plan.occurrences),
            superseded,
            applied,
            warnings,
            attestations=_attestation_summary(att, conv),
        )

    async def _verify(
        self,
        project: str,
        subject: ImageReference,
        conv: Conversion,
        mode: str,
        named: tuple[str, ...],
        warnings: list[str],
    ) -> tuple[list[EnvelopeVerdict], dict[str, Attestor]]:
        """Verify the document's envelopes; refuse (required) or warn (optional) for those no
        attestor vouches for."""
        if not conv.envelopes:
            if mode == REQUIRED:
                raise InvalidArgument(
                    "signed ingest was asked for (signatures=required or attestor=…), but this "
                    f"{conv.format.value} document is not signed: send the DSSE envelope or "
                    ".intoto.jsonl bundle that carries it"
                )
            return [], {}
        async with self._store.session(readonly=True) as s:
            candidates = await candidate_attestors(s, project, named)
        for name, why in sorted(candidates.unusable.items()):
            if mode == REQUIRED and name in named:
                raise InvalidArgument(f"attestor {name} cannot be used: {why}")
            warnings.append(f"attestor {name} was not tried: {why}")
        verdicts = await verify_envelopes(
            conv.envelopes, subject, candidates.attestors, self._clock()
        )
        unverified = [v for v in verdicts if not v.verified]
        if unverified and mode == REQUIRED:
            first = unverified[0]
            raise InvalidArgument(
                f"envelope {first.index + 1} of {len(verdicts)} is not verified by any of "
                f"{len(candidates.attestors)} attestors, and signed ingest was asked for: the "
                "document is refused whole (send it with signatures=optional to store its "
                "facts as unattested)",
                details=first.reasons,
            )
        for v in unverified:
            warnings.append(
                f"envelope {v.index + 1} is not verified by any attestor, so its facts are "
                f"stored as unattested: {'; '.join(v.reasons)}"
            )
        return verdicts, candidates.attestors

    async def _supersede(
        self, s: UnitOfWork, project: str, subject: ImageReference, conv: Conversion
    ) -> tuple[int, bool]:
        if conv.scan is None:
            return 0, True
        prior = await s.documents.get(project, SCANS, _key(conv.scan.scanner, subject.canonical))
        if prior is None:
            return 0, True
        before = str(prior.data.get("scannedAt") or "")
        new = conv.scan.scanned_at
        if before and new is not None and new < parse_rfc3339(before):
            return 0, False
        removed: list[OccurrenceRecord] = []
        for occurrence_id in prior.data.get("occurrences") or []:
            # Read first: the deletion's event names the occurrence's kind.
            current = await s.occurrences.get(project, str(occurrence_id))
            if current is not None and await s.occurrences.delete(project, str(occurrence_id)):
                removed.append(current)
        await outbox.append(
            s, outbox.occurrence_events(EventType.OCCURRENCE_DELETED, removed, self._clock())
        )
        return len(removed), True

    async def _plan(self, s: UnitOfWork, project: str, conv: Conversion) -> _Plan:
        """Notes and occurrences as store records, validated; nothing is written here.

        A converter's output has one shape per kind, so what is the same for every item is
        checked once per document: the text of every item in one serialisation (NUL, lone
        surrogates), each distinct resource URI and note name once, and the enum walk only for
        the rare item the strict parser hands to the reference one (ADR 0085)."""
        plan = _Plan()
        now = self._clock()
        stamp = rfc3339(now)
        pb_now = timestamp_pb2.Timestamp()
        pb_now.FromDatetime(now)  # one instant for the whole document, converted once
        _storable(conv)
        # Only the stored notes' kinds matter here: read those, not the notes (a scan's
        # advisories are mostly stored already, and parsing them was a sixth of a stream).
        existing = await s.notes.kinds([(project, note_id) for note_id in conv.notes])
        kinds: dict[str, str] = {}
        for note_id, data in conv.notes.items():
            found = existing.get((project, note_id))
            if found is not None:
                kinds[note_id] = found
                continue
            what = f"note {note_id}"
            name = f"projects/{project}/notes/{note_id}"
            # The server's fields go into the constructor call (ADR 0207); no check reads them.
            note = strict_from_json(NotePB, data, name=name, create_time=pb_now, update_time=pb_now)
            strict = note is not None
            if note is None:
                note = note_from_json(data, what)
            kind = derive_kind(note, oneof="type", what=what)
            problems = note_problems(note, enums=not strict)
            if problems:
                raise InvalidArgument(f"{what}: {'; '.join(problems)}")
            if not strict:
                note.name = name
                note.create_time.CopyFrom(pb_now)
                note.update_time.CopyFrom(pb_now)
            note.kind = _kind_number(kind)
            kinds[note_id] = kind
            plan.notes.append(
                NoteRecord(project, note_id, kind, note, _stored_json(data, name, kind, stamp))
            )
        checked: set[tuple[str, str]] = set()
        ids = new_occurrence_ids(len(conv.occurrences))
        resource = conv.subject.canonical if conv.subject else ""
        for i, data in enumerate(conv.occurrences):
            what = f"occurrences[{i}]"
            occurrence_id = ids[i]
            name = f"projects/{project}/occurrences/{occurrence_id}"
            occ, strict = _occurrence(data, what, name, pb_now)
            kind = derive_kind(occ, oneof="details", what=what)
            problems = occurrence_problems(occ, enums=not strict, common=False)
            note_name: str = occ.note_name  # read once: each read decodes it again
            key = (occ.resource_uri, note_name)
            if key not in checked:
                problems += common_occurrence_problems(occ)
                checked.add(key)
            if problems:
                raise InvalidArgument(f"{what}: {'; '.join(problems)}")
            note_id = note_name.rsplit("/", 1)[1]
            if kinds.get(note_id) != kind:
                raise InvalidArgument(
                    f"note projects/{project}/notes/{note_id} is kind {kinds.get(note_id)}, "
                    f"not {kind}: it was created by someone else for another purpose"
                )
            occ.kind = _kind_number(kind)
            plan.occurrences.append(
                OccurrenceRecord(
                    project,
                    occurrence_id,
                    kind,
                    project,
                    note_id,
                    resource,
                    occ,
                    # The converter's JSON is already the message's JSON mapping (it parsed);
                    # storing it with the server-set fields skips a second rendering.
                    _stored_json(data, name, kind, stamp),
                )
            )
        return plan

    async def _apply_stored_vex(
        self, s: UnitOfWork, project: str, subject: ImageReference, plan: _Plan
    ) -> int:
        findings = [r for r in plan.occurrences if r.kind == "VULNERABILITY"]
        if not findings:
            return 0
        notes = await s.notes.page(
            project, Compare(FilterColumn.KIND, "VULNERABILITY_ASSESSMENT"), None, MAX_LISTED
        )
        claims = [c for c in (_claim_of(n) for n in notes) if c is not None]
        applied = 0
        for i, record in enumerate(plan.occurrences):
            if record.kind != "VULNERABILITY":
                continue
            for note_name, vid, state, justification, scope in claims:
                if _assess(record.occurrence, subject, note_name, vid, state, justification, scope):
                    plan.occurrences[i] = _rerendered(record)
                    applied += 1
                    break
        return applied

    async def _apply_new_vex(
        self, s: UnitOfWork, project: str, subject: ImageReference, conv: Conversion
    ) -> int:
        if not conv.vex:
            return 0
        where = And(
            (
                Compare(FilterColumn.KIND, "VULNERABILITY"),
                Compare(FilterColumn.RESOURCE, subject.canonical),
            )
        )
        stored = await s.occurrences.page(project, where, None, MAX_LISTED)
        applied = 0
        for record in stored:
            for claim in conv.vex:
                note_name = f"projects/{project}/notes/{claim.note_id}"
                if _assess(
                    record.occurrence,
                    subject,
                    note_name,
                    claim.vulnerability,
                    claim.status,
                    claim.justification,
                    claim.scope,
                ):
                    now = self._clock()
                    record.occurrence.update_time.FromDatetime(now)
                    await s.occurrences.replace(_rerendered(record))
                    await outbox.append(
                        s,
                        outbox.occurrence_events(
                            EventType.OCCURRENCE_UPDATED,
                            [record],
                            now,
                        ),
                    )
                    applied += 1
                    break
        return applied

    # ---------------------------------------------------------------- queries

    async def document(self, parent: str, digest: str) -> tuple[str, bytes]:
        project = parse_project_name(parent)
        async with self._store.session(readonly=True) as s:
            record = await s.documents.get(project, DOCUMENTS, digest)
        if record is None:
            raise NotFound(f"no document {digest} was ingested into project {project}")
        return str(record.data.get("format", "")), base64.b64decode(str(record.data["content"]))

    async def packages(self, parent: str, image: str) -> list[dict[str, Any]]:
        project = parse_project_name(parent)
        ref = _image(image)
        rows = await self._list(project, "PACKAGE", ref.canonical)
        out = []
        for r in rows:
            details = to_json(r.occurrence).get("package", {})
            out.append(
                {
                    "name": details.get("name", ""),
                    "version": details.get("version", {}).get("fullName", ""),
                    "purl": purl_of_package(details),
                    "license": details.get("license", {}).get("expression", ""),
                    "occurrence": r.occurrence.name,
                }
            )
        return sorted(out, key=lambda p: (p["name"], p["version"]))

    async def images_with(self, parent: str, purl: str) -> list[dict[str, str]]:
        project = parse_project_name(parent)
        try:
            pattern = canonical_purl(purl)
        except BadPurl as exc:
            raise InvalidArgument(str(exc)) from None
        rows = await self._list(project, "PACKAGE", None)
        out: dict[tuple[str, str], dict[str, str]] = {}
        for r in rows:
            details = to_json(r.occurrence).get("package", {})
            found = purl_of_package(details)
            if found and purl_matches(pattern, found):
                out[(r.resource, found)] = {"image": r.resource, "purl": found}
        return [out[k] for k in sorted(out)]

    async def _list(self, project: str, kind: str, resource: str | None) -> list[OccurrenceRecord]:
        """Every ``kind`` occurrence of the project (of one resource when given). More than
        :data:`MAX_LISTED` is refused, naming the bound: an answer built from the first
        ones would silently leave images or packages out."""
        where: Any = Compare(FilterColumn.KIND, kind)
        if resource is not None:
            where = And((where, Compare(FilterColumn.RESOURCE, resource)))
        rows: list[OccurrenceRecord] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                batch = await s.occurrences.page(project, where, after, self.list_page)
                rows.extend(batch)
                if len(rows) > self.max_listed:
                    scope = f"about {resource}" if resource is not None else "in the project"
                    raise PayloadTooLarge(
                        f"more than {self.max_listed} {kind} occurrences are stored {scope} "
                        f"in projects/{project}; this answer would leave some out. Narrow the "
                        "question (one image: GET …/images/packages?resourceUri=…), or use "
                        "reverse impact (GET …/impact?purl=…), which pages"
                    )
                if len(batch) < self.list_page:
                    break
                after = batch[-1].occurrence_id
        return rows


def _image(uri: str) -> ImageReference:
    ref = parse_image_reference(uri)
    if not ref.digest:
        raise InvalidArgument(
            f"resourceUri {uri!r} names no digest: facts are filed under "
            "registry/repository@sha256:… so that a tag moving never moves them"
        )
    return ref


def _stored_json(data: dict[str, Any], name: str, kind: str, stamp: str) -> dict[str, Any]:
    return {**data, "name": name, "kind": kind, "createTime": stamp, "updateTime": stamp}


def _storable(conv: Conversion) -> None:
    """Refuse, naming the item, text no backend can store: one serialisation of the whole
    conversion finds it; only then are the items looked at one by one."""
    try:
        raw = orjson.dumps([conv.notes, conv.occurrences])
        if b"\\u0000" not in raw:
            return
    except orjson.JSONEncodeError:
        pass
    for note_id, data in conv.notes.items():
        storable_json(data, f"note {note_id}")
    for i, data in enumerate(conv.occurrences):
        storable_json(data, f"occurrences[{i}]")


def _occurrence(
    data: dict[str, Any], what: str, name: str, now: timestamp_pb2.Timestamp
) -> tuple[Any, bool]:
    """Parse a converter's occurrence, with the server's ``name`` and times set over what
    it says, and whether the strict fast parser did it. The float ``cvssScore`` is set
    directly, because the fast JSON codec leaves float32 to the slow reference parser
    (ADR 0083)."""
    vuln = data.get("vulnerability")
    score = vuln.get("cvssScore") if isinstance(vuln, dict) else None
    if score is not None:
        assert isinstance(vuln, dict)
        data = {**data, "vulnerability": {k: v for k, v in vuln.items() if k != "cvssScore"}}
    occ = strict_from_json(OccurrencePB, data, name=name, create_time=now, update_time=now)
    strict = occ is not None
    if occ is None:
        occ = occurrence_from_json(data, what)
        occ.name = name
        occ.create_time.CopyFrom(now)
        occ.update_time.CopyFrom(now)
    if score is not None:
        occ.vulnerability.cvss_score = float(score)
    return occ, strict


@functools.cache
def _kind_number(kind: str) -> int:
    return int(NotePB.DESCRIPTOR.fields_by_name["kind"].enum_type.values_by_name[kind].number)


def _rerendered(record: OccurrenceRecord) -> OccurrenceRecord:
    return OccurrenceRecord(
        record.project,
        record.occurrence_id,
        record.kind,
        record.note_project,
        record.note_id,
        record.resource,
        record.occurrence,
        render_for_storage(record.occurrence, "occurrence"),
    )


def _claim_of(note: NoteRecord) -> tuple[str, str, str, str, VexScope] | None:
    va = note.note.vulnerability_assessment
    product = str(va.product.generic_uri)
    if not product:
        return None
    subs = tuple(p for p in str(va.product.name).split("\n") if p.startswith("pkg:"))
    state = (
        va.assessment.DESCRIPTOR.fields_by_name["state"]
        .enum_type.values_by_number[va.assessment.state]
        .name
    )
    jt = va.assessment.justification
    justification = (
        jt.DESCRIPTOR.fields_by_name["justification_type"]
        .enum_type.values_by_number[jt.justification_type]
        .name
    )
    return (
        f"projects/{note.project}/notes/{note.note_id}",
        str(va.assessment.vulnerability_id),
        state,
        "" if justification == "JUSTIFICATION_TYPE_UNSPECIFIED" else justification,
        VexScope(product, subs),
    )


def _finding_purl(v: Any) -> str:
    for part in str(v.extra_details).split(";"):
        if part.startswith("purl=pkg:"):
            return purl_or_none(part.removeprefix("purl=")) or ""
    return ""


def _assess(
    occ: Any,
    subject: ImageReference,
    note_name: str,
    vulnerability: str,
    state: str,
    justification: str,
    scope: VexScope,
) -> bool:
    """Set the occurrence's vexAssessment when the scoped statement speaks for it."""
    advisory = occ.note_name.rsplit("/", 1)[1]
    aliases = {advisory.upper()}
    for part in str(occ.vulnerability.extra_details).split(";"):
        if part.startswith("aliases="):
            aliases |= {a.upper() for a in part.removeprefix("aliases=").split(",") if a}
    if vulnerability.upper() not in aliases:
        return False
    if not scope_applies(scope, subject, _finding_purl(occ.vulnerability)):
        return False
    vex = occ.vulnerability.vex_assessment
    vex.Clear()
    vex.vulnerability_id = vulnerability
    vex.note_name = note_name
    vex.state = vex.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_name[state].number
    if justification:
        enum = vex.justification.DESCRIPTOR.fields_by_name["justification_type"].enum_type
        vex.justification.justification_type = enum.values_by_name[justification].number
    return True
