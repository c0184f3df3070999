"""REST routes of grafeas.v1.Grafeas and grafeas.v1.project.Projects.

The same paths, verbs, query parameters and JSON as the Grafeas REST gateway (protobuf JSON
mapping). The v1alpha1 walkthrough shapes are accepted on the same routes (see
domain.legacy) and under the ``/v1alpha1`` prefix. Each route only translates: names from the
path, messages from the body, a call to GrafeasService, JSON out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from chainproof.api.rest.auth import collection as all_projects
from chainproof.api.rest.auth import note as one_note
from chainproof.api.rest.auth import public, require_attach, requires
from chainproof.api.rest.body import decode_json, int_param
from chainproof.api.rest.deps import Grafeas as Service
from chainproof.domain.legacy import upgrade_note_json, upgrade_occurrence_json
from chainproof.domain.masks import split_mask_string
from chainproof.domain.messages import note_from_json, occurrence_from_json, to_json
from chainproof.domain.names import parse_note_name
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p

JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}

Filter = Annotated[str, Query(alias="filter", description='e.g. kind="ATTESTATION"')]
PageSize = Annotated[str | None, Query(alias="pageSize", description="default 20, max 1000")]
PageToken = Annotated[str, Query(alias="pageToken")]
UpdateMask = Annotated[str | None, Query(alias="updateMask", description="comma-separated")]


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


class EncodedItems:
    """Encodes list items to JSON as the service sizes them, keeping the bytes so that the
    response is made of the very encodings the page was bounded by (rendered once)."""

    def __init__(self, render: Callable[[Any], Any] = to_json) -> None:
        self._render = render
        self.parts: list[bytes] = []

    def __call__(self, item: Any) -> int:
        part = orjson.dumps(self._render(item))
        self.parts.append(part)
        return len(part) + 1  # and its comma

    def response(self, key: str, count: int, token: str) -> Response:
        # The service sized items in order, and at most one past the page's end.
        return list_response(key, self.parts[:count], token)


def list_response(key: str, parts: Iterable[bytes], token: str) -> Response:
    """``{"<key>": [parts…], "nextPageToken": …}`` made of items already encoded."""
    body = b"".join((b'{"', key.encode(), b'":[', b",".join(parts), b"]"))
    if token:
        body += b',"nextPageToken":' + orjson.dumps(token)
    return Response(body + b"}", media_type="application/json")


def _mask(update_mask: str | None, body: dict[str, Any]) -> list[str]:
    # The gateway puts the mask in the query; some clients send it in the body instead.
    raw = update_mask if update_mask is not None else body.pop("updateMask", None)
    if raw is not None and not isinstance(raw, str):
        raise InvalidArgument("updateMask must be a comma-separated string of field paths")
    return split_mask_string(raw)


async def _body_object(request: Request, what: str) -> dict[str, Any]:
    data = decode_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidArgument(f"request body must be a JSON object holding {what}")
    return data


router = APIRouter()


def _notes_of(occurrences: Iterable[Any]) -> list[tuple[str, str]]:
    """The (project, note) each occurrence attaches to, for Grafeas' attachOccurrence rule.
    An occurrence without a well-formed note name attaches to nothing here; the service
    refuses it with the right message."""
    found: list[tuple[str, str]] = []
    for occ in occurrences:
        try:
            name = parse_note_name(occ.note_name)
        except InvalidArgument:
            continue
        found.append((name.project, name.note_id))
    return found


def _routes(prefix: str, *, include_in_schema: bool) -> APIRouter:
    r = APIRouter(prefix=prefix, tags=["grafeas"], include_in_schema=include_in_schema)

    # ------------------------------------------------------------------ notes
    @r.post(
        "/projects/{project}/notes:batchCreate",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.NOTES_CREATE)],
    )
    async def batch_create_notes(project: str, request: Request, svc: Service) -> Response:
        body = await _body_object(request, "notes")
        raw_notes = body.get("notes")
        if not isinstance(raw_notes, dict):
            raise InvalidArgument(
                'notes must be a JSON object mapping note IDs to notes: {"notes": {"id": {…}}}'
            )
        notes = {
            note_id: note_from_json(upgrade_note_json(n), f"notes[{note_id!r}]")
            for note_id, n in raw_notes.items()
        }
        created = await svc.batch_create_notes(f"projects/{project}", notes)
        return json_response({"notes": [to_json(n) for n in created]})

    @r.post(
        "/projects/{project}/notes",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.NOTES_CREATE)],
    )
    async def create_note(
        project: str,
        request: Request,
        svc: Service,
        note_id: Annotated[str, Query(alias="noteId")] = "",
    ) -> Response:
        note = note_from_json(upgrade_note_json(await _body_object(request, "a note")))
        created = await svc.create_note(f"projects/{project}", note_id, note)
        return json_response(to_json(created))

    @r.get("/projects/{project}/notes", dependencies=[requires(p.NOTES_LIST)])
    async def list_notes(
        project: str,
        svc: Service,
        filter_: Filter = "",
        page_size: PageSize = None,
        page_token: PageToken = "",
    ) -> Response:
        encoded = EncodedItems()
        page = await svc.list_notes(
            f"projects/{project}",
            filter_,
            int_param(page_size, "pageSize"),
            page_token,
            size_of=encoded,
        )
        return encoded.response("notes", len(page.items), page.next_page_token)

    @r.get("/projects/{project}/notes/{note_id}", dependencies=[requires(p.NOTES_GET, on=one_note)])
    async def get_note(project: str, note_id: str, svc: Service) -> Response:
        return json_response(to_json(await svc.get_note(f"projects/{project}/notes/{note_id}")))

    @r.patch(
        "/projects/{project}/notes/{note_id}",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.NOTES_UPDATE, on=one_note)],
    )
    async def update_note(
        project: str,
        note_id: str,
        request: Request,
        svc: Service,
        update_mask: UpdateMask = None,
    ) -> Response:
        body = await _body_object(request, "a note")
        mask = _mask(update_mask, body)
        note = note_from_json(upgrade_note_json(body))
        updated = await svc.update_note(f"projects/{project}/notes/{note_id}", note, mask)
        return json_response(to_json(updated))

    @r.delete(
        "/projects/{project}/notes/{note_id}", dependencies=[requires(p.NOTES_DELETE, on=one_note)]
    )
    async def delete_note(project: str, note_id: str, svc: Service) -> Response:
        await svc.delete_note(f"projects/{project}/notes/{note_id}")
        return json_response({})

    @r.get(
        "/projects/{project}/notes/{note_id}/occurrences",
        dependencies=[requires(p.NOTES_LIST_OCCURRENCES, on=one_note)],
    )
    async def list_note_occurrences(
        project: str,
        note_id: str,
        svc: Service,
        filter_: Filter = "",
        page_size: PageSize = None,
        page_token: PageToken = "",
    ) -> Response:
        encoded = EncodedItems()
        page = await svc.list_note_occurrences(
            f"projects/{project}/notes/{note_id}",
            filter_,
            int_param(page_size, "pageSize"),
            page_token,
            size_of=encoded,
        )
        return encoded.response("occurrences", len(page.items), page.next_page_token)

    # ------------------------------------------------------------------ occurrences
    @r.post(
        "/projects/{project}/occurrences:batchCreate",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.OCCURRENCES_CREATE)],
    )
    async def batch_create_occurrences(project: str, request: Request, svc: Service) -> Response:
        body = await _body_object(request, "occurrences")
        raw = body.get("occurrences")
        if not isinstance(raw, list):
            raise InvalidArgument('occurrences must be a JSON array: {"occurrences": [{…}, …]}')
        occurrences = [
            occurrence_from_json(upgrade_occurrence_json(o), f"occurrences[{i}]")
            for i, o in enumerate(raw)
        ]
        await require_attach(request, _notes_of(occurrences))
        created = await svc.create_occurrence_records(f"projects/{project}", occurrences)
        rendered = [r.document or to_json(r.occurrence) for r in created]
        return json_response({"occurrences": rendered})

    @r.post(
        "/projects/{project}/occurrences",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.OCCURRENCES_CREATE)],
    )
    async def create_occurrence(project: str, request: Request, svc: Service) -> Response:
        body = await _body_object(request, "an occurrence")
        occ = occurrence_from_json(upgrade_occurrence_json(body))
        await require_attach(request, _notes_of([occ]))
        created = await svc.create_occurrence(f"projects/{project}", occ)
        return json_response(to_json(created))

    @r.get("/projects/{project}/occurrences", dependencies=[requires(p.OCCURRENCES_LIST)])
    async def list_occurrences(
        project: str,
        svc: Service,
        filter_: Filter = "",
        page_size: PageSize = None,
        page_token: PageToken = "",
    ) -> Response:
        # Served as stored, never decoded into protobuf and rendered again (ADR 0136).
        page = await svc.list_occurrences_json(
            f"projects/{project}", filter_, int_param(page_size, "pageSize"), page_token
        )
        return list_response(
            "occurrences", (item.json for item in page.items), page.next_page_token
        )

    @r.get(
        "/projects/{project}/occurrences/{occurrence_id}",
        dependencies=[requires(p.OCCURRENCES_GET)],
    )
    async def get_occurrence(project: str, occurrence_id: str, svc: Service) -> Response:
        occ = await svc.get_occurrence(f"projects/{project}/occurrences/{occurrence_id}")
        return json_response(to_json(occ))

    @r.patch(
        "/projects/{project}/occurrences/{occurrence_id}",
        openapi_extra=JSON_BODY,
        dependencies=[requires(p.OCCURRENCES_UPDATE)],
    )
    async def update_occurrence(
        project: str,
        occurrence_id: str,
        request: Request,
        svc: Service,
        update_mask: UpdateMask = None,
    ) -> Response:
        body = await _body_object(request, "an occurrence")
        mask = _mask(update_mask, body)
        occ = occurrence_from_json(upgrade_occurrence_json(body))
        if not mask or {m.strip() for m in mask} & {"note_name", "noteName"}:
            # Moving an occurrence to a note is attaching it there.
            await require_attach(request, _notes_of([occ]))
        updated = await svc.update_occurrence(
            f"projects/{project}/occurrences/{occurrence_id}", occ, mask
        )
        return json_response(to_json(updated))

    @r.delete(
        "/projects/{project}/occurrences/{occurrence_id}",
        dependencies=[requires(p.OCCURRENCES_DELETE)],
    )
    async def delete_occurrence(project: str, occurrence_id: str, svc: Service) -> Response:
        await svc.delete_occurrence(f"projects/{project}/occurrences/{occurrence_id}")
        return json_response({})

    @r.get(
        "/projects/{project}/occurrences/{occurrence_id}/notes",
        dependencies=[requires(p.OCCURRENCES_GET)],
    )
    async def get_occurrence_note(project: str, occurrence_id: str, svc: Service) -> Response:
        note = await svc.get_occurrence_note(f"projects/{project}/occurrences/{occurrence_id}")
        return json_response(to_json(note))

    # A '/' inside an ID splits the path; say so instead of "no route". Only notes and
    # occurrences: other collections (attestors, decisions) have routes of their own.
    for collection in ("notes", "occurrences"):

        async def slash_in_id(project: str, rest: str, collection: str = collection) -> Response:
            raise InvalidArgument(
                f"{collection[:-1]} ID {rest!r} must not contain '/': expected "
                f"projects/{{project}}/{collection}/{{id}}"
            )

        r.add_api_route(
            f"/projects/{{project}}/{collection}/{{rest:path}}",
            slash_in_id,
            methods=["GET", "PATCH", "DELETE"],
            include_in_schema=False,
            dependencies=[public("answers only that an ID may not contain '/'")],
        )

    # ------------------------------------------------------------------ projects
    @r.post(
        "/projects",
        openapi_extra=JSON_BODY,
        tags=["projects"],
        dependencies=[requires(p.PROJECTS_CREATE, on=all_projects)],
    )
    async def create_project(request: Request, svc: Service) -> Response:
        body = await _body_object(request, "a project")
        name = body.get("name")
        unknown = set(body) - {"name"}
        if unknown:
            raise InvalidArgument(
                f"unknown fields in project: {', '.join(sorted(unknown))}; only name is accepted"
            )
        if not isinstance(name, str):
            raise InvalidArgument('project name is required: {"name": "projects/{project_id}"}')
        return json_response({"name": await svc.create_project(name)})

    @r.get(
        "/projects", tags=["projects"], dependencies=[requires(p.PROJECTS_LIST, on=all_projects)]
    )
    async def list_projects(
        svc: Service,
        filter_: Filter = "",
        page_size: PageSize = None,
        page_token: PageToken = "",
    ) -> Response:
        encoded = EncodedItems(lambda name: {"name": name})
        page = await svc.list_projects(
            filter_, int_param(page_size, "pageSize"), page_token, size_of=encoded
        )
        return encoded.response("projects", len(page.items), page.next_page_token)

    @r.get("/projects/{project}", tags=["projects"], dependencies=[requires(p.PROJECTS_GET)])
    async def get_project(project: str, svc: Service) -> Response:
        return json_response({"name": await svc.get_project(f"projects/{project}")})

    @r.delete("/projects/{project}", tags=["projects"], dependencies=[requires(p.PROJECTS_DELETE)])
    async def delete_project(project: str, svc: Service) -> Response:
        await svc.delete_project(f"projects/{project}")
        return json_response({})

    return r


router.include_router(_routes("/v1", include_in_schema=True))
router.include_router(_routes("/v1alpha1", include_in_schema=False))
