"""Reading a Kubernetes ``AdmissionReview`` envelope and deciding what to do with it.

Owns the rules of docs/adr/0066 (judge by what the API server says): which reviews are judged,
which are admitted unjudged, and which cannot be understood and are refused. Pure: the decoded
JSON in, a :class:`ReviewRequest` and then a plan out; the webhook entrypoint
(:mod:`chainproof.api.webhook`) carries the plan out, and the mutating webhook reads envelopes
here too.

:func:`read_review` raises InvalidArgument (HTTP 400) for a body that is no AdmissionReview at
all: not an object, the wrong kind or apiVersion, no ``request``, no ``uid``. Once the UID is
known, :func:`plan_review` answers :class:`Refuse` (a recorded denial with the reason) for a
review the API server would never send that way or a workload that cannot be read,
:class:`Admit` for what is not judged, and :class:`JudgeWorkload` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainproof.domain.workloads import SUPPORTED_KINDS, Workload, workload_from_object
from chainproof.errors import InvalidArgument

ADMISSION_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
JUDGED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
JUDGED_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})
_KINDS_FOLDED = {k.lower(): k for k in SUPPORTED_KINDS}


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """The parts of ``AdmissionReview.request`` the webhooks use, type-checked."""

    api_version: str
    uid: str
    operation: str
    namespace: str
    sub_resource: str
    #: ``request.kind.kind``: what the API server says the object is ("" when absent).
    kind: str
    obj: Any
    old_object: Any
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Refuse:
    """Deny with this reason (and record it): the review cannot be judged."""

    reason: str
    kind: str
    obj: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Admit:
    """Admit without judgement: nothing that runs is created or changed."""


@dataclass(frozen=True, slots=True)
class JudgeWorkload:
    workload: Workload


Plan = Refuse | Admit | JudgeWorkload


def as_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def string_field(data: dict[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"{what}.{key} must be a non-empty string")
    return value


def requested_kind(req: dict[str, Any]) -> str:
    """``request.kind.kind``: what the API server says the object is (the object has no say)."""
    kind = req.get("kind")
    if kind is None:
        return ""
    kind = as_object(kind, "request.kind")
    if not isinstance(kind.get("kind"), str) or not kind["kind"]:
        return ""
    value: str = kind["kind"]
    return value


def read_review(data: Any) -> ReviewRequest:
    """The review's request; InvalidArgument when ``data`` is no AdmissionReview."""
    review = as_object(data, "AdmissionReview")
    api_version = review.get("apiVersion")
    if review.get("kind") != "AdmissionReview" or api_version not in ADMISSION_VERSIONS:
        raise InvalidArgument(
            f"expected kind AdmissionReview with apiVersion {' or '.join(ADMISSION_VERSIONS)}, "
            f"got kind {_shown(review.get('kind'))} apiVersion {_shown(api_version)}"
        )
    assert isinstance(api_version, str)
    req = as_object(review.get("request"), "AdmissionReview.request")
    dry_run = req.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidArgument(f"request.dryRun must be true or false, got {_shown(dry_run)}")
    return ReviewRequest(
        api_version=api_version,
        uid=string_field(req, "uid", "request"),
        operation=string_field(req, "operation", "request"),
        namespace=string_field(req, "namespace", "request", required=False),
        sub_resource=string_field(req, "subResource", "request", required=False),
        kind=requested_kind(req),
        obj=req.get("object"),
        old_object=req.get("oldObject"),
        dry_run=dry_run,
    )


def _shown(value: Any) -> str:
    # Echo what was sent, briefly: a huge or deep value must not make a huge error.
    text = repr(value) if isinstance(value, str | int | float | bool | None) else type(value)
    return str(text)[:80]


def not_understood(review: ReviewRequest) -> str | None:
    """Why a review the API server would never send this way cannot be judged, or None."""
    operation, kind = review.operation, review.kind
    if operation not in OPERATIONS:
        return (
            f"request.operation {operation[:40]!r} is not one of "
            + ", ".join(sorted(OPERATIONS))
            + " (the values are case-sensitive)"
        )
    if operation not in JUDGED_OPERATIONS:
        return None
    if not kind:
        return "request.kind.kind is missing: the API server always says what the object is"
    folded = _KINDS_FOLDED.get(kind.lower())
    if folded is not None and folded != kind:
        return f"request.kind.kind {kind[:40]!r} is not a kind Kubernetes spells: expected {folded}"
    if kind not in SUPPORTED_KINDS:
        return None
    obj = as_object(review.obj, "request.object")
    own = obj.get("kind")
    if own is not None and own != kind:
        return (
            f"request.object says kind {str(own)[:40]!r} but request.kind says {kind!r}: the "
            "object is judged as what the API server says, and they must agree"
        )
    if not review.namespace:
        # The object's own metadata.namespace is no substitute: rules depend on it.
        return (
            f"request.namespace is missing: every {kind} lives in a namespace, and the rules "
            "that apply depend on it"
        )
    return None


def _images_of(obj: Any, kind: str, namespace: str) -> list[str] | None:
    if not isinstance(obj, dict):
        return None
    try:
        workload = workload_from_object({**obj, "kind": kind}, namespace=namespace)
    except (InvalidArgument, TypeError):
        return None
    return sorted(i.image for i in workload.images)


def plan_review(review: ReviewRequest) -> Plan:
    """What to do with a well-formed review (InvalidArgument for a judged kind whose
    ``request.object`` is not an object: that is no review either)."""
    problem = not_understood(review)
    if problem is not None:
        obj = review.obj if isinstance(review.obj, dict) else {}
        return Refuse(problem, review.kind or "object", obj)
    judged = (
        review.operation in JUDGED_OPERATIONS
        and review.kind in SUPPORTED_KINDS
        and review.sub_resource in JUDGED_SUBRESOURCES
    )
    if not judged:
        return Admit()
    kind, namespace = review.kind, review.namespace
    obj = as_object(review.obj, "request.object")
    meta = obj.get("metadata")
    if review.operation == "UPDATE" and isinstance(meta, dict) and meta.get("deletionTimestamp"):
        # Finalizers being removed from an object on its way out: nothing new will run —
        # unless the update also changes the images, which is then judged like any other.
        before = _images_of(review.old_object, kind, namespace)
        if before is not None and before == _images_of(obj, kind, namespace):
            return Admit()
    if namespace and isinstance(meta, dict):
        # The request's namespace is the one the object is created in (the API server
        # refuses an object whose own metadata.namespace disagrees), so rules use it.
        obj = {**obj, "metadata": {**meta, "namespace": namespace}}
    try:
        workload = workload_from_object({**obj, "kind": kind}, namespace=namespace)
    except InvalidArgument as exc:
        return Refuse(exc.message, kind, obj)
    return JudgeWorkload(workload)
