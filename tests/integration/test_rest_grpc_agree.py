"""One scenario, run through the official client's REST transport and its gRPC transport.

Both runs start from an empty server and make the same calls: create notes and occurrences,
list with filters across several pages, update with masks, and a series of mistakes. Every
outcome is reduced to a transport-free form (results as protobuf JSON with server-made IDs and
times replaced; errors as HTTP status, gRPC status name, message and detail lines), and the two
transcripts must be identical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import google.auth.credentials
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.protobuf import field_mask_pb2, json_format
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import attestation, common, package
from grafeas.grafeas_v1.types import grafeas as g

from live import live_server

P = "projects/agree"
IMAGE = "https://gcr.io/acme/app@sha256:" + "a" * 64
OTHER = "gcr.io/acme/other@sha256:" + "b" * 64
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The REST client prefixes messages with the request line; the server's text follows it.
_REQUEST_LINE = re.compile(r"^[A-Z]+ \S+: ")


def _rest_client(base_url: str) -> GrafeasClient:
    return GrafeasClient(
        transport=transports.GrafeasRestTransport(
            host=base_url.split("://", 1)[1],
            url_scheme="http",
            credentials=google.auth.credentials.AnonymousCredentials(),
        )
    )


def _grpc_client(target: str) -> GrafeasClient:
    return GrafeasClient(
        transport=transports.GrafeasGrpcTransport(channel=grpc.insecure_channel(target))
    )


class Transcript:
    """Outcomes of the scenario's steps, with server-made IDs replaced by creation order."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.steps: list[tuple[str, Any]] = []
        self._ids: dict[str, str] = {}

    def _id(self, match: re.Match[str]) -> str:
        return self._ids.setdefault(match.group(0), f"occ-{len(self._ids)}")

    def normalise(self, value: Any) -> Any:
        if isinstance(value, str):
            return _UUID.sub(self._id, value)
        if isinstance(value, dict):
            return {
                k: self.normalise(v)
                for k, v in value.items()
                if k not in ("createTime", "updateTime")
            }
        if isinstance(value, list):
            return [self.normalise(v) for v in value]
        return value

    def message(self, msg: Any) -> Any:
        return self.normalise(json_format.MessageToDict(type(msg).pb(msg)))

    def error(self, exc: gexc.GoogleAPICallError) -> dict[str, Any]:
        if self.transport == "rest":
            body = exc.response.json()["error"]  # type: ignore[union-attr]
            status = body["status"]
            details = [
                v["description"] for d in body.get("details", []) for v in d["fieldViolations"]
            ]
        else:
            assert exc.grpc_status_code is not None
            status = exc.grpc_status_code.name
            details = [v.description for d in exc.details for v in d.field_violations]
        return {
            "http": exc.code,
            "status": status,
            "message": self.normalise(_REQUEST_LINE.sub("", exc.message)),
            "details": self.normalise(details),
        }

    def step(self, label: str, call: Callable[[], Any], shape: Callable[[Any], Any]) -> Any:
        try:
            result = call()
        except gexc.GoogleAPICallError as exc:
            self.steps.append((label, {"error": self.error(exc)}))
            return None
        self.steps.append((label, shape(result)))
        return result


def _pages(t: Transcript, pager: Any, field: str) -> dict[str, Any]:
    sizes: list[int] = []
    names: list[str] = []
    for page in pager.pages:
        items = getattr(page, field)
        sizes.append(len(items))
        names += [t.normalise(i.name) for i in items]
        last_token = page.next_page_token
    assert last_token == ""
    return {"page_sizes": sizes, "names": sorted(names), "distinct": len(set(names))}


def _attestor() -> g.Note:
    return g.Note(
        short_description="release signer",
        attestation=attestation.AttestationNote(
            hint=attestation.AttestationNote.Hint(human_readable_name="release")
        ),
    )


def _pkg_note(name: str) -> g.Note:
    return g.Note(package=package.PackageNote(name=name))


def _installed(note: str, resource: str, name: str) -> g.Occurrence:
    return g.Occurrence(
        note_name=f"{P}/notes/{note}",
        resource_uri=resource,
        package=package.PackageOccurrence(name=name),
    )


