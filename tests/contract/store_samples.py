"""Sample records for the store contract tests.

Notes and occurrences are real Grafeas messages with the fields that are easy to lose on a
round trip: timestamps with nanoseconds, bytes, float32 scores, enums, repeated and nested
messages, and unicode. Judge documents and decisions carry JSON of every shape (nesting,
nulls, floats, big integers, unicode) and times that are not all in UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chainproof.domain.messages import NotePB, OccurrencePB
from chainproof.store.port import DecisionRecord, DocumentRecord, NoteRecord, OccurrenceRecord

_serial = itertools.count(1)

DIGEST = "sha256:" + "ab" * 32


def image(repo: str, digest: str = DIGEST) -> str:
    return f"registry.example.com/{repo}@{digest}"


def note_record(project: str, note_id: str, kind: str = "ATTESTATION", **fields: Any) -> NoteRecord:
    note: Any = NotePB()
    note.name = f"projects/{project}/notes/{note_id}"
    note.short_description = fields.get("short", f"note {note_id} ✓")
    note.long_description = "línea 1\nzeile 2 — 三 🔏 \u200b"
    note.related_url.add(url="https://example.com/ü", label="docs")
    note.related_note_names.append(f"projects/{project}/notes/other")
    note.create_time.seconds, note.create_time.nanos = 1_700_000_000, 123_456_789
    note.update_time.seconds, note.update_time.nanos = 1_700_000_001, next(_serial)
    note.expiration_time.seconds = 4_102_444_800  # 2100-01-01
    if kind == "VULNERABILITY":
        note.vulnerability.cvss_score = 9.8
        note.vulnerability.severity = 4  # HIGH
    elif kind == "BUILD":
        note.build.builder_version = "v1"
    else:
        note.attestation.hint.human_readable_name = f"attestor {note_id}"
    return NoteRecord(project, note_id, kind, note)


def occurrence_record(
    project: str,
    occurrence_id: str,
    *,
    resource: str | None = None,
    note: tuple[str, str] = ("notes-project", "note-1"),
    kind: str = "ATTESTATION",
) -> OccurrenceRecord:
    resource = resource if resource is not None else image("app")
    occ: Any = OccurrencePB()
    occ.name = f"projects/{project}/occurrences/{occurrence_id}"
    occ.resource_uri = "https://" + resource
    occ.note_name = f"projects/{note[0]}/notes/{note[1]}"
    occ.remediation = "upgrade → 2.0"
    occ.create_time.seconds, occ.create_time.nanos = 1_700_000_100, 1
    occ.update_time.seconds, occ.update_time.nanos = 1_700_000_200, 999_999_999
    if kind == "VULNERABILITY":
        occ.vulnerability.cvss_score = 7.3
        occ.vulnerability.short_description = "CVE-2024-0001"
        issue = occ.vulnerability.package_issue.add()
        issue.affected_package = "openssl"
        issue.affected_cpe_uri = "cpe:/o:debian:debian_linux:12"
    elif kind == "DSSE_ATTESTATION":
        occ.envelope.payload = b'\x00\xff{"_type": "https://in-toto.io/Statement/v1"}'
        occ.envelope.payload_type = "application/vnd.in-toto+json"
        occ.envelope.signatures.add(sig=bytes(range(256)), keyid="key-1")
        occ.dsse_attestation.envelope.CopyFrom(occ.envelope)
    else:
        occ.attestation.serialized_payload = bytes(range(256))
        occ.attestation.signatures.add(signature=b"\x01\x02\x00\x80", public_key_id="pgp:ABCD")
        occ.attestation.jwts.add(compact_jwt="a.b.c")
    return OccurrenceRecord(project, occurrence_id, kind, note[0], note[1], resource, occ)


#: A fixed instant the judge samples count from (microseconds included, to catch truncation).
T0 = datetime(2024, 3, 10, 23, 30, 15, 123456, tzinfo=UTC)
#: An offset east and west of UTC: the same instant must compare the same whatever its zone.
PLUS_2 = timezone(timedelta(hours=2))
MINUS_5 = timezone(timedelta(hours=-5))


def document_data(doc_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"attestors/{doc_id}",
        "description": "prüft Signaturen ✓ 🔏",
        "keys": [{"id": "pgp:ABCD", "algorithm": None}, {"id": "pkix:1", "pem": "-----BEGIN"}],
        "threshold": 2,
        "score": 0.1,
        "big": 2**53 + 1,
        "enabled": True,
        "empty": {},
        **extra,
    }


def document_record(
    project: str,
    collection: str,
    doc_id: str,
    *,
    etag: str = "etag-1",
    created: datetime = T0,
    updated: datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> DocumentRecord:
    return DocumentRecord(
        project=project,
        collection=collection,
        doc_id=doc_id,
        data=document_data(doc_id) if data is None else data,
        etag=etag,
        create_time=created,
        update_time=created if updated is None else updated,
    )


def decision_record(
    project: str,
    decision_id: str,
    *,
    time: datetime = T0,
    outcome: str = "ALLOW",
    namespace: str = "default",
    images: tuple[str, ...] = (),
    data: Mapping[str, Any] | None = None,
) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        project=project,
        time=time,
        outcome=outcome,
        namespace=namespace,
        images=images,
        data=(
            {"images": [{"image": i, "rule": "default", "reasons": []} for i in images]}
            if data is None
            else data
        ),
    )
