"""The OpenAPI document (``/openapi.json``, ``/docs``): what every route takes and answers.

Owns the table of operations below — for each route its request body, its 200 body and the
error statuses it can answer — and the assembly of the document from FastAPI's skeleton
(paths and parameters), the Grafeas messages' schemas (from the ``grafeas`` package's
protobuf descriptors, :mod:`.proto_schema`) and the other resources' schemas
(:mod:`.openapi_schemas`). FastAPI's own 422 answer is never sent (request validation errors
are 400s), so it is removed.

A route missing from the table makes the document fail to build (see ``tests``): a new route
must say what it takes and answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from chainproof.api.rest.openapi_schemas import SCHEMAS, ref
from chainproof.api.rest.proto_schema import ProtoSchemas
from chainproof.domain.messages import NotePB, OccurrencePB

_JSON = "application/json"

#: What each status means, for every route that can answer it.
_STATUS_TEXT: dict[int, str] = {
    400: "the request is wrong (INVALID_ARGUMENT) or the state does not allow it "
    "(FAILED_PRECONDITION, e.g. a stale etag): the message says what and what was expected",
    401: "no valid credential (UNAUTHENTICATED); WWW-Authenticate says how",
    403: "the caller lacks the permission (PERMISSION_DENIED)",
    404: "the resource does not exist (NOT_FOUND)",
    409: "it exists already (ALREADY_EXISTS)",
    413: "the body is over the size limit, a listed item is larger than a whole page, or an "
    "answer would exceed its bound (RESOURCE_EXHAUSTED): the message names the bound",
    503: "the database cannot be reached (UNAVAILABLE): retry",
}
_ALWAYS = (400, 401, 403, 503)


@dataclass(frozen=True, slots=True)
class Operation:
    ok: dict[str, Any] | None
    body: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    ok_media: str = _JSON
    body_media: str = _JSON
    #: Public routes are never refused for a missing permission.
    public: bool = False
    #: The database is not involved (no 503).
    no_store: bool = False


def _list(name: str) -> Operation:
    return Operation(ref(name), errors=(413,))


_NOTE = ref("grafeas.v1.Note")
_OCCURRENCE = ref("grafeas.v1.Occurrence")
_V1 = "/v1/projects/{project}"
_NOTE_PATH = _V1 + "/notes/{note_id}"
_OCC_PATH = _V1 + "/occurrences/{occurrence_id}"

OPERATIONS: Mapping[tuple[str, str], Operation] = {
    # admission
    ("POST", "/webhook/admission"): Operation(
        ref("AdmissionReview"), ref("AdmissionReview"), (413,)
    ),
    ("POST", "/webhook/mutate"): Operation(ref("AdmissionReview"), ref("AdmissionReview"), (413,)),
    ("POST", "/webhook/imagepolicy"): Operation(ref("ImageReview"), ref("ImageReview"), (413,)),
    # operations
    ("GET", "/healthz"): Operation(ref("Health"), public=True, no_store=True),
    ("GET", "/readyz"): Operation(ref("Health"), public=True),
    ("GET", "/metrics"): Operation(
        {"type": "string"}, ok_media="text/plain; version=0.0.4; charset=utf-8", no_store=True
    ),
    # Grafeas: projects
    ("POST", "/v1/projects"): Operation(ref("Project"), ref("Project"), (409, 413)),
    ("GET", "/v1/projects"): _list("ListProjectsResponse"),
    ("GET", _V1): Operation(ref("Project"), errors=(404,)),
    ("DELETE", _V1): Operation(ref("Empty"), errors=(404,)),
    # Grafeas: notes
    ("POST", _V1 + "/notes"): Operation(_NOTE, _NOTE, (404, 409, 413)),
    ("POST", _V1 + "/notes:batchCreate"): Operation(
        ref("grafeas.v1.BatchCreateNotesResponse"),
        ref("BatchCreateNotesRequest"),
        (404, 409, 413),
    ),
    ("GET", _V1 + "/notes"): _list("grafeas.v1.ListNotesResponse"),
    ("GET", _NOTE_PATH): Operation(_NOTE, errors=(404,)),
    ("PATCH", _NOTE_PATH): Operation(_NOTE, _NOTE, (404, 413)),
    ("DELETE", _NOTE_PATH): Operation(ref("Empty"), errors=(404,)),
    ("GET", _NOTE_PATH + "/occurrences"): Operation(
        ref("grafeas.v1.ListNoteOccurrencesResponse"), errors=(404, 413)
    ),
    # Grafeas: occurrences
    ("POST", _V1 + "/occurrences"): Operation(_OCCURRENCE, _OCCURRENCE, (404, 409, 413)),
    ("POST", _V1 + "/occurrences:batchCreate"): Operation(
        ref("grafeas.v1.BatchCreateOccurrencesResponse"),
        ref("BatchCreateOccurrencesRequest"),
        (404, 409, 413),
    ),
    ("GET", _V1 + "/occurrences"): _list("grafeas.v1.ListOccurrencesResponse"),
    ("GET", _OCC_PATH): Operation(_OCCURRENCE, errors=(404,)),
    ("PATCH", _OCC_PATH): Operation(_OCCURRENCE, _OCCURRENCE, (404, 413)),
    ("DELETE", _OCC_PATH): Operation(ref("Empty"), errors=(404,)),
    ("GET", _OCC_PATH + "/notes"): Operation(_NOTE, errors=(404,)),
    # judge
    ("POST", _V1 + "/attestors"): Operation(
        ref("StoredAttestor"), ref("Attestor"), (404, 409, 413)
    ),
    ("GET", _V1 + "/attestors"): _list("ListAttestorsResponse"),
    ("GET", _V1 + "/attestors/{attestor_id}"): Operation(ref("StoredAttestor"), errors=(404,)),
    ("PUT", _V1 + "/attestors/{attestor_id}"): Operation(
        ref("StoredAttestor"), ref("Attestor"), (404, 413)
    ),
    ("DELETE", _V1 + "/attestors/{attestor_id}"): Operation(ref("Empty"), errors=(404,)),
    ("GET", _V1 + "/policy"): Operation(ref("StoredPolicy"), errors=(404,)),
    ("PUT", _V1 + "/policy"): Operation(ref("StoredPolicy"), ref("Policy"), (404, 413)),
    ("POST", _V1 + "/policy:evaluate"): Operation(
        ref("Evaluation"), ref("EvaluateRequest"), (413,)
    ),
    ("POST", _V1 + "/kritis:evaluate"): Operation(
        ref("Evaluation"), ref("EvaluateKritisRequest"), (413,)
    ),
    ("GET", _V1 + "/decisions"): _list("ListDecisionsResponse"),
    # scanning
    ("POST", "/v1/advisories:import"): Operation(
        ref("ImportReport"), ref("ImportAdvisoriesRequest"), (413,)
    ),
    ("GET", "/v1/advisories/{advisory_id}"): Operation(ref("Advisory"), errors=(404,)),
    ("POST", _V1 + "/images:scan"): Operation(ref("ScanReport")),
    ("GET", _V1 + "/images:vulnerabilities"): Operation(ref("ImageVulnerabilities")),
    ("POST", _V1 + "/images:checkVulnerabilityPolicy"): Operation(
        ref("VulnerabilityPolicyCheck"), ref("VulnerabilityPolicyCheckRequest"), (413,)
    ),
    # access control
    ("POST", _V1 + ":getIamPolicy"): Operation(
        ref("IamPolicy"), ref("GetIamPolicyRequest"), (413,)
    ),
    ("POST", _V1 + ":setIamPolicy"): Operation(
        ref("IamPolicy"), ref("SetIamPolicyRequest"), (413,)
    ),
    ("POST", _V1 + ":testIamPermissions"): Operation(
        ref("TestIamPermissionsResponse"), ref("TestIamPermissionsRequest"), (413,), public=True
    ),
    ("POST", _NOTE_PATH + ":getIamPolicy"): Operation(
        ref("IamPolicy"), ref("GetIamPolicyRequest"), (404, 413)
    ),
    ("POST", _NOTE_PATH + ":setIamPolicy"): Operation(
        ref("IamPolicy"), ref("SetIamPolicyRequest"), (404, 413)
    ),
    ("POST", _NOTE_PATH + ":testIamPermissions"): Operation(
        ref("TestIamPermissionsResponse"),
        ref("TestIamPermissionsRequest"),
        (404, 413),
        public=True,
    ),
    ("POST", _V1 + "/tokens"): Operation(
        ref("CreatedToken"), ref("CreateTokenRequest"), (409, 413)
    ),
    ("GET", _V1 + "/tokens"): Operation(ref("ListTokensResponse")),
    ("DELETE", _V1 + "/tokens/{name}"): Operation(ref("ApiToken"), errors=(404,)),
    ("GET", _V1 + "/auditLogs"): _list("ListAuditLogsResponse"),
    # subscriptions
    ("POST", _V1 + "/subscriptions"): Operation(
        ref("Subscription"), ref("SubscriptionRequest"), (409, 413)
    ),
    ("GET", _V1 + "/subscriptions"): Operation(ref("ListSubscriptionsResponse")),
    ("GET", _V1 + "/subscriptions/{subscription_id}"): Operation(
        ref("Subscription"), errors=(404,)
    ),
    ("DELETE", _V1 + "/subscriptions/{subscription_id}"): Operation(ref("Empty"), errors=(404,)),
    ("GET", _V1 + "/subscriptions/{subscription_id}/deliveries"): Operation(
        ref("ListDeliveriesResponse"), errors=(404,)
    ),
    ("GET", _V1 + "/violations"): _list("ListViolationsResponse"),
    ("GET", "/v1/auth:whoami"): Operation(ref("Whoami"), public=True),
    # ingestion
    ("POST", _V1 + ":ingest"): Operation(
        ref("IngestResult"),
        {"type": "string", "format": "binary"},
        (413,),
        body_media="application/octet-stream",
    ),
    ("GET", _V1 + "/documents/{digest}"): Operation(
        {"type": "string"}, errors=(404,), ok_media="*/*"
    ),
    ("GET", _V1 + "/images/packages"): Operation(ref("ImagePackages"), errors=(413,)),
    ("GET", _V1 + "/images/vulnerabilities"): Operation(ref("ImageFindings")),
    ("GET", _V1 + "/packages/images"): Operation(ref("PackageImages"), errors=(413,)),
    ("GET", _V1 + "/registryEvidence"): Operation(ref("ImageRegistrySources")),
    ("GET", _V1 + "/registryEvidence/{occurrence_id}"): Operation(
        ref("RegistrySource"), errors=(404,)
    ),
    # reverse impact and replay
    ("GET", _V1 + "/impact"): Operation(ref("Impact"), errors=(404, 413)),
    ("POST", _V1 + "/policy:replay"): Operation(ref("ReplayReport"), ref("ReplayRequest"), (413,)),
    ("POST", _V1 + "/policy:diff"): Operation(ref("ReplayReport"), ref("DiffRequest"), (413,)),
    ("GET", _V1 + "/policy:coverage"): Operation(ref("Coverage"), errors=(413,)),
}

#: The Grafeas messages published, with every message they use.
_GRAFEAS_MESSAGES = (
    NotePB.DESCRIPTOR,
    OccurrencePB.DESCRIPTOR,
    *(
        NotePB.DESCRIPTOR.file.message_types_by_name[name]
        for name in (
            "ListNotesResponse",
            "ListOccurrencesResponse",
            "ListNoteOccurrencesResponse",
            "BatchCreateNotesResponse",
            "BatchCreateOccurrencesResponse",
        )
    ),
)


def _content(schema: dict[str, Any], media: str) -> dict[str, Any]:
    return {media: {"schema": schema}}


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if operation.ok is not None:
        responses["200"] = {
            "description": "OK",
            "content": _content(operation.ok, operation.ok_media),
        }
    errors = set(_ALWAYS) | set(operation.errors)
    if operation.public:
        errors.discard(403)
    if operation.no_store:
        errors.discard(503)
    if operation.no_store and operation.public:
        errors.discard(400)  # takes nothing that could be wrong
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": _content(ref("Error"), _JSON),
        }
    return responses


def build_document(app: FastAPI) -> dict[str, Any]:
    """The document for ``app``; KeyError names a route the table does not describe."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    proto = ProtoSchemas()
    for descriptor in _GRAFEAS_MESSAGES:
        proto.ref(descriptor)
    schemas.update(proto.schemas)
    schemas.update(SCHEMAS)
    for path, item in document["paths"].items():
        for method, spec in item.items():
            key = (method.upper(), path)
            if key not in OPERATIONS:
                raise KeyError(f"{method.upper()} {path} is not described in api/rest/openapi.py")
            operation = OPERATIONS[key]
            spec["responses"] = _responses(operation)
            if operation.body is not None:
                spec["requestBody"] = {
                    "required": True,
                    "content": _content(operation.body, operation.body_media),
                }
            else:
                spec.pop("requestBody", None)
    return document


def install(app: FastAPI) -> None:
    """Serve :func:`build_document` as the app's OpenAPI document (built once, on demand)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