def _signed() -> g.Occurrence:
    return g.Occurrence(
        note_name=f"{P}/notes/signer",
        resource_uri=IMAGE,
        attestation=attestation.AttestationOccurrence(
            serialized_payload=b"{}",
            signatures=[common.Signature(signature=b"sig", public_key_id="k1")],
        ),
    )


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def run_scenario(c: GrafeasClient, t: Transcript) -> None:
    msg = t.message
    names: Callable[[Any], Any] = lambda r: sorted(t.normalise([i.name for i in r]))  # noqa: E731

    # Notes: single, batch, and the mistakes around them.
    t.step("create note", lambda: c.create_note(parent=P, note_id="signer", note=_attestor()), msg)
    t.step(
        "duplicate note",
        lambda: c.create_note(parent=P, note_id="signer", note=_attestor()),
        msg,
    )
    t.step(
        "batch notes",
        lambda: c.batch_create_notes(
            parent=P, notes={"pkg-a": _pkg_note("a"), "pkg-b": _pkg_note("b")}
        ),
        lambda r: names(r.notes),
    )
    t.step(
        "batch notes with a bad one",
        lambda: c.batch_create_notes(parent=P, notes={"bad": g.Note(), "good": _pkg_note("g")}),
        msg,
    )
    t.step("note without an ID", lambda: c.create_note(parent=P, note_id="", note=_attestor()), msg)
    t.step(
        "note in a malformed project",
        lambda: c.create_note(parent="projects/bad!", note_id="x", note=_attestor()),
        msg,
    )

    # Occurrences.
    occ = t.step(
        "create occurrence", lambda: c.create_occurrence(parent=P, occurrence=_signed()), msg
    )
    t.step(
        "batch occurrences",
        lambda: c.batch_create_occurrences(
            parent=P,
            occurrences=[_installed("pkg-a", IMAGE, f"lib{i}") for i in range(25)]
            + [_installed("pkg-b", OTHER, f"tool{i}") for i in range(5)],
        ),
        # In creation order, so server-made IDs get the same placeholders in both runs.
        lambda r: [t.normalise(o.name) for o in r.occurrences],
    )
    t.step(
        "batch occurrences with a bad item",
        lambda: c.batch_create_occurrences(
            parent=P,
            occurrences=[
                _installed("pkg-a", IMAGE, "ok"),
                g.Occurrence(note_name=f"{P}/notes/pkg-a", package={"name": "no resource"}),
            ],
        ),
        msg,
    )
    t.step(
        "batch occurrences naming a missing note",
        lambda: c.batch_create_occurrences(
            parent=P, occurrences=[_installed("ghost", IMAGE, "x"), _installed("pkg-a", IMAGE, "y")]
        ),
        msg,
    )
    t.step(
        "occurrence of a missing note",
        lambda: c.create_occurrence(parent=P, occurrence=_installed("ghost", IMAGE, "x")),
        msg,
    )

    # Lists, filters and pages.
    t.step(
        "list package occurrences, 7 a page",
        lambda: c.list_occurrences(
            request=g.ListOccurrencesRequest(parent=P, filter='kind="PACKAGE"', page_size=7)
        ),
        lambda p: _pages(t, p, "occurrences"),
    )
    t.step(
        "list occurrences of the other image",
        lambda: c.list_occurrences(
            request=g.ListOccurrencesRequest(
                parent=P, filter=f'resourceUrl="https://{OTHER}" OR noteId="signer"', page_size=4
            )
        ),
        lambda p: _pages(t, p, "occurrences"),
    )
    t.step(
        "list notes that are not attestations",
        lambda: c.list_notes(
            request=g.ListNotesRequest(parent=P, filter='NOT kind="ATTESTATION"', page_size=1)
        ),
        lambda p: _pages(t, p, "notes"),
    )
    t.step(
        "list occurrences of a note",
        lambda: c.list_note_occurrences(
            request=g.ListNoteOccurrencesRequest(name=f"{P}/notes/pkg-b", page_size=2)
        ),
        lambda p: _pages(t, p, "occurrences"),
    )
    t.step(
        "filter on an unknown field",
        lambda: c.list_occurrences(request=g.ListOccurrencesRequest(parent=P, filter="colour=1")),
        msg,
    )
    t.step(
        "filter that does not parse",
        lambda: c.list_notes(request=g.ListNotesRequest(parent=P, filter='kind="PACKAGE" AND')),
        msg,
    )
    t.step(
        "negative page size",
        lambda: c.list_notes(request=g.ListNotesRequest(parent=P, page_size=-1)),
        msg,
    )
    first = c.list_occurrences(request=g.ListOccurrencesRequest(parent=P, page_size=1))
    t.step(
        "a page token of another list",
        lambda: c.list_notes(
            request=g.ListNotesRequest(parent=P, page_token=first.next_page_token)
        ),
        msg,
    )

    # Updates with masks.
    note_name = f"{P}/notes/signer"
    t.step(
        "update note short description",
        lambda: c.update_note(
            name=note_name,
            note=g.Note(short_description="signs releases", long_description="not masked"),
            update_mask=_mask("short_description"),
        ),
        msg,
    )
    t.step(
        "update note, mask names nothing",
        lambda: c.update_note(name=note_name, note=g.Note(), update_mask=_mask("colour")),
        msg,
    )
    t.step(
        "update note, mask names an output-only field",
        lambda: c.update_note(name=note_name, note=g.Note(), update_mask=_mask("create_time")),
        msg,
    )
    t.step(
        "update note, change its kind",
        lambda: c.update_note(name=note_name, note=_pkg_note("x"), update_mask=_mask("package")),
        msg,
    )
    if occ is not None:
        t.step(
            "update occurrence remediation",
            lambda: c.update_occurrence(
                name=occ.name,
                occurrence=g.Occurrence(remediation="rotate keys"),
                update_mask=_mask("remediation"),
            ),
            msg,
        )
        t.step(
            "update occurrence resource (immutable)",
            lambda: c.update_occurrence(
                name=occ.name,
                occurrence=g.Occurrence(resource_uri=OTHER),
                update_mask=_mask("resource_uri"),
            ),
            msg,
        )
        t.step("note of occurrence", lambda: c.get_occurrence_note(name=occ.name), msg)
        other_project = occ.name.replace(P, "projects/elsewhere")
        t.step(
            "occurrence through another project",
            lambda: c.get_occurrence(name=other_project),
            msg,
        )
        t.step("delete occurrence", lambda: c.delete_occurrence(name=occ.name), lambda r: r)
        t.step("get deleted occurrence", lambda: c.get_occurrence(name=occ.name), msg)

    t.step("get note in a malformed project", lambda: c.get_note(name="projects/-x/notes/n"), msg)
    t.step("get missing note", lambda: c.get_note(name=f"{P}/notes/ghost"), msg)
    t.step("delete note", lambda: c.delete_note(name=f"{P}/notes/pkg-b"), lambda r: r)
    t.step("delete it again", lambda: c.delete_note(name=f"{P}/notes/pkg-b"), lambda r: r)


