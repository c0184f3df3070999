"""A document refused whole leaves nothing behind — on memory, SQLite and PostgreSQL alike.

Each case first stores a real Trivy scan, then sends a document that is refused only after the
ingest has begun writing in its session (a newer scan supersedes the stored one first, so its
findings are deleted before the bad item is reached), or whose last write fails. The store must
then hold exactly what it held before: the old findings, no new notes, occurrences or
documents, no record that the refused document was ingested.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chainproof.domain.messages import note_from_json
from chainproof.errors import InvalidArgument
from chainproof.services.scribe.ingestion import DOCUMENTS, INGESTS, SCANS, IngestService
from chainproof.store.port import DocumentRecord, MetadataStore, NoteRecord, UnitOfWork

P = "refused"
IMAGE = "registry.example/team/buster@sha256:" + "e" * 64
TRIVY = Path(__file__).resolve().parents[1] / "fixtures/ingest/scans/trivy/debian-buster.json"


def newer_scan(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(TRIVY.read_bytes())
    doc["CreatedAt"] = "2021-09-01T00:00:00Z"  # later than the stored scan: it supersedes
    change(doc)
    return json.dumps(doc).encode()


async def snapshot(store: MetadataStore) -> dict[str, Any]:
    async with store.session(readonly=True) as s:
        notes = sorted(n.note_id for n in await s.notes.page(P, None, None, 10_000))
        occurrences = sorted(
            o.occurrence_id for o in await s.occurrences.page(P, None, None, 10_000)
        )
        documents = {
            c: sorted(d.doc_id for d in await s.documents.page(P, c, None, 10_000))
            for c in (DOCUMENTS, INGESTS, SCANS)
        }
        scans = await s.documents.page(P, SCANS, None, 10)
    return {
        "notes": notes,
        "occurrences": occurrences,
        "documents": documents,
        "scan": [dict(d.data) for d in scans],
    }


async def stored_scan(store: MetadataStore) -> tuple[IngestService, dict[str, Any]]:
    service = IngestService(store)
    result = await service.ingest(f"projects/{P}", TRIVY.read_bytes(), resource_uri=IMAGE)
    assert result.created == {"DISCOVERY": 1, "VULNERABILITY": 2}
    before = await snapshot(store)
    assert len(before["occurrences"]) == 3 and before["documents"][INGESTS]
    return service, before


async def test_a_bad_item_after_superseding_leaves_the_old_scan_and_nothing_new(
    store: MetadataStore,
) -> None:
    service, before = await stored_scan(store)

    def nul_in_a_title(doc: dict[str, Any]) -> None:
        doc["Results"][0]["Vulnerabilities"][1]["Title"] = "bad\x00title"

    with pytest.raises(InvalidArgument, match="U\\+0000"):
        await service.ingest(f"projects/{P}", newer_scan(nul_in_a_title), resource_uri=IMAGE)
    assert await snapshot(store) == before


async def test_a_note_of_another_kind_refuses_the_scan_and_keeps_the_old_one(
    store: MetadataStore,
) -> None:
    service, _ = await stored_scan(store)
    # Someone else created a note with the ID the new scan's advisory maps to, of another kind.
    async with store.session() as s:
        note = note_from_json({"package": {"name": "squatter"}})
        await s.notes.insert([NoteRecord(P, "CVE-2099-0001", "PACKAGE", note)])
    before = await snapshot(store)

    def new_advisory(doc: dict[str, Any]) -> None:
        doc["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"] = "CVE-2099-0001"

    with pytest.raises(InvalidArgument, match="is kind PACKAGE, not VULNERABILITY"):
        await service.ingest(f"projects/{P}", newer_scan(new_advisory), resource_uri=IMAGE)
    assert await snapshot(store) == before


class LastWriteFailed(Exception):
    pass


class _FailingLastWrite:
    """Our own store port, failing the last write of an ingest (its record in ``ingests``)."""

    def __init__(self, inner: MetadataStore) -> None:
        self._inner = inner

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
        async with self._inner.session(readonly=readonly) as s:
            real = s.documents.put

            async def put_document(record: DocumentRecord) -> None:
                if record.collection == INGESTS:
                    raise LastWriteFailed
                await real(record)

            s.documents.put = put_document  # type: ignore[method-assign]
            yield s


async def test_a_failure_at_the_last_write_leaves_nothing(store: MetadataStore) -> None:
    _, before = await stored_scan(store)
    failing = IngestService(_FailingLastWrite(store))  # type: ignore[arg-type]

    def one_finding(doc: dict[str, Any]) -> None:
        doc["Results"][0]["Vulnerabilities"] = doc["Results"][0]["Vulnerabilities"][:1]

    with pytest.raises(LastWriteFailed):
        await failing.ingest(f"projects/{P}", newer_scan(one_finding), resource_uri=IMAGE)
    assert await snapshot(store) == before
    sbom = (TRIVY.parents[2] / "sbom/alpine-cyclonedx.json").read_bytes()
    with pytest.raises(LastWriteFailed):
        await failing.ingest(f"projects/{P}", sbom, resource_uri=IMAGE)
    assert await snapshot(store) == before
