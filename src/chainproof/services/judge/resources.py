"""Attestors and policies as API resources, in Binary Authorization's shape.

Owns the rules around the documents: names, parsing (through :mod:`chainproof.policy`),
etags for optimistic concurrency, and referential checks (an attestor's note must be an
ATTESTATION note; a policy may only name attestors that exist; an attestor a policy uses
cannot be deleted). Evaluation lives in :mod:`chainproof.services.judge.judging`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chainproof.domain.bounds import storable_json
from chainproof.domain.events import EventType
from chainproof.domain.names import (
    parse_attestor_name,
    parse_note_name,
    parse_project_name,
    validate_resource_id,
)
from chainproof.domain.pagination import (
    ListScope,
    PageTokenCodec,
    bounded_count,
    json_size,
    page_size,
)
from chainproof.errors import (
    AlreadyExists,
    ChainproofError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
)
from chainproof.policy.attestors import Attestor, AttestorPublicKey, parse_attestor
from chainproof.policy.binauthz import Policy, parse_policy
from chainproof.services import outbox
from chainproof.services.common import Clock, Page, utc_now
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.store.port import DocumentRecord, MetadataStore, UnitOfWork

ATTESTORS = "attestors"
POLICIES = "policy"
_POLICY_ID = "policy"


def _attestor_key(name: str) -> tuple[str, str]:
    """(project, attestor ID): where an attestor's document is stored."""
    parsed = parse_attestor_name(name)
    return parsed.project, parsed.attestor_id


