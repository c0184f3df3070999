"""Authentication and authorization for gRPC: one server interceptor, one table of rules.

:data:`RULES` declares, per full method name, the permission an RPC needs and how to find the
resource in its request (its ``parent`` or ``name``); the interceptor refuses any method not
in the table (health and reflection excepted: they reveal nothing), so a new RPC cannot ship
open by accident. Writing occurrences also needs ``notes.attachOccurrence`` on each note they
attach to (Grafeas' rule). The caller's principal comes from the ``authorization: Bearer``
metadata or, on mutual TLS, the verified client certificate — through the same
AccessControl as REST, so both transports decide alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509

from chainproof.api.grpc.descriptors import (
    GRAFEAS_METHODS,
    GRAFEAS_SERVICE,
    PROJECTS_SERVICE,
    schema,
)
from chainproof.api.grpc.handlers import (
    STATUS_DETAILS_KEY,
    _decode,
    _status_trailer,
    grpc_status_code,
    status_message,
)
from chainproof.domain.names import parse_note_name, parse_occurrence_name, parse_project_name
from chainproof.errors import ChainproofError, InvalidArgument, PermissionDenied, Unauthenticated
from chainproof.iam import permissions as p
from chainproof.iam.authorizer import Resource
from chainproof.services.access.authn import Credentials
from chainproof.services.access.control import AccessControl, Operation

ResourceOf = Callable[[Any], Resource]
AttachOf = Callable[[Any], Iterable[str]]


def _parent(req: Any) -> Resource:
    return Resource(parse_project_name(req.parent))


def _note(req: Any) -> Resource:
    name = parse_note_name(req.name)
    return Resource(name.project, name.note_id)


def _occurrence(req: Any) -> Resource:
    return Resource(parse_occurrence_name(req.name).project)


def _project(req: Any) -> Resource:
    return Resource(parse_project_name(req.name))


def _collection(_req: Any) -> Resource:
    return Resource()


@dataclass(frozen=True)
class Rule:
    permission: str
    on: ResourceOf
    #: Note names whose attachOccurrence the request also needs.
    attaches: AttachOf = field(default=lambda _req: ())


def _one(req: Any) -> Iterable[str]:
    return [req.occurrence.note_name]


def _many(req: Any) -> Iterable[str]:
    return [o.note_name for o in req.occurrences]


def _updated(req: Any) -> Iterable[str]:
    paths = set(req.update_mask.paths)
    if not paths or paths & {"note_name", "noteName"}:
        return [req.occurrence.note_name]
    return []


_G = f"/{GRAFEAS_SERVICE}/"
_P = f"/{PROJECTS_SERVICE}/"

RULES: dict[str, Rule] = {
    _G + "GetOccurrence": Rule(p.OCCURRENCES_GET, _occurrence),
    _G + "ListOccurrences": Rule(p.OCCURRENCES_LIST, _parent),
    _G + "DeleteOccurrence": Rule(p.OCCURRENCES_DELETE, _occurrence),
    _G + "CreateOccurrence": Rule(p.OCCURRENCES_CREATE, _parent, _one),
    _G + "BatchCreateOccurrences": Rule(p.OCCURRENCES_CREATE, _parent, _many),
    _G + "UpdateOccurrence": Rule(p.OCCURRENCES_UPDATE, _occurrence, _updated),
    _G + "GetOccurrenceNote": Rule(p.OCCURRENCES_GET, _occurrence),
    _G + "GetNote": Rule(p.NOTES_GET, _note),
    _G + "ListNotes": Rule(p.NOTES_LIST, _parent),
    _G + "DeleteNote": Rule(p.NOTES_DELETE, _note),
    _G + "CreateNote": Rule(p.NOTES_CREATE, _parent),
    _G + "BatchCreateNotes": Rule(p.NOTES_CREATE, _parent),
    _G + "UpdateNote": Rule(p.NOTES_UPDATE, _note),
    _G + "ListNoteOccurrences": Rule(p.NOTES_LIST_OCCURRENCES, _note),
    _P + "CreateProject": Rule(p.PROJECTS_CREATE, _collection),
    _P + "GetProject": Rule(p.PROJECTS_GET, _project),
    _P + "ListProjects": Rule(p.PROJECTS_LIST, _collection),
    _P + "DeleteProject": Rule(p.PROJECTS_DELETE, _project),
}

#: Services that reveal nothing about the data and must answer probes without credentials.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def request_types() -> dict[str, Any]:
    types = {_G + m.name: m.request for m in GRAFEAS_METHODS}
    types.update({_P + m.name: m.request for m in schema().projects_methods})
    return types


def _credentials(context: Any) -> Credentials:
    bearer: str | None = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() != "bearer":
                raise Unauthenticated("the authorization metadata must be 'Bearer TOKEN'")
            bearer = token.strip()
    cert: x509.Certificate | None = None
    auth = context.auth_context() or {}
    pems = auth.get("x509_pem_cert") or ()
    if pems:
        cert = x509.load_pem_x509_certificate(pems[0])
    return Credentials(bearer=bearer, certificate=cert)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # untyped grpc
    def __init__(self, access: AccessControl) -> None:
        self._access = access
        self._types = request_types()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        rule = RULES.get(method)
        inner = handler.unary_unary
        request_type = self._types.get(method)
        access = self._access

        async def abort(context: Any, error: ChainproofError) -> None:
            code = grpc_status_code(error)
            message = status_message(error)
            trailer = _status_trailer(code, message, error.details)
            await context.abort(code, message, trailing_metadata=((STATUS_DETAILS_KEY, trailer),))

        async def checked(request: Any, context: Any) -> Any:
            operation = Operation(method=method, transport="grpc")
            try:
                if rule is None or inner is None or request_type is None:
                    raise PermissionDenied(
                        f"{method} declares no permission, so it is refused; this is a bug in "
                        "chainproof (every RPC must declare one)"
                    )
                decoded = _decode(request_type, request)
                principal = await access.authenticator.authenticate(_credentials(context))
                try:
                    decision = await access.require(
                        principal, rule.permission, rule.on(decoded), operation
                    )
                    for note_name in dict.fromkeys(rule.attaches(decoded)):
                        try:
                            parsed = parse_note_name(note_name)
                        except InvalidArgument:
                            continue  # not a note name: the service says what is wrong
                        target = Resource(parsed.project, parsed.note_id)
                        attach = await access.require(
                            principal, p.NOTES_ATTACH_OCCURRENCE, target, operation
                        )
                        await access.record(principal, attach, operation, "AUTHORIZED")
                except PermissionDenied as exc:
                    if principal.authenticated:
                        raise
                    raise Unauthenticated(f"authentication required: {exc.message}") from None
            except ChainproofError as exc:
                await abort(context, exc)
                return None
            try:
                response = await inner(request, context)
            except BaseException:
                status = context.code()
                await access.finish(
                    principal, decision, operation, status.name if status else "UNKNOWN"
                )
                raise
            status = context.code()
            await access.finish(principal, decision, operation, status.name if status else "OK")
            return response

        return grpc.unary_unary_rpc_method_handler(
            checked,
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )
