"""REST routes of access control: IAM policies (Google's ``:getIamPolicy``,
``:setIamPolicy``, ``:testIamPermissions`` on projects and notes), API tokens, the audit log
and ``auth:whoami``. Each route only translates; the rules are AccessControl's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.render import audit_json, token_json, whoami_json
from chainproof.api.rest import auth
from chainproof.api.rest.auth import access_control, principal_of, public, requires
from chainproof.api.rest.body import decode_json, int_param
from chainproof.api.rest.grafeas import JSON_BODY, EncodedItems, json_response
from chainproof.domain.pagination import bounded_count
from chainproof.domain.timestamps import MissingTimeZone, parse_rfc3339
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p
from chainproof.iam.authorizer import Resource
from chainproof.iam.policy import policy_from_json

router = APIRouter(prefix="/v1", tags=["access"])


async def _object(request: Request, what: str) -> dict[str, Any]:
    data = decode_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidArgument(f"request body must be a JSON object holding {what}")
    return data


def _time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_rfc3339(value, assume_utc=False)
    except MissingTimeZone:
        raise InvalidArgument(f"{name} must carry a time zone (Z or ±hh:mm)") from None
    except ValueError as exc:
        raise InvalidArgument(
            f"{name} must be an RFC 3339 time such as 2026-12-01T12:00:00Z"
        ) from exc


async def _get(request: Request, resource: Resource) -> Response:
    policy = await access_control(request).get_iam_policy(resource)
    return json_response(policy.to_json())


async def _set(request: Request, resource: Resource) -> Response:
    body = await _object(request, '{"policy": {...}}')
    if "policy" not in body:
        raise InvalidArgument('setIamPolicy needs {"policy": {"bindings": [...], "etag": "..."}}')
    extra = set(body) - {"policy", "updateMask"}
    if extra:
        raise InvalidArgument(f"unknown fields: {', '.join(sorted(extra))}")
    policy, etag = policy_from_json(body["policy"])
    stored = await access_control(request).set_iam_policy(resource, policy, etag)
    return json_response(stored.to_json())


async def _test(request: Request, resource: Resource) -> Response:
    body = await _object(request, '{"permissions": [...]}')
    wanted = body.get("permissions", [])
    if not isinstance(wanted, list) or not all(isinstance(x, str) for x in wanted):
        raise InvalidArgument("permissions must be a list of permission names")
    held = await access_control(request).test_iam_permissions(
        principal_of(request), resource, wanted
    )
    return json_response({"permissions": held} if held else {})


def _project(request: Request) -> Resource:
    return access_control(request).iam_resource(request.path_params["project"])


def _note(request: Request) -> Resource:
    return access_control(request).iam_resource(
        request.path_params["project"], request.path_params["note_id"]
    )


_TEST = "testIamPermissions answers callers about their own permissions only"


@router.post(
    "/projects/{project}:getIamPolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.PROJECTS_GET_IAM_POLICY)],
)
async def get_project_iam_policy(project: str, request: Request) -> Response:
    return await _get(request, _project(request))


@router.post(
    "/projects/{project}:setIamPolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.PROJECTS_SET_IAM_POLICY)],
)
async def set_project_iam_policy(project: str, request: Request) -> Response:
    return await _set(request, _project(request))


@router.post(
    "/projects/{project}:testIamPermissions", openapi_extra=JSON_BODY, dependencies=[public(_TEST)]
)
async def test_project_iam_permissions(project: str, request: Request) -> Response:
    return await _test(request, _project(request))


@router.post(
    "/projects/{project}/notes/{note_id}:getIamPolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.NOTES_GET_IAM_POLICY, on=auth.note)],
)
async def get_note_iam_policy(project: str, note_id: str, request: Request) -> Response:
    return await _get(request, _note(request))


@router.post(
    "/projects/{project}/notes/{note_id}:setIamPolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.NOTES_SET_IAM_POLICY, on=auth.note)],
)
async def set_note_iam_policy(project: str, note_id: str, request: Request) -> Response:
    return await _set(request, _note(request))


@router.post(
    "/projects/{project}/notes/{note_id}:testIamPermissions",
    openapi_extra=JSON_BODY,
    dependencies=[public(_TEST)],
)
async def test_note_iam_permissions(project: str, note_id: str, request: Request) -> Response:
    return await _test(request, _note(request))


# ---------------------------------------------------------------------- API tokens
@router.post(
    "/projects/{project}/tokens", openapi_extra=JSON_BODY, dependencies=[requires(p.TOKENS_CREATE)]
)
async def create_token(project: str, request: Request) -> Response:
    body = await _object(request, '{"name", "role", "expireTime"}')
    extra = set(body) - {"name", "role", "expireTime"}
    if extra:
        raise InvalidArgument(f"unknown fields in token: {', '.join(sorted(extra))}")
    name, role = body.get("name"), body.get("role")
    if not isinstance(name, str) or not isinstance(role, str):
        raise InvalidArgument('a token needs {"name": "...", "role": "roles/..."}')
    expire = body.get("expireTime")
    if expire is not None and not isinstance(expire, str):
        raise InvalidArgument("expireTime must be an RFC 3339 time")
    created = await access_control(request).create_token(
        principal_of(request), name, project, role, _time(expire, "expireTime")
    )
    # The secret is in this response and nowhere else, ever.
    return json_response({**token_json(created.token), "secret": created.secret}, 200)


@router.get("/projects/{project}/tokens", dependencies=[requires(p.TOKENS_LIST)])
async def list_tokens(project: str, request: Request) -> Response:
    tokens = await access_control(request).list_tokens(project)
    return json_response({"tokens": [token_json(t) for t in tokens]})


@router.delete("/projects/{project}/tokens/{name}", dependencies=[requires(p.TOKENS_REVOKE)])
async def revoke_token(project: str, name: str, request: Request) -> Response:
    revoked = await access_control(request).revoke_token(project, name)
    return json_response(token_json(revoked))


# ---------------------------------------------------------------------- audit, whoami
@router.get("/projects/{project}/auditLogs", dependencies=[requires(p.AUDIT_LOGS_LIST)])
async def list_audit_logs(
    project: str,
    request: Request,
    principal: Annotated[str | None, Query(description="e.g. user:ci@example.com")] = None,
    permission: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(description="RFC 3339, exclusive")] = None,
    page_size: Annotated[str | None, Query(alias="pageSize")] = None,
    page_token: Annotated[str, Query(alias="pageToken")] = "",
) -> Response:
    size = int_param(page_size, "pageSize")
    entries = await access_control(request).list_audit(
        project,
        principal=principal or None,
        permission=permission or None,
        since=_time(since, "since"),
        until=_time(until, "until"),
        before=page_token or None,
        page_size=size,
    )
    # Bounded by bytes too: a page stops early, and the token resumes after its last entry.
    encoded = EncodedItems(audit_json)
    count = bounded_count(entries, len(entries), encoded, lambda e: f"audit entry {e.entry_id}")
    token = ""
    if count < len(entries) or (entries and len(entries) == (size or 100)):
        token = entries[count - 1].entry_id
    return encoded.response("auditLogs", count, token)


@router.get("/auth:whoami", dependencies=[public("callers may learn who they are")])
async def whoami(request: Request) -> Response:
    return json_response(whoami_json(principal_of(request)))
