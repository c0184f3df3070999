"""Kubernetes admission entrypoints: translation only.

* ``POST /webhook/admission``: a ValidatingAdmissionWebhook receiving ``AdmissionReview``
  (``admission.k8s.io/v1`` and ``v1beta1``) for Pods and every pod-template workload. The
  answer is an ``AdmissionReview`` of the same apiVersion whose ``response.uid`` echoes the
  request's.
* ``POST /webhook/imagepolicy``: the ImagePolicyWebhook admission plugin's ``ImageReview``
  (``imagepolicy.k8s.io/v1alpha1``).

What is judged: CREATE and UPDATE of the workload kinds (and the ``ephemeralcontainers``
subresource of pods, which is how ``kubectl debug`` adds a container). Everything else the API
server may send (DELETE, CONNECT, other kinds and subresources, an object already being
deleted whose images do not change) is admitted without judgement and without a decision log
entry. The kind, operation and namespace are the API server's (``request.kind``,
``request.operation``, ``request.namespace``), never the object's; a review whose values the
API server would never send (``create``, a ``pod``, no namespace, an object that claims another
kind) is denied, since it cannot be understood; the object is judged in the request's namespace.

What this module refuses with HTTP 400 (the reason in the error body): a body that is not an
AdmissionReview at all — not JSON, the wrong kind or apiVersion, no ``request``, no ``uid``.
Once the request UID is known, a workload that cannot be read (a container without an image,
say) gets a normal *denial* instead, so that ``kubectl`` shows the reason to the user.

The API server appends ``?timeout=10s`` (its own deadline for the call); the review's deadline
(settings.admission.deadline_seconds) is shortened to fit inside it. The wire limits of
Kubernetes are applied here: warnings of at most 256 characters each and 4096 in total, one
line each; the status message trimmed to :data:`MESSAGE_LIMIT` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from chainproof.api.rest.auth import admission_project, requires
from chainproof.api.rest.body import decode_json
from chainproof.api.rest.grafeas import JSON_BODY, json_response
from chainproof.domain.workloads import (
    BREAKGLASS_ANNOTATIONS,
    SUPPORTED_KINDS,
    ContainerImage,
    Workload,
    workload_from_object,
)
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p
from chainproof.services.judge.admission import AdmissionService, ReviewResult

ADMISSION_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
IMAGE_REVIEW_VERSION = "imagepolicy.k8s.io/v1alpha1"
_JUDGED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
_JUDGED_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})

#: Kubernetes truncates a warning above 256 characters and drops warnings beyond 4096 in all.
WARNING_LIMIT = 256
WARNINGS_TOTAL_LIMIT = 4096
#: The status message reaches the user through the API server's error (and events); keep it
#: readable and well under any proxy's header or body limits.
MESSAGE_LIMIT = 4000

_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


async def admission_service(request: Request) -> AdmissionService:
    service: AdmissionService = request.app.state.container.admission
    return service


Admission = Annotated[AdmissionService, Depends(admission_service)]
router = APIRouter(prefix="/webhook", tags=["admission"])


# --------------------------------------------------------------------------- wire limits


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_warnings(warnings: Iterable[str]) -> list[str]:
    """Warnings as Kubernetes accepts them: one line, ≤256 characters each, ≤4096 in all."""
    out: list[str] = []
    total = 0
    for warning in warnings:
        text = _trim(_one_line(warning), WARNING_LIMIT)
        if not text:
            continue
        if total + len(text) > WARNINGS_TOTAL_LIMIT:
            break
        out.append(text)
        total += len(text)
    return out


def fit_message(message: str) -> str:
    """The status message, cut at :data:`MESSAGE_LIMIT` with a pointer to the full record."""
    if len(message) <= MESSAGE_LIMIT:
        return message
    tail = " … (trimmed; the decision log has every reason: `chainproof decisions list`)"
    return message[: MESSAGE_LIMIT - len(tail)] + tail


def api_server_deadline(timeout: str | None) -> float | None:
    """The review budget that fits in the API server's ``?timeout=`` (a Go duration)."""
    match = _GO_DURATION.match(timeout or "")
    if match is None:
        return None
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        return None
    # Leave room for the reply to travel back: half a second, or half the budget if it is short.
    return max(seconds / 2, seconds - 0.5)


