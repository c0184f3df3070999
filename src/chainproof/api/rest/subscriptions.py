"""REST routes of the runtime side: subscriptions (``/v1/projects/{p}/subscriptions``:
create, list, get, delete) and each subscription's delivery log (``…/deliveries``, its dead
letters with ``?state=dead``); continuous-validation violations
(``/v1/projects/{p}/violations``). The routes only translate; the rules are
SubscriptionService's and ViolationService's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.rest.auth import requires
from chainproof.api.rest.body import decode_json, int_param
from chainproof.api.rest.deps import Subscriptions as Service
from chainproof.api.rest.deps import Violations
from chainproof.api.rest.grafeas import JSON_BODY, PageSize, PageToken, json_response
from chainproof.iam import permissions as p

router = APIRouter(prefix="/v1", tags=["subscriptions"])


def _name(project: str, subscription_id: str) -> str:
    return f"projects/{project}/subscriptions/{subscription_id}"


@router.post(
    "/projects/{project}/subscriptions",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.SUBSCRIPTIONS_CREATE)],
)
async def create_subscription(
    project: str,
    request: Request,
    svc: Service,
    subscription_id: Annotated[str, Query(alias="subscriptionId")] = "",
) -> Response:
    body = decode_json(await request.body())
    return json_response(await svc.create(f"projects/{project}", subscription_id, body))


@router.get("/projects/{project}/subscriptions", dependencies=[requires(p.SUBSCRIPTIONS_LIST)])
async def list_subscriptions(
    project: str,
    svc: Service,
    kind: str | None = None,
    event_type: Annotated[str | None, Query(alias="eventType")] = None,
) -> Response:
    found = await svc.list_subscriptions(
        f"projects/{project}", kind=kind or None, event_type=event_type or None
    )
    return json_response({"subscriptions": found})


@router.get(
    "/projects/{project}/subscriptions/{subscription_id}",
    dependencies=[requires(p.SUBSCRIPTIONS_GET)],
)
async def get_subscription(project: str, subscription_id: str, svc: Service) -> Response:
    return json_response(await svc.get(_name(project, subscription_id)))


@router.delete(
    "/projects/{project}/subscriptions/{subscription_id}",
    dependencies=[requires(p.SUBSCRIPTIONS_DELETE)],
)
async def delete_subscription(project: str, subscription_id: str, svc: Service) -> Response:
    await svc.delete(_name(project, subscription_id))
    return json_response({})


@router.get(
    "/projects/{project}/subscriptions/{subscription_id}/deliveries",
    dependencies=[requires(p.SUBSCRIPTIONS_GET)],
)
async def list_deliveries(
    project: str,
    subscription_id: str,
    svc: Service,
    state: str | None = None,
    page_size: PageSize = None,
) -> Response:
    given = int_param(page_size, "pageSize")
    limit = 100 if given is None else given
    found = await svc.deliveries(_name(project, subscription_id), state=state or None, limit=limit)
    return json_response({"deliveries": found})


@router.get("/projects/{project}/violations", dependencies=[requires(p.VIOLATIONS_LIST)])
async def list_violations(
    project: str,
    svc: Violations,
    cluster: str | None = None,
    namespace: str | None = None,
    state: str | None = None,
    page_size: PageSize = None,
    page_token: PageToken = "",
) -> Response:
    page = await svc.list(
        f"projects/{project}",
        cluster=cluster or None,
        namespace=namespace or None,
        state=state or None,
        size=int_param(page_size, "pageSize"),
        token=page_token,
    )
    body: dict[str, object] = {"violations": [v.to_dict() for v in page.violations]}
    if page.next_page_token:
        body["nextPageToken"] = page.next_page_token
    return json_response(body)
