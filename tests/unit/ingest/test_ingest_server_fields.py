"""Ingest gives each message its server fields (name, create and update time) in the
constructor call that builds it (ADR 0207). Held two ways, on every real fixture: each stored
message is exactly what the reference parser makes of its stored JSON, and what building it
first and assigning the fields after (the former spelling) makes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format, timestamp_pb2

from chainproof.domain import protojson
from chainproof.domain.messages import NotePB, OccurrencePB, strict_from_json
from chainproof.errors import InvalidArgument
from chainproof.services.scribe.ingestion import IngestService
from chainproof.store.memory import MemoryStore
from unit.ingest.ingest_fixtures import FIXTURES, IMAGE

T0 = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
DOCUMENTS = sorted(
    str(p.relative_to(FIXTURES))
    for p in FIXTURES.rglob("*.json")
    if "golden" not in p.parts and "invalid" not in p.name
)


def _reference(cls: Any, document: Any) -> Any:
    msg = cls()
    json_format.ParseDict(dict(document), msg)
    return msg


@pytest.mark.parametrize("rel", DOCUMENTS)
async def test_stored_messages_are_their_stored_json(rel: str) -> None:
    store = MemoryStore()
    ingest = IngestService(store, clock=lambda: T0)
    with contextlib.suppress(InvalidArgument):  # a refused document stores nothing
        await ingest.ingest(
            "projects/proj",
            (FIXTURES / rel).read_bytes(),
            resource_uri="" if rel.startswith("provenance/") else IMAGE.canonical,
        )
    async with store.session(readonly=True) as s:
        notes = await s.notes.page("proj", None, None, 100_000)
        occurrences = await s.occurrences.page("proj", None, None, 100_000)
    stamp = "2026-12-03T12:00:00.123456Z"
    for n in notes:
        assert n.document is not None
        assert n.note == _reference(NotePB, n.document), n.note_id
        assert n.note.name == f"projects/proj/notes/{n.note_id}"
        assert n.document["createTime"] == n.document["updateTime"] == stamp
    for o in occurrences:
        assert o.document is not None
        assert o.occurrence == _reference(OccurrencePB, o.document), o.occurrence_id
        assert o.occurrence.name == f"projects/proj/occurrences/{o.occurrence_id}"
        assert o.document["createTime"] == o.document["updateTime"] == stamp


def _server_fields() -> dict[str, Any]:
    now = timestamp_pb2.Timestamp()
    now.FromDatetime(T0)
    return {"name": "projects/p/occurrences/x", "create_time": now, "update_time": now}


@pytest.mark.parametrize(
    "data",
    [
        {"resourceUri": "r", "noteName": "projects/p/notes/n", "package": {"name": "a"}},
        # What the document says of the server's fields is overwritten, as assigning did.
        {
            "noteName": "projects/p/notes/n",
            "name": "mine",
            "createTime": "2020-01-01T00:00:00Z",
            "update_time": "2021-01-01T00:00:00Z",
            "package": {"name": "a"},
        },
    ],
)
def test_server_fields_in_the_constructor_as_assigned_after(data: dict[str, Any]) -> None:
    server = _server_fields()
    at_once = strict_from_json(OccurrencePB, data, **server)
    after = protojson.build(OccurrencePB, data)
    after.name = server["name"]
    after.create_time.CopyFrom(server["create_time"])
    after.update_time.CopyFrom(server["update_time"])
    assert at_once == after
    assert at_once.SerializeToString(deterministic=True) == after.SerializeToString(
        deterministic=True
    )


def test_what_the_fast_path_refuses_is_still_refused_with_server_fields() -> None:
    data = {"noteName": "n", "createTime": "not a time", "package": {"name": "a"}}
    assert strict_from_json(OccurrencePB, data, **_server_fields()) is None
