"""REST routes of the judge: attestors and policy (Binary Authorization's shape), evaluation of
a hypothetical deployment (against the stored policy, or against Kritis resources sent with
the request), and the decision log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.render import judge_document_json
from chainproof.api.rest.auth import requires
from chainproof.api.rest.body import decode_json, int_param
from chainproof.api.rest.deps import Decisions, JudgeDep, Kritis, Resources
from chainproof.api.rest.grafeas import (
    JSON_BODY,
    EncodedItems,
    PageSize,
    PageToken,
    json_response,
)
from chainproof.domain.bounds import parse_time
from chainproof.domain.names import validate_project_id
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p
from chainproof.policy import AdmissionRequest, Decision, parse_kritis_resources
from chainproof.store.port import DecisionQuery

router = APIRouter(prefix="/v1", tags=["judge"])


async def _body(request: Request) -> Any:
    data = decode_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidArgument("request body must be a JSON object")
    return data


@router.post(
    "/projects/{project}/attestors",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ATTESTORS_CREATE)],
)
async def create_attestor(
    project: str,
    request: Request,
    res: Resources,
    attestor_id: Annotated[str, Query(alias="attestorId")] = "",
) -> Response:
    created = await res.create_attestor(f"projects/{project}", attestor_id, await _body(request))
    return json_response(judge_document_json(created))


@router.get("/projects/{project}/attestors", dependencies=[requires(p.ATTESTORS_LIST)])
async def list_attestors(
    project: str, res: Resources, page_size: PageSize = None, page_token: PageToken = ""
) -> Response:
    encoded = EncodedItems(judge_document_json)
    page = await res.list_attestors(
        f"projects/{project}", int_param(page_size, "pageSize"), page_token, size_of=encoded
    )
    return encoded.response("attestors", len(page.items), page.next_page_token)


@router.get("/projects/{project}/attestors/{attestor_id}", dependencies=[requires(p.ATTESTORS_GET)])
async def get_attestor(project: str, attestor_id: str, res: Resources) -> Response:
    found = await res.get_attestor(f"projects/{project}/attestors/{attestor_id}")
    return json_response(judge_document_json(found))


@router.put(
    "/projects/{project}/attestors/{attestor_id}",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.ATTESTORS_UPDATE)],
)
async def update_attestor(
    project: str, attestor_id: str, request: Request, res: Resources
) -> Response:
    updated = await res.update_attestor(
        f"projects/{project}/attestors/{attestor_id}", await _body(request)
    )
    return json_response(judge_document_json(updated))


@router.delete(
    "/projects/{project}/attestors/{attestor_id}", dependencies=[requires(p.ATTESTORS_DELETE)]
)
async def delete_attestor(project: str, attestor_id: str, res: Resources) -> Response:
    await res.delete_attestor(f"projects/{project}/attestors/{attestor_id}")
    return json_response({})


@router.get("/projects/{project}/policy", dependencies=[requires(p.POLICY_GET)])
async def get_policy(project: str, res: Resources) -> Response:
    return json_response(judge_document_json(await res.get_policy(f"projects/{project}")))


@router.put(
    "/projects/{project}/policy", openapi_extra=JSON_BODY, dependencies=[requires(p.POLICY_UPDATE)]
)
async def put_policy(project: str, request: Request, res: Resources) -> Response:
    stored = await res.put_policy(f"projects/{project}", await _body(request))
    return json_response(judge_document_json(stored))


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{key} must be a string")
    return value


@router.post(
    "/projects/{project}/policy:evaluate",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.POLICY_EVALUATE)],
)
async def evaluate_policy(project: str, request: Request, judge: JudgeDep) -> Response:
    """Judge a hypothetical deployment with the stored policy; nothing is recorded."""
    decision = await judge.evaluate(project, _deployment(await _body(request)))
    return json_response(_decision_json(decision))


_DEPLOYMENT_FIELDS = ("images", "cluster", "namespace", "serviceAccount")


def _deployment(body: dict[str, Any], *, also: tuple[str, ...] = ()) -> AdmissionRequest:
    """The hypothetical deployment of an evaluation body; ``also`` names the other fields the
    route reads itself."""
    images = body.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        raise InvalidArgument(
            'images must be a non-empty list of image references: {"images": ["gcr.io/…@sha256:…"]}'
        )
    unknown = set(body) - {*_DEPLOYMENT_FIELDS, *also}
    if unknown:
        raise InvalidArgument(
            f"unknown fields {', '.join(sorted(unknown))}: expected "
            + ", ".join((*_DEPLOYMENT_FIELDS, *also))
        )
    return AdmissionRequest(
        images=tuple(images),
        cluster=_optional_string(body, "cluster"),
        namespace=_optional_string(body, "namespace"),
        service_account=_optional_string(body, "serviceAccount"),
    )


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {**decision.to_dict(), "explanation": decision.explain()}


@router.post(
    "/projects/{project}/kritis:evaluate",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.POLICY_EVALUATE)],
)
async def evaluate_kritis(project: str, request: Request, kritis: Kritis) -> Response:
    """Judge a hypothetical deployment against the Kritis resources in the body (as the
    offline ``chainproof policy evaluate --policy kritis.yaml`` does), on the evidence stored
    in ``project``; nothing is stored or recorded."""
    validate_project_id(project, field="project")
    body = await _body(request)
    deployment = _deployment(body, also=("resources",))
    documents = body.get("resources")
    if not isinstance(documents, list) or not documents:
        raise InvalidArgument(
            "resources must be a non-empty list of Kritis resources (ImageSecurityPolicy, "
            "GenericAttestationPolicy, AttestationAuthority; apiVersion "
            "kritis.grafeas.io/v1beta1)"
        )
    decision = await kritis.evaluate(
        parse_kritis_resources(documents), deployment, evidence_projects=(project,)
    )
    return json_response(_decision_json(decision))


@router.get("/projects/{project}/decisions", dependencies=[requires(p.DECISIONS_LIST)])
async def list_decisions(
    project: str,
    decisions: Decisions,
    image: str | None = None,
    namespace: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page_size: PageSize = None,
    page_token: PageToken = "",
) -> Response:
    from chainproof.domain.images import canonical_resource

    encoded = EncodedItems(_same)
    page = await decisions.list(
        DecisionQuery(
            project=project,
            image=canonical_resource(image) if image else None,
            namespace=namespace or None,
            outcome=outcome or None,
            since=_time_param(since, "since"),
            until=_time_param(until, "until"),
        ),
        int_param(page_size, "pageSize"),
        page_token,
        size_of=encoded,
    )
    return encoded.response("decisions", len(page.items), page.next_page_token)


def _same(item: Any) -> Any:
    return item


def _time_param(value: str | None, name: str) -> datetime | None:
    return parse_time(value, name) if value else None
