"""Kubernetes admission entrypoints: translation only.

* ``POST /webhook/admission``: a ValidatingAdmissionWebhook receiving ``AdmissionReview``
  (``admission.k8s.io/v1`` and ``v1beta1``) for Pods and every pod-template workload.
* ``POST /webhook/imagepolicy``: the ImagePolicyWebhook admission plugin's ``ImageReview``
  (``imagepolicy.k8s.io/v1alpha1``).

The API server routes on the path and adds ``?timeout=…``, which is ignored here: the review
has its own, shorter deadline (settings.admission.deadline_seconds). A malformed review gets a
400 with the reason; everything else gets a review response, denied when anything fails.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

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
from chainproof.services.admission import AdmissionService

_REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
_JUDGED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


def admission_service(request: Request) -> AdmissionService:
    service: AdmissionService = request.app.state.container.admission
    return service


Admission = Annotated[AdmissionService, Depends(admission_service)]
router = APIRouter(prefix="/webhook", tags=["admission"])


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgument(f"{what} must be a JSON object")
    return data


def _string(data: dict[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"{what}.{key} must be a non-empty string")
    return value


@router.post("/admission", openapi_extra=JSON_BODY)
async def admission_review(request: Request, admission: Admission) -> Response:
    review = _object(decode_json(await request.body()), "AdmissionReview")
    api_version = review.get("apiVersion")
    if api_version not in _REVIEW_VERSIONS or review.get("kind") != "AdmissionReview":
        raise InvalidArgument(
            f"expected kind AdmissionReview with apiVersion {' or '.join(_REVIEW_VERSIONS)}, "
            f"got kind {review.get('kind')!r} apiVersion {api_version!r}"
        )
    req = _object(review.get("request"), "AdmissionReview.request")
    uid = _string(req, "uid", "request")
    operation = _string(req, "operation", "request")
    namespace = _string(req, "namespace", "request", required=False)
    kind = _object(req.get("kind", {}), "request.kind").get("kind", "")

    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if operation in _JUDGED_OPERATIONS and kind in SUPPORTED_KINDS:
        workload = workload_from_object(
            _object(req.get("object"), "request.object"), namespace=namespace
        )
        result = await admission.review(
            workload, uid=uid, operation=operation, dry_run=bool(req.get("dryRun", False))
        )
        response["allowed"] = result.allowed
        if not result.allowed:
            response["status"] = {
                "code": 403,
                "reason": "Forbidden",
                "message": result.message,
            }
        if result.warnings:
            response["warnings"] = list(result.warnings)
        response["auditAnnotations"] = {
            "chainproof.dev/outcome": result.outcome,
            "chainproof.dev/policy": result.decision.policy or "",
        }
    return json_response(
        {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
    )


@router.post("/imagepolicy", openapi_extra=JSON_BODY)
async def image_review(request: Request, admission: Admission) -> Response:
    review = _object(decode_json(await request.body()), "ImageReview")
    if review.get("kind") != "ImageReview":
        raise InvalidArgument(f"expected kind ImageReview, got {review.get('kind')!r}")
    spec = _object(review.get("spec"), "ImageReview.spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise InvalidArgument("ImageReview.spec.containers must be a non-empty list")
    images = []
    for i, c in enumerate(containers):
        image = c.get("image") if isinstance(c, dict) else None
        if not isinstance(image, str) or not image:
            raise InvalidArgument(f"ImageReview.spec.containers[{i}].image is missing")
        images.append(ContainerImage(f"containers[{i}]", image))
    annotations = spec.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidArgument("ImageReview.spec.annotations must be a mapping")
    # ImageReview carries annotations with the prefix the plugin was configured to pass on;
    # breakglass works the same as for AdmissionReview.
    normalised = {str(k): str(v) for k, v in annotations.items()}
    workload = Workload(
        kind="Pod",
        name="",
        namespace=str(spec.get("namespace") or "default"),
        service_account="default",
        images=tuple(images),
        annotations={k: v for k, v in normalised.items() if k in BREAKGLASS_ANNOTATIONS},
    )
    result = await admission.review(workload, operation="CREATE")
    status: dict[str, Any] = {"allowed": result.allowed}
    if not result.allowed:
        status["reason"] = result.message
    status["auditAnnotations"] = {"chainproof.dev/outcome": result.outcome}
    return json_response(
        {
            "apiVersion": review.get("apiVersion", "imagepolicy.k8s.io/v1alpha1"),
            "kind": "ImageReview",
            "status": status,
        }
    )