# --------------------------------------------------------------------------- AdmissionReview


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def _string(data: dict[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"{what}.{key} must be a non-empty string")
    return value


_OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
_KINDS_FOLDED = {k.lower(): k for k in SUPPORTED_KINDS}


def _requested_kind(req: dict[str, Any]) -> str:
    """``request.kind.kind``: what the API server says the object is (the object has no say)."""
    kind = req.get("kind")
    if kind is None:
        return ""
    kind = _object(kind, "request.kind")
    if not isinstance(kind.get("kind"), str) or not kind["kind"]:
        return ""
    value: str = kind["kind"]
    return value


def _not_understood(operation: str, kind: str, namespace: str, obj: Any) -> str | None:
    """Why a review the API server would never send this way cannot be judged, or None."""
    if operation not in _OPERATIONS:
        return (
            f"request.operation {operation[:40]!r} is not one of "
            + ", ".join(sorted(_OPERATIONS))
            + " (the values are case-sensitive)"
        )
    if operation not in _JUDGED_OPERATIONS:
        return None
    if not kind:
        return "request.kind.kind is missing: the API server always says what the object is"
    folded = _KINDS_FOLDED.get(kind.lower())
    if folded is not None and folded != kind:
        return f"request.kind.kind {kind[:40]!r} is not a kind Kubernetes spells: expected {folded}"
    if kind not in SUPPORTED_KINDS:
        return None
    obj = _object(obj, "request.object")
    own = obj.get("kind")
    if own is not None and own != kind:
        return (
            f"request.object says kind {str(own)[:40]!r} but request.kind says {kind!r}: the "
            "object is judged as what the API server says, and they must agree"
        )
    if not namespace:
        # The object's own metadata.namespace is no substitute: rules depend on it.
        return (
            f"request.namespace is missing: every {kind} lives in a namespace, and the rules "
            "that apply depend on it"
        )
    return None


def _images_of(obj: Any, kind: str, namespace: str) -> list[str] | None:
    try:
        return sorted(
            i.image for i in workload_from_object({**obj, "kind": kind}, namespace=namespace).images
        )
    except (InvalidArgument, TypeError):
        return None


def _review_response(api_version: str, response: dict[str, Any]) -> Response:
    return json_response(
        {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
    )


def _denial(uid: str, code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "allowed": False,
        "status": {"code": code, "reason": reason, "message": fit_message(message)},
    }


def _answer(uid: str, result: ReviewResult) -> dict[str, Any]:
    response: dict[str, Any] = (
        {"uid": uid, "allowed": True}
        if result.allowed
        else _denial(uid, 403, "Forbidden", result.message)
    )
    warnings = fit_warnings(result.warnings)
    if warnings:
        response["warnings"] = warnings
    # The API server prefixes each key with the webhook's name, so keys carry no prefix.
    audit = {"outcome": result.outcome}
    if result.decision.policy:
        audit["policy"] = result.decision.policy
    response["auditAnnotations"] = audit
    return response


@router.post(
    "/admission",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ADMISSION_REVIEW, on=admission_project)],
)
async def admission_review(request: Request, admission: Admission) -> Response:
    review = _object(decode_json(await request.body()), "AdmissionReview")
    api_version = review.get("apiVersion")
    if review.get("kind") != "AdmissionReview" or api_version not in ADMISSION_VERSIONS:
        raise InvalidArgument(
            f"expected kind AdmissionReview with apiVersion {' or '.join(ADMISSION_VERSIONS)}, "
            f"got kind {review.get('kind')!r} apiVersion {api_version!r}"
        )
    assert isinstance(api_version, str)
    req = _object(review.get("request"), "AdmissionReview.request")
    uid = _string(req, "uid", "request")
    operation = _string(req, "operation", "request")
    namespace = _string(req, "namespace", "request", required=False)
    sub_resource = _string(req, "subResource", "request", required=False)
    obj = req.get("object")
    kind = _requested_kind(req)
    dry_run = req.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidArgument(f"request.dryRun must be true or false, got {dry_run!r}")
    problem = _not_understood(operation, kind, namespace, obj)
    if problem is not None:
        result = await admission.refuse_unreadable(
            kind or "object",
            obj if isinstance(obj, dict) else {},
            namespace,
            problem,
            uid=uid,
            operation=operation,
            dry_run=dry_run,
        )
        return _review_response(api_version, _denial(uid, 400, "BadRequest", result.message))

    judged = (
        operation in _JUDGED_OPERATIONS
        and kind in SUPPORTED_KINDS
        and sub_resource in _JUDGED_SUBRESOURCES
    )
    if not judged:
        return _review_response(api_version, {"uid": uid, "allowed": True})
    obj = _object(obj, "request.object")
    meta = obj.get("metadata")
    if operation == "UPDATE" and isinstance(meta, dict) and meta.get("deletionTimestamp"):
        # Finalizers being removed from an object on its way out: nothing new will run —
        # unless the update also changes the images, which is then judged like any other.
        before = _images_of(req.get("oldObject"), kind, namespace)
        if before is not None and before == _images_of(obj, kind, namespace):
            return _review_response(api_version, {"uid": uid, "allowed": True})
    if namespace and isinstance(meta, dict):
        # The request's namespace is the one the object is created in (the API server
        # refuses an object whose own metadata.namespace disagrees), so rules use it.
        obj = {**obj, "metadata": {**meta, "namespace": namespace}}
    try:
        workload = workload_from_object({**obj, "kind": kind}, namespace=namespace)
    except InvalidArgument as exc:
        result = await admission.refuse_unreadable(
            kind, obj, namespace, exc.message, uid=uid, operation=operation, dry_run=dry_run
        )
        return _review_response(api_version, _denial(uid, 400, "BadRequest", result.message))
    result = await admission.review(
        workload,
        uid=uid,
        operation=operation,
        dry_run=dry_run,
        deadline_seconds=api_server_deadline(request.query_params.get("timeout")),
    )
    return _review_response(api_version, _answer(uid, result))