def content_etag(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def _check_etag(given: str | None, current: DocumentRecord | None, what: str) -> None:
    if given and (current is None or given != current.etag):
        raise FailedPrecondition(
            f"{what} has changed since it was read (etag {given!r} is stale): get it again, "
            "reapply your change and retry"
        )


@dataclass(frozen=True, slots=True)
class JudgeDocument:
    """An attestor or a policy as stored: its name, the document in Binary Authorization's
    shape (as parsed and normalised: PGP key IDs are fingerprints), its etag and when it last
    changed. Entrypoints render it (:func:`chainproof.api.render.judge_document_json`)."""

    name: str
    data: Mapping[str, Any]
    etag: str
    update_time: datetime


def _document(name: str, record: DocumentRecord) -> JudgeDocument:
    return JudgeDocument(name, record.data, record.etag, record.update_time)


#: What rendering adds to a document (``,"updateTime":"…","etag":"…"``), at most.
_STAMP_BYTES = 80


def document_size(doc: JudgeDocument) -> int:
    """Bytes ``doc`` takes as one element of a JSON array once rendered, at most: for callers
    that bound a page without rendering it (the REST route measures its own encoding)."""
    return json_size(doc.data) + _STAMP_BYTES


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    """What a project's reviews are judged by: its policy (None: no policy), the attestors the
    policy names, and those among them whose stored documents cannot be read, with why."""

    policy: Policy | None
    attestors: dict[str, Attestor]
    unusable: dict[str, str]


class JudgeResources:
    """CRUD for attestors and the per-project policy."""

    def __init__(
        self,
        store: MetadataStore,
        tokens: PageTokenCodec,
        clock: Clock = utc_now,
        changes: ChangeFeed | None = None,
    ):
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._changes = changes or ChangeFeed()

    # ----------------------------------------------------------------- attestors

    async def create_attestor(self, parent: str, attestor_id: str, data: Any) -> JudgeDocument:
        project = parse_project_name(parent)
        if not attestor_id:
            raise InvalidArgument("attestorId is required: the client chooses attestor IDs")
        validate_resource_id(attestor_id, what="attestor ID")
        name = f"projects/{project}/attestors/{attestor_id}"
        attestor = self._parse_attestor(data, name)
        async with self._store.session() as s:
            if await s.documents.get(project, ATTESTORS, attestor_id) is not None:
                raise AlreadyExists(f"attestor {name} already exists")
            await self._check_note(s, attestor)
            record = self._record(project, ATTESTORS, attestor_id, attestor.to_dict(), None)
            await s.documents.put(record)
            await self._announce(s, EventType.ATTESTOR_CHANGED, project, name, "created")
        self._changes.configuration_changed()
        return _document(name, record)

    async def get_attestor(self, name: str) -> JudgeDocument:
        project, attestor_id = _attestor_key(name)
        async with self._store.session(readonly=True) as s:
            record = await s.documents.get(project, ATTESTORS, attestor_id)
        if record is None:
            raise NotFound(f"attestor {name} does not exist")
        return _document(name, record)

    async def load_config(self, project: str) -> JudgeConfig:
        """A project's policy and the attestors it names, read in one session.

        An attestor whose stored document cannot be read is reported in
        ``JudgeConfig.unusable`` with the reason, instead of failing the whole load: only the
        reviews whose rule names that attestor fail on it."""
        async with self._store.session(readonly=True) as s:
            record = await s.documents.get(project, POLICIES, _POLICY_ID)
            if record is None:
                return JudgeConfig(None, {}, {})
            policy = parse_policy(record.data)
            attestors, unusable = await _read_attestors(s, policy.referenced_attestors())
            return JudgeConfig(policy, attestors, unusable)

    async def attestors(self, names: frozenset[str]) -> tuple[dict[str, Attestor], dict[str, str]]:
        """The named attestors that exist (parsed), and those that cannot be read with why."""
        async with self._store.session(readonly=True) as s:
            return await _read_attestors(s, names)

    async def project_attestors(
        self, project: str, limit: int
    ) -> tuple[dict[str, Attestor], dict[str, str]]:
        """Every attestor of ``project`` (parsed), and those that cannot be read with why;
        more than ``limit`` is refused rather than answered in part."""
        names: list[str] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                batch = await s.documents.page(project, ATTESTORS, after, min(limit + 1, 1000))
                names += [f"projects/{project}/attestors/{r.doc_id}" for r in batch]
                if len(names) > limit:
                    raise PayloadTooLarge(
                        f"projects/{project} has more than {limit} attestors; chainproof reads "
                        "at most that many to answer this question"
                    )
                if len(batch) < min(limit + 1, 1000):
                    break
                after = batch[-1].doc_id
            return await _read_attestors(s, frozenset(names))

    async def list_attestors(
        self,
        parent: str,
        size: int | None,
        token: str,
        *,
        size_of: Callable[[JudgeDocument], int] | None = None,
    ) -> Page[JudgeDocument]:
        """One page of a project's attestors, bounded by count and by ``size_of`` (the bytes
        each takes in the answer: entrypoints pass their own encoder, so the bound is exact;
        by default, :func:`document_size`)."""
        project = parse_project_name(parent)
        limit = page_size(size)
        scope = ListScope(ATTESTORS, parent, "")
        after = self._tokens.decode(scope, token) if token else None
        async with self._store.session(readonly=True) as s:
            rows = await s.documents.page(project, ATTESTORS, after, limit + 1)
        items = [_document(f"projects/{project}/attestors/{r.doc_id}", r) for r in rows]
        # Bounded by count and by bytes; the token resumes after the last item returned.
        count = bounded_count(
            items, limit, size_of or document_size, lambda a: f"attestor {a.name}"
        )
        next_token = self._tokens.encode(scope, rows[count - 1].doc_id) if len(rows) > count else ""
        return Page(items[:count], next_token)

    async def update_attestor(self, name: str, data: Any) -> JudgeDocument:
        project, attestor_id = _attestor_key(name)
        etag = data.get("etag") if isinstance(data, dict) else None
        attestor = self._parse_attestor(data, name)
        async with self._store.session() as s:
            current = await s.documents.get(project, ATTESTORS, attestor_id, for_update=True)
            if current is None:
                raise NotFound(f"attestor {name} does not exist")
            _check_etag(etag, current, f"attestor {name}")
            await self._check_note(s, attestor)
            record = self._record(project, ATTESTORS, attestor_id, attestor.to_dict(), current)
            await s.documents.put(record)
            await self._announce(s, EventType.ATTESTOR_CHANGED, project, name, "updated")
        self._changes.configuration_changed()
        return _document(name, record)

    async def delete_attestor(self, name: str) -> None:
        project, attestor_id = _attestor_key(name)
        async with self._store.session() as s:
            if await s.documents.get(project, ATTESTORS, attestor_id) is None:
                raise NotFound(f"attestor {name} does not exist")
            policy = await s.documents.get(project, POLICIES, _POLICY_ID)
            if policy is not None and name in parse_policy(policy.data).referenced_attestors():
                raise FailedPrecondition(
                    f"attestor {name} is required by the policy of projects/{project}: remove it "
                    "from the policy first"
                )
            await s.documents.delete(project, ATTESTORS, attestor_id)
            await self._announce(s, EventType.ATTESTOR_CHANGED, project, name, "deleted")
        self._changes.configuration_changed()

    def _parse_attestor(self, data: Any, name: str) -> Attestor:
        if isinstance(data, dict) and data.get("name") not in (None, "", name):
            raise InvalidArgument(
                f"attestor name {data.get('name')!r} does not match {name!r}: leave it empty"
            )
        attestor = replace(parse_attestor(data), name=name)
        return replace(attestor, public_keys=_checked_keys(attestor))

    async def _check_note(self, s: UnitOfWork, attestor: Attestor) -> None:
        note_name = parse_note_name(
            attestor.note_reference, field="userOwnedGrafeasNote.noteReference"
        )
        note = await s.notes.get(note_name.project, note_name.note_id)
        if note is None:
            raise FailedPrecondition(
                f"userOwnedGrafeasNote.noteReference {note_name} does not exist: create the "
                "ATTESTATION note first (POST /v1/projects/"
                f"{note_name.project}/notes?noteId={note_name.note_id})"
            )
        if note.kind != "ATTESTATION":
            raise FailedPrecondition(
                f"userOwnedGrafeasNote.noteReference {note_name} is a {note.kind} note: an "
                "attestor needs an ATTESTATION note"
            )

    # ----------------------------------------------------------------- policy

    async def get_policy(self, parent: str) -> JudgeDocument:
        project = parse_project_name(parent)
        async with self._store.session(readonly=True) as s:
            record = await s.documents.get(project, POLICIES, _POLICY_ID)
        if record is None:
            raise NotFound(
                f"projects/{project} has no policy yet: PUT /v1/projects/{project}/policy "
                "(until then every admission in this project is denied)"
            )
        return _document(f"projects/{project}/policy", record)

    async def put_policy(self, parent: str, data: Any) -> JudgeDocument:
        project = parse_project_name(parent)
        name = f"projects/{project}/policy"
        if isinstance(data, dict) and data.get("name") not in (None, "", name):
            raise InvalidArgument(
                f"policy name {data.get('name')!r} does not match {name!r}: leave it empty"
            )
        etag = data.get("etag") if isinstance(data, dict) else None
        policy = replace(parse_policy(data), name=name)
        async with self._store.session() as s:
            current = await s.documents.get(project, POLICIES, _POLICY_ID, for_update=True)
            _check_etag(etag, current, name)
            missing = []
            for attestor in sorted(policy.referenced_attestors()):
                a_project, a_id = _attestor_key(attestor)
                if await s.documents.get(a_project, ATTESTORS, a_id) is None:
                    missing.append(attestor)
            if missing:
                raise FailedPrecondition(
                    "the policy requires attestors that do not exist: "
                    + ", ".join(missing)
                    + "; create them first (POST /v1/projects/{p}/attestors?attestorId=…)"
                )
            record = self._record(project, POLICIES, _POLICY_ID, policy.to_dict(), current)
            await s.documents.put(record)
            change = "created" if current is None else "updated"
            await self._announce(s, EventType.POLICY_CHANGED, project, name, change)
        self._changes.configuration_changed()
        return _document(name, record)

    # ----------------------------------------------------------------- helpers

    async def _announce(
        self, s: UnitOfWork, kind: EventType, project: str, name: str, change: str
    ) -> None:
        # In the unit of work that makes the change: the event commits with it (the outbox).
        await outbox.append(s, [outbox.resource_event(kind, project, name, change, self._clock())])

    def _record(
        self,
        project: str,
        collection: str,
        doc_id: str,
        data: dict[str, Any],
        current: DocumentRecord | None,
    ) -> DocumentRecord:
        storable_json(data, "the policy" if collection == POLICIES else f"attestor {doc_id}")
        now = self._clock()
        return DocumentRecord(
            project=project,
            collection=collection,
            doc_id=doc_id,
            data=data,
            etag=content_etag(data),
            create_time=current.create_time if current else now,
            update_time=now,
        )


async def _read_attestors(
    s: UnitOfWork, names: frozenset[str]
) -> tuple[dict[str, Attestor], dict[str, str]]:
    found: dict[str, Attestor] = {}
    unusable: dict[str, str] = {}
    for name in sorted(names):
        try:
            project, attestor_id = _attestor_key(name)
        except InvalidArgument:
            continue  # a malformed name is an unknown attestor: the evaluator denies on it
        record = await s.documents.get(project, ATTESTORS, attestor_id)
        if record is None:
            continue
        try:
            found[name] = parse_attestor(record.data)
        except ChainproofError as exc:
            # Written through the API it was valid; stored data can still be damaged (or
            # written by an older version). That must cost only the rules that need it.
            problems = "; ".join(exc.details) if exc.details else ""
            unusable[name] = exc.message + (f" ({problems})" if problems else "")
    return found, unusable


def _checked_keys(attestor: Attestor) -> tuple[AttestorPublicKey, ...]:
    """Load every key once, so a broken key is refused now rather than at admission time.

    A PGP key's ID becomes its fingerprint, as Binary Authorization does."""
    loaded, unusable = attestor.loaded_keys()
    if unusable:
        raise InvalidArgument(
            "the attestor has unusable public keys",
            details=[f"userOwnedGrafeasNote.publicKeys[{u.index}]: {u.reason}" for u in unusable],
        )
    keys: list[AttestorPublicKey] = []
    for key, public in loaded:
        if public is not None and key.ascii_armored_pgp_public_key is not None:
            # As in Binary Authorization, a PGP key's ID is its fingerprint in upper-case hex,
            # whatever was given: a long key ID, a lower-case or 0x-prefixed fingerprint (all
            # name the key, and crypto/ has checked that they do) would otherwise never equal
            # the fingerprint a verification reports.
            key = replace(key, id=public.key_id)
        keys.append(key)
    return tuple(keys)
