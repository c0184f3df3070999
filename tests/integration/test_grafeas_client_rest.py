"""The official `grafeas` client (PyPI), REST transport, against a live chainproof server:
every method of grafeas.v1.Grafeas, unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.protobuf import field_mask_pb2
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import attestation as att_types
from grafeas.grafeas_v1.types import common, grafeas

from live import live_server

D = "sha256:" + "7" * 64


@pytest.fixture(scope="module")
def client(backend_url: str) -> Iterator[GrafeasClient]:
    with live_server(grpc_enabled=False, database_url=backend_url) as server:
        transport = transports.GrafeasRestTransport(
            host=server.base_url.removeprefix("http://"),
            url_scheme="http",
            credentials=AnonymousCredentials(),
        )
        yield GrafeasClient(transport=transport)


def attestation_occurrence(resource: str, note: str) -> grafeas.Occurrence:
    return grafeas.Occurrence(
        resource_uri=resource,
        note_name=note,
        attestation=att_types.AttestationOccurrence(
            serialized_payload=b"payload",
            signatures=[common.Signature(signature=b"sig", public_key_id="k1")],
        ),
    )


def test_every_method(client: GrafeasClient) -> None:
    parent = "projects/client-rest"
    note = client.create_note(
        parent=parent,
        note_id="qa",
        note=grafeas.Note(
            short_description="QA",
            attestation=att_types.AttestationNote(
                hint=att_types.AttestationNote.Hint(human_readable_name="qa")
            ),
        ),
    )
    assert note.name == f"{parent}/notes/qa" and note.kind == common.NoteKind.ATTESTATION
    assert client.get_note(name=note.name) == note

    batch = client.batch_create_notes(
        parent=parent,
        notes={f"n{i}": grafeas.Note(attestation=att_types.AttestationNote()) for i in range(3)},
    )
    assert sorted(n.name for n in batch.notes) == [f"{parent}/notes/n{i}" for i in range(3)]

    updated = client.update_note(
        name=note.name,
        note=grafeas.Note(short_description="QA team", long_description="not this"),
        update_mask=field_mask_pb2.FieldMask(paths=["short_description"]),
    )
    assert updated.short_description == "QA team" and updated.long_description == ""

    notes = list(
        client.list_notes(
            request=grafeas.ListNotesRequest(
                parent=parent, filter='kind="ATTESTATION"', page_size=2
            )
        )
    )
    assert len(notes) == 4  # the pager followed nextPageToken across pages

    occ = client.create_occurrence(
        parent=parent, occurrence=attestation_occurrence(f"gcr.io/x/a@{D}", note.name)
    )
    assert occ.kind == common.NoteKind.ATTESTATION
    assert client.get_occurrence(name=occ.name) == occ
    many = client.batch_create_occurrences(
        parent=parent,
        occurrences=[
            attestation_occurrence(f"https://gcr.io/x/b@{D}", note.name) for _ in range(5)
        ],
    )
    assert len(many.occurrences) == 5

    listed = list(
        client.list_occurrences(
            request=grafeas.ListOccurrencesRequest(
                parent=parent, filter=f'resourceUrl="gcr.io/x/b@{D}"', page_size=2
            )
        )
    )
    assert {o.name for o in listed} == {o.name for o in many.occurrences}
    by_note = list(
        client.list_note_occurrences(
            request=grafeas.ListNoteOccurrencesRequest(name=note.name, page_size=4)
        )
    )
    assert len(by_note) == 6
    assert client.get_occurrence_note(name=occ.name).name == note.name

    changed = client.update_occurrence(
        name=occ.name,
        occurrence=grafeas.Occurrence(remediation="rotate the key"),
        update_mask=field_mask_pb2.FieldMask(paths=["remediation"]),
    )
    assert changed.remediation == "rotate the key" and changed.resource_uri == occ.resource_uri

    client.delete_occurrence(name=occ.name)
    with pytest.raises(gexc.NotFound, match="does not exist"):
        client.get_occurrence(name=occ.name)
    client.delete_note(name=f"{parent}/notes/n0")
    with pytest.raises(gexc.NotFound):
        client.get_note(name=f"{parent}/notes/n0")


def test_errors_map_to_client_exceptions(client: GrafeasClient) -> None:
    parent = "projects/client-rest-errors"
    client.create_note(
        parent=parent, note_id="qa", note=grafeas.Note(attestation=att_types.AttestationNote())
    )
    with pytest.raises(gexc.Conflict, match="already exists"):
        client.create_note(
            parent=parent, note_id="qa", note=grafeas.Note(attestation=att_types.AttestationNote())
        )
    with pytest.raises(gexc.BadRequest, match="not supported on occurrences"):
        list(client.list_occurrences(parent=parent, filter='createTime="x"'))
    with pytest.raises(gexc.BadRequest, match="1 of 2 occurrences are invalid"):
        client.batch_create_occurrences(
            parent=parent,
            occurrences=[
                attestation_occurrence("r", f"{parent}/notes/qa"),
                attestation_occurrence("", f"{parent}/notes/qa"),
            ],
        )
    assert list(client.list_occurrences(parent=parent)) == []