# --------------------------------------------------------------------------- ImageReview


@router.post(
    "/imagepolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ADMISSION_REVIEW, on=admission_project)],
)
async def image_review(request: Request, admission: Admission) -> Response:
    review = _object(decode_json(await request.body()), "ImageReview")
    api_version = review.get("apiVersion", IMAGE_REVIEW_VERSION)
    if review.get("kind") != "ImageReview" or api_version != IMAGE_REVIEW_VERSION:
        raise InvalidArgument(
            f"expected kind ImageReview with apiVersion {IMAGE_REVIEW_VERSION}, got kind "
            f"{review.get('kind')!r} apiVersion {api_version!r}"
        )
    spec = _object(review.get("spec"), "ImageReview.spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise InvalidArgument("ImageReview.spec.containers must be a non-empty list")
    images = []
    for i, c in enumerate(containers):
        image = c.get("image") if isinstance(c, dict) else None
        if not isinstance(image, str) or not image.strip():
            raise InvalidArgument(f"ImageReview.spec.containers[{i}].image is missing")
        images.append(ContainerImage(f"containers[{i}]", image.strip()))
    annotations = spec.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidArgument("ImageReview.spec.annotations must be a mapping")
    namespace = spec.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise InvalidArgument("ImageReview.spec.namespace must be a string")
    # The plugin passes on only annotations matching *.image-policy.k8s.io/*, so of the two
    # breakglass spellings only alpha.image-policy.k8s.io/break-glass normally arrives.
    normalised = {str(k): str(v) for k, v in annotations.items()}
    workload = Workload(
        kind="Pod",
        name="",
        namespace=namespace,
        service_account="default",  # ImageReview does not say which one
        images=tuple(images),
        annotations={k: v for k, v in normalised.items() if k in BREAKGLASS_ANNOTATIONS},
    )
    result = await admission.review(workload, operation="CREATE")
    status: dict[str, Any] = {"allowed": result.allowed}
    if not result.allowed:
        status["reason"] = fit_message(result.message)
    status["auditAnnotations"] = {"outcome": result.outcome}
    return json_response({"apiVersion": api_version, "kind": "ImageReview", "status": status})
