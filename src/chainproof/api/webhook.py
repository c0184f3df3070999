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
from typing import Any

from fastapi import APIRouter, Request, Response

from chainproof.api.rest.auth import admission_project, requires
from chainproof.api.rest.body import decode_json
from chainproof.api.rest.deps import AllServices
from chainproof.api.rest.grafeas import JSON_BODY, json_response
from chainproof.domain.admission_review import (
    Admit,
    Refuse,
    ReviewRequest,
    as_object,
    plan_review,
    read_review,
)
from chainproof.domain.workloads import BREAKGLASS_ANNOTATIONS, ContainerImage, Workload
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p
from chainproof.services.judge.admission import ReviewResult
from chainproof.services.wiring import Services

IMAGE_REVIEW_VERSION = "imagepolicy.k8s.io/v1alpha1"

#: Kubernetes truncates a warning above 256 characters and drops warnings beyond 4096 in all.
WARNING_LIMIT = 256
WARNINGS_TOTAL_LIMIT = 4096
#: The status message reaches the user through the API server's error (and events); keep it
#: readable and well under any proxy's header or body limits.
MESSAGE_LIMIT = 4000

_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


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


def _review_answer(api_version: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


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


def _created_pod(review: ReviewRequest) -> dict[str, Any] | None:
    """The Pod a CREATE request makes, in the request's namespace: once admitted, the
    inventory knows it (``source=admission``) before any watcher sees it."""
    if review.kind != "Pod" or review.operation != "CREATE" or not isinstance(review.obj, dict):
        return None
    meta = review.obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    namespace = review.namespace or meta.get("namespace") or "default"
    return {**review.obj, "metadata": {**meta, "namespace": namespace}}


async def answer_admission(request: Request, services: Services) -> dict[str, Any]:
    """The AdmissionReview answering the one in ``request``'s body (the route's whole work,
    shared by the FastAPI route and the lean ASGI path of :mod:`chainproof.api.fast_path`)."""
    admission = services.admission
    review = read_review(decode_json(await request.body()))
    uid, version = review.uid, review.api_version
    plan = plan_review(review)
    if isinstance(plan, Admit):
        return _review_answer(version, {"uid": uid, "allowed": True})
    if isinstance(plan, Refuse):
        result = await admission.refuse_unreadable(
            plan.kind,
            plan.obj,
            review.namespace,
            plan.reason,
            uid=uid,
            operation=review.operation,
            dry_run=review.dry_run,
        )
        return _review_answer(version, _denial(uid, 400, "BadRequest", result.message))
    result = await admission.review(
        plan.workload,
        uid=uid,
        operation=review.operation,
        dry_run=review.dry_run,
        deadline_seconds=api_server_deadline(request.query_params.get("timeout")),
        pod=_created_pod(review),
    )
    return _review_answer(version, _answer(uid, result))


@router.post(
    "/admission",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ADMISSION_REVIEW, on=admission_project)],
)
async def admission_review(request: Request, services: AllServices) -> Response:
    return json_response(await answer_admission(request, services))


# --------------------------------------------------------------------------- ImageReview


async def answer_image_review(request: Request, services: Services) -> dict[str, Any]:
    """The ImageReview answering the one in ``request``'s body (shared as above)."""
    review = as_object(decode_json(await request.body()), "ImageReview")
    api_version = review.get("apiVersion", IMAGE_REVIEW_VERSION)
    if review.get("kind") != "ImageReview" or api_version != IMAGE_REVIEW_VERSION:
        raise InvalidArgument(
            f"expected kind ImageReview with apiVersion {IMAGE_REVIEW_VERSION}, got kind "
            f"{review.get('kind')!r} apiVersion {api_version!r}"
        )
    spec = as_object(review.get("spec"), "ImageReview.spec")
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
    result = await services.admission.review(workload, operation="CREATE")
    status: dict[str, Any] = {"allowed": result.allowed}
    if not result.allowed:
        status["reason"] = fit_message(result.message)
    status["auditAnnotations"] = {"outcome": result.outcome}
    return {"apiVersion": api_version, "kind": "ImageReview", "status": status}


@router.post(
    "/imagepolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ADMISSION_REVIEW, on=admission_project)],
)
async def image_review(request: Request, services: AllServices) -> Response:
    return json_response(await answer_image_review(request, services))
