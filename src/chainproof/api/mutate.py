"""``POST /webhook/mutate``: pin tag-only images to the digest their tag names now.

A MutatingAdmissionWebhook receiving ``AdmissionReview`` (v1, v1beta1) for Pods and every
pod-template workload, on CREATE and UPDATE only. Each container image without a digest is
resolved through the registry (``HEAD`` on the tag, cached briefly) and rewritten to
``repo:tag@sha256:…`` by a JSONPatch; an annotation (``chainproof.dev/resolved-images``) records
what was resolved, and the validating webhook copies it into its decision. The validating
webhook then judges the digest, as for any other image.

Fail closed: when ``registry.resolve_tags`` is on and a tag cannot be resolved within the
review's deadline (registry down, rate-limited, tag missing), the object is denied with the
registry and the error named. When resolution is off, nothing is patched, and the validating
webhook goes on denying tags.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from chainproof.api.rest.auth import admission_project, requires
from chainproof.api.rest.body import decode_json
from chainproof.api.rest.deps import AllServices
from chainproof.api.rest.grafeas import JSON_BODY, json_response
from chainproof.api.webhook import _denial, api_server_deadline
from chainproof.api.webhook import _review_answer as _review
from chainproof.domain.admission_review import ADMISSION_VERSIONS
from chainproof.domain.admission_review import as_object as _object
from chainproof.domain.admission_review import requested_kind as _requested_kind
from chainproof.domain.admission_review import string_field as _string
from chainproof.domain.image_patch import image_pointers, pin_patch
from chainproof.domain.images import parse_image_reference
from chainproof.domain.workloads import SUPPORTED_KINDS, pod_spec_path, workload_from_object
from chainproof.errors import ChainproofError, InvalidArgument
from chainproof.iam import permissions as perms
from chainproof.services.wiring import Services
from chainproof.sources.registry.auth import REVIEW_PULL_SECRETS, PullSecretScope
from chainproof.sources.registry.client import Deadline

router = APIRouter(prefix="/webhook", tags=["admission"])
_MUTATED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


@router.post(
    "/mutate",
    openapi_extra=JSON_BODY,
    dependencies=[requires(perms.ADMISSION_REVIEW, on=admission_project)],
)
async def mutate(request: Request, services: AllServices) -> Response:
    return json_response(await answer_mutation(request, services))


async def answer_mutation(request: Request, services: Services) -> dict[str, Any]:
    """The AdmissionReview (a JSONPatch, or none) answering the one in ``request``'s body;
    shared by the route and :mod:`chainproof.api.fast_path`."""
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
    sub_resource = _string(req, "subResource", "request", required=False)
    obj = req.get("object")
    kind = _requested_kind(req)
    allowed = {"uid": uid, "allowed": True}
    registry = services.registry
    if (
        operation not in _MUTATED_OPERATIONS
        or kind not in SUPPORTED_KINDS
        or sub_resource
        or not services.settings.registry.resolve_tags
        or registry is None
    ):
        return _review(api_version, allowed)
    obj = _object(obj, "request.object")
    try:
        workload = workload_from_object(obj, namespace=str(req.get("namespace") or ""))
        pointers = image_pointers(obj, kind)
        tags = {}
        for p in pointers:
            ref = parse_image_reference(p.image)
            if ref.digest is None:
                tags[p.image] = ref
    except InvalidArgument as exc:
        # The validating webhook explains unreadable objects; nothing to pin here.
        return _review(api_version, {**allowed, "warnings": [exc.message[:256]]})
    if not tags:
        return _review(api_version, allowed)
    budget = api_server_deadline(request.query_params.get("timeout"))
    deadline = Deadline(min(budget or 10.0, services.settings.registry.timeout_seconds * 2))
    digests: dict[str, str] = {}
    # Tags are resolved with the pod's own pull secrets, as the kubelet will pull them.
    scope = REVIEW_PULL_SECRETS.set(
        PullSecretScope(workload.namespace, workload.service_account, workload.image_pull_secrets)
    )
    try:
        for text, ref in tags.items():
            digests[text] = await registry.resolve(ref, deadline)
    except ChainproofError as exc:
        message = (
            f"chainproof could not resolve the tag of {text} to a digest: {exc.message}; "
            "pin the image by digest or try again"
        )
        return _review(api_version, _denial(uid, 403, "Forbidden", message))
    finally:
        REVIEW_PULL_SECRETS.reset(scope)
    template_meta = _template_metadata_path(kind)
    meta = _dig(obj, template_meta)
    patch = pin_patch(
        pointers,
        digests,
        annotations_present=isinstance(meta, dict) and isinstance(meta.get("annotations"), dict),
        annotation_path="/" + "/".join((*template_meta, "annotations")),
    )
    if not isinstance(meta, dict):
        # No metadata object to hold the annotation: create it first.
        patch.insert(
            len(patch) - 1, {"op": "add", "path": "/" + "/".join(template_meta), "value": {}}
        )
    encoded = base64.b64encode(json.dumps(patch).encode()).decode()
    return _review(api_version, {**allowed, "patchType": "JSONPatch", "patch": encoded})


def _template_metadata_path(kind: str) -> tuple[str, ...]:
    # The annotation goes where the pods get it: the pod's own metadata, or the template's.
    return (*pod_spec_path(kind)[:-1], "metadata")


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    here = obj
    for key in path:
        here = here.get(key) if isinstance(here, dict) else None
    return here