@pytest.fixture(scope="module")
def transcripts() -> dict[str, Transcript]:
    result: dict[str, Transcript] = {}
    for transport in ("rest", "grpc"):
        # A fresh server each: both runs start from nothing and make identical calls.
        with live_server(grpc_enabled=True) as srv:
            client = (
                _rest_client(srv.base_url) if transport == "rest" else _grpc_client(srv.grpc_target)
            )
            t = Transcript(transport)
            run_scenario(client, t)
            result[transport] = t
    return result


def test_rest_and_grpc_tell_the_same_story(transcripts: dict[str, Transcript]) -> None:
    rest, grpc_ = transcripts["rest"].steps, transcripts["grpc"].steps
    assert [label for label, _ in rest] == [label for label, _ in grpc_]
    for (label, on_rest), (_, on_grpc) in zip(rest, grpc_, strict=True):
        assert on_rest == on_grpc, label


def test_the_scenario_exercises_the_codes_it_means_to(transcripts: dict[str, Transcript]) -> None:
    # Guard against a scenario that "agrees" because both runs failed the same boring way.
    outcomes = dict(transcripts["grpc"].steps)
    statuses = {
        label: o["error"]["status"]
        for label, o in outcomes.items()
        if isinstance(o, dict) and "error" in o
    }
    assert statuses == {
        "duplicate note": "ALREADY_EXISTS",
        "batch notes with a bad one": "INVALID_ARGUMENT",
        "note without an ID": "INVALID_ARGUMENT",
        "note in a malformed project": "INVALID_ARGUMENT",
        "batch occurrences with a bad item": "INVALID_ARGUMENT",
        "batch occurrences naming a missing note": "INVALID_ARGUMENT",
        "occurrence of a missing note": "NOT_FOUND",
        "filter on an unknown field": "INVALID_ARGUMENT",
        "filter that does not parse": "INVALID_ARGUMENT",
        "negative page size": "INVALID_ARGUMENT",
        "a page token of another list": "INVALID_ARGUMENT",
        "update note, mask names nothing": "INVALID_ARGUMENT",
        "update note, mask names an output-only field": "INVALID_ARGUMENT",
        "update note, change its kind": "INVALID_ARGUMENT",
        "update occurrence resource (immutable)": "INVALID_ARGUMENT",
        "occurrence through another project": "NOT_FOUND",
        "get deleted occurrence": "NOT_FOUND",
        "get note in a malformed project": "INVALID_ARGUMENT",
        "get missing note": "NOT_FOUND",
        "delete it again": "NOT_FOUND",
    }
    listing = outcomes["list package occurrences, 7 a page"]
    assert listing["page_sizes"] == [7, 7, 7, 7, 2]
    assert listing["distinct"] == 30
    assert len(outcomes["batch occurrences"]) == 30
    assert outcomes["update note short description"]["shortDescription"] == "signs releases"
    assert "longDescription" not in outcomes["update note short description"]
    batch_error = outcomes["batch occurrences with a bad item"]["error"]
    assert "occurrences[1]" in batch_error["message"]
    assert batch_error["http"] == 400
