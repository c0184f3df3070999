"""One coroutine per RPC, and the translation of outcomes to gRPC status.

Each RPC only moves fields: names, filters, page sizes and tokens, masks and messages from the
request into :class:`GrafeasService`, and the result into the response message. Every rule
(names, validation, filters, tokens, masks, batch atomicity) is the service's, so REST and gRPC
cannot disagree.

:func:`unary_handler` wraps an RPC with what every call shares: the client's deadline, the
error tree mapped to a status with the same message text as REST (detail lines included, and
also attached as ``google.rpc.BadRequest`` like the REST body), and a generic INTERNAL for bugs
with the traceback kept in the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grafeas.grafeas_v1.types import grafeas as _g

from chainproof.api.grpc.descriptors import EmptyPB, Schema, schema
from chainproof.domain.pagination import proto_size
from chainproof.errors import (
    GRPC_CODE_NUMBERS,
    ChainproofError,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
)
from chainproof.services.scribe.grafeas import GrafeasService

log = structlog.get_logger("chainproof.api.grpc")

Rpc = Callable[[Any], Awaitable[Any]]

# Raw protobuf classes of the list and batch responses (the proto-plus wrappers are slower).
_ListOccurrencesResponse: Any = _g.ListOccurrencesResponse.pb()
_BatchCreateOccurrencesResponse: Any = _g.BatchCreateOccurrencesResponse.pb()
_ListNotesResponse: Any = _g.ListNotesResponse.pb()
_BatchCreateNotesResponse: Any = _g.BatchCreateNotesResponse.pb()
_ListNoteOccurrencesResponse: Any = _g.ListNoteOccurrencesResponse.pb()

#: The trailer that carries a google.rpc.Status; google-api-core and grpc-status read it.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def status_message(exc: ChainproofError) -> str:
    """The status text: the same string the REST error body carries in ``message``."""
    return exc.message if not exc.details else exc.message + ": " + "; ".join(exc.details)


def _status_trailer(code: grpc.StatusCode, message: str, details: tuple[str, ...]) -> bytes:
    status = status_pb2.Status(code=code.value[0], message=message)
    if details:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="", description=d)
                for d in details
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        status.details.append(packed)
    return bytes(status.SerializeToString())


def grpc_status_code(exc: ChainproofError) -> grpc.StatusCode:
    number = GRPC_CODE_NUMBERS.get(exc.grpc_code, code_pb2.UNKNOWN)
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


def unary_handler(
    method: str, rpc: Rpc, request_type: Any = None
) -> Callable[[Any, Any], Awaitable[Any]]:
    """Wrap ``rpc`` as a ``grpc.aio`` unary-unary behaviour named ``method``.

    With ``request_type`` the behaviour takes the raw request bytes and decodes them itself:
    a deserializer registered with grpc that fails gives the caller UNKNOWN and an exception
    class name, where a malformed request deserves INVALID_ARGUMENT and a sentence.
    """

    async def call(request: Any, context: Any) -> Any:
        if request_type is not None:
            request = _decode(request_type, request)
        remaining = context.time_remaining()
        if remaining is None:
            return await rpc(request)
        # Work past the deadline is wasted: the client has already given up. The scope tells
        # our own timeout apart from a TimeoutError raised inside the service (a bug).
        scope = asyncio.timeout(max(remaining, 0.0))
        try:
            async with scope:
                return await rpc(request)
        except TimeoutError:
            if not scope.expired():
                raise
        raise DeadlineExceeded(
            f"{method} did not finish before the deadline the client set; "
            "retry with a longer deadline"
        )

    async def handle(request: Any, context: Any) -> Any:
        error: ChainproofError
        try:
            return await call(request, context)
        except ChainproofError as exc:
            error = exc
            if isinstance(exc, Internal):
                log.error("internal error", rpc=method, error=exc.message)
        except Exception:
            # A bug: the traceback goes to the log, the caller learns only that it happened.
            log.exception("unhandled error", rpc=method)
            error = Internal("internal error; the server log has the details")
        code = grpc_status_code(error)
        message = status_message(error)
        trailer = _status_trailer(code, message, error.details)
        await context.abort(code, message, trailing_metadata=((STATUS_DETAILS_KEY, trailer),))

    return handle


def _decode(request_type: Any, data: bytes) -> Any:
    try:
        return request_type.FromString(data)
    except DecodeError as exc:
        raise InvalidArgument(
            f"the request is not a valid {request_type.DESCRIPTOR.full_name} message: {exc}"
        ) from exc


def _size(value: int) -> int | None:
    # proto3 cannot tell 0 from unset; both mean "the default page size", as over REST.
    return value or None


class GrafeasRpcs:
    """grafeas.v1.Grafeas: each method is named after its RPC and takes the raw request.

    The CamelCase names are the RPC names, so the server finds each method by its RPC name.
    """

    def __init__(self, service: GrafeasService) -> None:
        self._svc = service

    # ------------------------------------------------------------------ occurrences
    async def GetOccurrence(self, req: Any) -> Any:
        return await self._svc.get_occurrence(req.name)

    async def ListOccurrences(self, req: Any) -> Any:
        page = await self._svc.list_occurrences(
            req.parent, req.filter, _size(req.page_size), req.page_token
        )
        return _ListOccurrencesResponse(
            occurrences=page.items, next_page_token=page.next_page_token
        )

    async def DeleteOccurrence(self, req: Any) -> Any:
        await self._svc.delete_occurrence(req.name)
        return EmptyPB()

    async def CreateOccurrence(self, req: Any) -> Any:
        return await self._svc.create_occurrence(req.parent, req.occurrence)

    async def BatchCreateOccurrences(self, req: Any) -> Any:
        created = await self._svc.batch_create_occurrences(req.parent, list(req.occurrences))
        return _BatchCreateOccurrencesResponse(occurrences=created)

    async def UpdateOccurrence(self, req: Any) -> Any:
        return await self._svc.update_occurrence(
            req.name, req.occurrence, list(req.update_mask.paths)
        )

    async def GetOccurrenceNote(self, req: Any) -> Any:
        return await self._svc.get_occurrence_note(req.name)

    # ------------------------------------------------------------------ notes
    async def GetNote(self, req: Any) -> Any:
        return await self._svc.get_note(req.name)

    async def ListNotes(self, req: Any) -> Any:
        page = await self._svc.list_notes(
            req.parent, req.filter, _size(req.page_size), req.page_token
        )
        return _ListNotesResponse(notes=page.items, next_page_token=page.next_page_token)

    async def DeleteNote(self, req: Any) -> Any:
        await self._svc.delete_note(req.name)
        return EmptyPB()

    async def CreateNote(self, req: Any) -> Any:
        return await self._svc.create_note(req.parent, req.note_id, req.note)

    async def BatchCreateNotes(self, req: Any) -> Any:
        # A protobuf map has no order; sort so "which items are bad" reads the same each time.
        notes = {note_id: req.notes[note_id] for note_id in sorted(req.notes)}
        created = await self._svc.batch_create_notes(req.parent, notes)
        return _BatchCreateNotesResponse(notes=created)

    async def UpdateNote(self, req: Any) -> Any:
        return await self._svc.update_note(req.name, req.note, list(req.update_mask.paths))

    async def ListNoteOccurrences(self, req: Any) -> Any:
        page = await self._svc.list_note_occurrences(
            req.name, req.filter, _size(req.page_size), req.page_token
        )
        return _ListNoteOccurrencesResponse(
            occurrences=page.items, next_page_token=page.next_page_token
        )


class ProjectsRpcs:
    """grafeas.v1.project.Projects, on the message classes built in :mod:`.descriptors`."""

    def __init__(self, service: GrafeasService, messages: Schema | None = None) -> None:
        self._svc = service
        self._m = messages or schema()

    async def CreateProject(self, req: Any) -> Any:
        if not req.project.name:
            # REST says the same for a body without a name.
            raise InvalidArgument('project name is required: {"name": "projects/{project_id}"}')
        return self._m.project(name=await self._svc.create_project(req.project.name))

    async def GetProject(self, req: Any) -> Any:
        return self._m.project(name=await self._svc.get_project(req.name))

    async def ListProjects(self, req: Any) -> Any:
        page = await self._svc.list_projects(
            req.filter, _size(req.page_size), req.page_token, size_of=self._project_size
        )
        return self._m.list_projects_response(
            projects=[self._m.project(name=n) for n in page.items],
            next_page_token=page.next_page_token,
        )

    def _project_size(self, name: str) -> int:
        return proto_size(self._m.project(name=name))

    async def DeleteProject(self, req: Any) -> Any:
        await self._svc.delete_project(req.name)
        return EmptyPB()
