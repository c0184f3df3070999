"""Every grafeas.v1.Grafeas RPC through the official client over a real gRPC channel.

The server is the one ``chainproof serve`` runs (tests/live.py); the client is the ``grafeas``
package's ``GrafeasClient`` on its gRPC transport, unchanged. The full round trip runs on the
memory store and again on SQLite.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.protobuf import field_mask_pb2
from grafeas.grafeas_v1 import GrafeasAsyncClient, GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import attestation, common, package
from grafeas.grafeas_v1.types import grafeas as g

from live import LiveServer, live_server

IMAGE = "https://gcr.io/acme/app@sha256:" + "a" * 64
OTHER_IMAGE = "https://gcr.io/acme/other@sha256:" + "b" * 64


def attestor_note(hint: str = "release signer") -> g.Note:
    return g.Note(
        short_description="who vouches for releases",
        attestation=attestation.AttestationNote(
            hint=attestation.AttestationNote.Hint(human_readable_name=hint)
        ),
    )


def package_note(name: str = "openssl") -> g.Note:
    return g.Note(package=package.PackageNote(name=name))


def signed(note_name: str, resource: str = IMAGE) -> g.Occurrence:
    return g.Occurrence(
        note_name=note_name,
        resource_uri=resource,
        attestation=attestation.AttestationOccurrence(
            serialized_payload=b"payload",
            signatures=[common.Signature(signature=b"sig", public_key_id="key-1")],
        ),
    )


def installed(note_name: str, resource: str = IMAGE, name: str = "openssl") -> g.Occurrence:
    return g.Occurrence(
        note_name=note_name,
        resource_uri=resource,
        package=package.PackageOccurrence(name=name),
    )


def grpc_client(target: str) -> GrafeasClient:
    return GrafeasClient(
        transport=transports.GrafeasGrpcTransport(channel=grpc.insecure_channel(target))
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=True) as srv:
        yield srv


@pytest.fixture
def client(server: LiveServer) -> GrafeasClient:
    return grpc_client(server.grpc_target)


def _stores() -> list[str]:
    stores = ["memory"]
    if importlib.util.find_spec("chainproof.store.factory") is not None:
        stores.append("sqlite")
    return stores


@pytest.mark.parametrize("store", _stores())
def test_every_rpc_round_trips_through_the_official_client(store: str, tmp_path: Path) -> None:
    url = "memory://" if store == "memory" else "sqlite:///" + str(tmp_path / "db.sqlite")
    with live_server(grpc_enabled=True, database_url=url) as srv:
        c = grpc_client(srv.grpc_target)
        parent = "projects/rt"

        # CreateNote / GetNote / ListNotes
        note = c.create_note(parent=parent, note_id="signer", note=attestor_note())
        assert note.name == "projects/rt/notes/signer"
        assert note.kind == common.NoteKind.ATTESTATION
        assert note.create_time and note.create_time == note.update_time
        assert c.get_note(name=note.name) == note
        assert [n.name for n in c.list_notes(parent=parent)] == [note.name]

        # BatchCreateNotes
        made = c.batch_create_notes(
            parent=parent, notes={"pkg-a": package_note("a"), "pkg-b": package_note("b")}
        )
        assert sorted(n.name for n in made.notes) == [
            "projects/rt/notes/pkg-a",
            "projects/rt/notes/pkg-b",
        ]

        # UpdateNote with a mask: only the masked field changes.
        updated = c.update_note(
            name=note.name,
            note=g.Note(short_description="new words", long_description="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["short_description"]),
        )
        assert updated.short_description == "new words"
        assert updated.long_description == ""
        assert updated.attestation.hint.human_readable_name == "release signer"
        assert updated.create_time == note.create_time

        # CreateOccurrence / GetOccurrence / GetOccurrenceNote
        occ = c.create_occurrence(parent=parent, occurrence=signed(note.name))
        assert occ.name.startswith("projects/rt/occurrences/")
        assert occ.kind == common.NoteKind.ATTESTATION
        assert c.get_occurrence(name=occ.name) == occ
        assert c.get_occurrence_note(name=occ.name).name == note.name

        # BatchCreateOccurrences / ListOccurrences / ListNoteOccurrences
        batch = c.batch_create_occurrences(
            parent=parent,
            occurrences=[
                installed("projects/rt/notes/pkg-a"),
                installed("projects/rt/notes/pkg-b", OTHER_IMAGE, "b"),
            ],
        )
        assert len(batch.occurrences) == 2
        assert len(list(c.list_occurrences(parent=parent))) == 3
        assert [o.name for o in c.list_note_occurrences(name=note.name)] == [occ.name]

        # UpdateOccurrence with a mask
        remarked = c.update_occurrence(
            name=occ.name,
            occurrence=g.Occurrence(remediation="rebuild"),
            update_mask=field_mask_pb2.FieldMask(paths=["remediation"]),
        )
        assert remarked.remediation == "rebuild"
        assert remarked.attestation.serialized_payload == b"payload"

        # DeleteOccurrence / DeleteNote
        c.delete_occurrence(name=occ.name)
        with pytest.raises(gexc.NotFound):
            c.get_occurrence(name=occ.name)
        c.delete_note(name="projects/rt/notes/signer")
        with pytest.raises(gexc.NotFound, match="note projects/rt/notes/signer does not exist"):
            c.get_note(name="projects/rt/notes/signer")


def test_pager_walks_every_page_and_keeps_the_filter(client: GrafeasClient) -> None:
    parent = "projects/pages"
    client.create_note(parent=parent, note_id="pkg", note=package_note())
    client.create_note(parent=parent, note_id="sig", note=attestor_note())
    created = client.batch_create_occurrences(
        parent=parent,
        occurrences=[installed(f"{parent}/notes/pkg", name=f"p{i}") for i in range(45)],
    ).occurrences
    client.batch_create_occurrences(
        parent=parent, occurrences=[signed(f"{parent}/notes/sig") for _ in range(7)]
    )

    pager = client.list_occurrences(
        request=g.ListOccurrencesRequest(parent=parent, filter='kind="PACKAGE"', page_size=10)
    )
    pages = list(pager.pages)
    assert [len(p.occurrences) for p in pages] == [10, 10, 10, 10, 5]
    assert pages[-1].next_page_token == ""
    seen = [o.name for p in pages for o in p.occurrences]
    assert sorted(seen) == sorted(o.name for o in created)
    assert len(set(seen)) == 45

    notes = client.list_notes(
        request=g.ListNotesRequest(parent=parent, filter='kind="ATTESTATION"', page_size=1)
    )
    assert [n.name for n in notes] == [f"{parent}/notes/sig"]

    by_note = client.list_note_occurrences(
        request=g.ListNoteOccurrencesRequest(name=f"{parent}/notes/sig", page_size=3)
    )
    assert len(list(by_note)) == 7

    images = client.list_occurrences(
        parent=parent, filter=f'resourceUrl="{IMAGE}" AND NOT kind="ATTESTATION"'
    )
    assert len(list(images)) == 45


def test_a_page_token_from_another_list_is_refused(client: GrafeasClient) -> None:
    parent = "projects/tokens"
    client.create_note(parent=parent, note_id="pkg", note=package_note())
    client.batch_create_occurrences(
        parent=parent, occurrences=[installed(f"{parent}/notes/pkg") for _ in range(3)]
    )
    first = client.list_occurrences(request=g.ListOccurrencesRequest(parent=parent, page_size=1))
    token = first.next_page_token
    assert token
    with pytest.raises(gexc.InvalidArgument):
        client.list_notes(request=g.ListNotesRequest(parent=parent, page_token=token))


def test_unknown_filter_fields_are_invalid_not_ignored(client: GrafeasClient) -> None:
    with pytest.raises(gexc.InvalidArgument, match="resourceUrl"):
        list(client.list_occurrences(parent="projects/f", filter='colour="blue"'))


def test_batch_of_occurrences_is_atomic_and_names_the_bad_item(client: GrafeasClient) -> None:
    parent = "projects/atomic"
    client.create_note(parent=parent, note_id="pkg", note=package_note())
    good = installed(f"{parent}/notes/pkg")
    no_resource = g.Occurrence(
        note_name=f"{parent}/notes/pkg", package=package.PackageOccurrence(name="x")
    )
    with pytest.raises(gexc.InvalidArgument) as err:
        client.batch_create_occurrences(parent=parent, occurrences=[good, no_resource, good])
    assert "1 of 3 occurrences are invalid; nothing was created" in err.value.message
    assert "occurrences[1]" in err.value.message
    assert err.value.details  # google.rpc.BadRequest, as in the REST body
    with pytest.raises(gexc.InvalidArgument, match=r"occurrences\[0\].*does not exist"):
        client.batch_create_occurrences(
            parent=parent, occurrences=[installed(f"{parent}/notes/missing"), good]
        )
    assert list(client.list_occurrences(parent=parent)) == []


def test_batch_of_notes_is_atomic(client: GrafeasClient) -> None:
    parent = "projects/atomic-notes"
    client.create_note(parent=parent, note_id="taken", note=package_note())
    with pytest.raises(gexc.AlreadyExists, match="projects/atomic-notes/notes/taken"):
        client.batch_create_notes(
            parent=parent, notes={"fresh": package_note(), "taken": package_note()}
        )
    with pytest.raises(gexc.InvalidArgument, match="notes\\['empty'\\]"):
        client.batch_create_notes(parent=parent, notes={"fresh": package_note(), "empty": g.Note()})
    assert [n.name for n in client.list_notes(parent=parent)] == [f"{parent}/notes/taken"]


def test_errors_map_to_grpc_codes(client: GrafeasClient) -> None:
    parent = "projects/errs"
    client.create_note(parent=parent, note_id="n", note=package_note())
    with pytest.raises(gexc.AlreadyExists, match="note projects/errs/notes/n already exists"):
        client.create_note(parent=parent, note_id="n", note=package_note())
    with pytest.raises(gexc.NotFound):
        client.get_note(name="projects/errs/notes/absent")
    with pytest.raises(gexc.InvalidArgument, match="expected the form"):
        client.get_note(name="notes/n")
    with pytest.raises(gexc.InvalidArgument, match="not a valid project ID"):
        client.list_notes(parent="projects/bad project")
    with pytest.raises(gexc.InvalidArgument, match="noteId is required"):
        client.create_note(parent=parent, note_id="", note=package_note())
    with pytest.raises(gexc.InvalidArgument, match="updateMask path 'colour'"):
        client.update_note(
            name="projects/errs/notes/n",
            note=package_note(),
            update_mask=field_mask_pb2.FieldMask(paths=["colour"]),
        )
    with pytest.raises(gexc.NotFound, match="create it first"):
        client.create_occurrence(parent=parent, occurrence=installed("projects/errs/notes/nope"))


def test_an_occurrence_stays_in_its_project(client: GrafeasClient) -> None:
    client.create_note(parent="projects/home", note_id="pkg", note=package_note())
    occ = client.create_occurrence(
        parent="projects/home", occurrence=installed("projects/home/notes/pkg")
    )
    occurrence_id = occ.name.rsplit("/", 1)[1]
    with pytest.raises(gexc.NotFound):
        client.get_occurrence(name=f"projects/away/occurrences/{occurrence_id}")
    with pytest.raises(gexc.NotFound):
        client.delete_occurrence(name=f"projects/away/occurrences/{occurrence_id}")
    # A name in the request naming another project is output-only: ignored, never trusted.
    moved = installed("projects/home/notes/pkg")
    moved.name = "projects/away/occurrences/x"
    assert client.create_occurrence(parent="projects/home", occurrence=moved).name.startswith(
        "projects/home/occurrences/"
    )
    with pytest.raises(gexc.InvalidArgument, match="immutable"):
        client.update_occurrence(
            name=occ.name,
            occurrence=installed("projects/home/notes/pkg", OTHER_IMAGE),
            update_mask=field_mask_pb2.FieldMask(paths=["resource_uri"]),
        )
    assert client.get_occurrence(name=occ.name).resource_uri == IMAGE


async def test_async_client_over_grpc_asyncio(server: LiveServer) -> None:
    channel = grpc.aio.insecure_channel(server.grpc_target)
    try:
        client = GrafeasAsyncClient(
            transport=transports.GrafeasGrpcAsyncIOTransport(channel=channel)
        )
        note = await client.create_note(
            parent="projects/async", note_id="signer", note=attestor_note()
        )
        occ = await client.create_occurrence(parent="projects/async", occurrence=signed(note.name))
        assert (await client.get_occurrence(name=occ.name)).note_name == note.name
        pager = await client.list_occurrences(
            request=g.ListOccurrencesRequest(parent="projects/async", page_size=1)
        )
        assert [o.name async for o in pager] == [occ.name]
        with pytest.raises(gexc.NotFound):
            await client.get_note(name="projects/async/notes/absent")
    finally:
        await channel.close()
