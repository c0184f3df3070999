"""REST routes of reverse impact and policy replay: which running workloads a CVE, package,
key, attestor or image touches (``GET …/impact``), and what a proposed policy would change
(``POST …/policy:replay``, ``POST …/policy:diff``, ``GET …/policy:coverage``).

Each answer is built from several kinds of data, so beside its declared permission a route
requires the right to read each of them in the project (:func:`require_also`): the inventory
(``chainproof.workloads.list``), the evidence (``occurrences.list``), the attestors, the
policy and the decision log: declared with the route (``requires(…, also=…)``), so the
authorization matrix holds them too; only ``impact?key=|attestor=`` adds the attestors' list
in the handler. Nothing here enforces or stores anything.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.rest.auth import require_also, requires
from chainproof.api.rest.body import decode_json, int_param
from chainproof.api.rest.deps import Impact, Replay
from chainproof.api.rest.grafeas import JSON_BODY, PageSize, PageToken, json_response
from chainproof.domain.bounds import parse_since
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p
from chainproof.policy import Policy, parse_policy
from chainproof.services.judge.impact import ImpactQuery

router = APIRouter(prefix="/v1", tags=["impact"])

#: What every impact answer reads beside the inventory: the evidence and the policy.
_IMPACT_READS = (p.OCCURRENCES_LIST, p.POLICY_GET)
#: What a replay, diff or coverage reads beside the policy it is asked about.
_REPLAY_READS = (p.POLICY_GET, p.DECISIONS_LIST, p.WORKLOADS_LIST, p.OCCURRENCES_LIST)
_DEFAULT_SINCE = "7d"


@router.get(
    "/projects/{project}/impact",
    dependencies=[requires(p.WORKLOADS_LIST, also=_IMPACT_READS)],
)
async def impact(
    project: str,
    request: Request,
    service: Impact,
    cve: str | None = None,
    purl: str | None = None,
    key: str | None = None,
    attestor: str | None = None,
    image: str | None = None,
    page_size: PageSize = None,
    page_token: PageToken = "",
) -> Response:
    """Running workloads affected by one CVE, purl, key ID, attestor or image, and whether
    the current policy denies each."""
    query = ImpactQuery.of(
        {"cve": cve, "purl": purl, "key": key, "attestor": attestor, "image": image}
    )
    if query.question in ("key", "attestor"):
        await require_also(request, (p.ATTESTORS_LIST,))
    page = await service.impact(project, query, int_param(page_size, "pageSize"), page_token)
    return json_response(page.to_dict())


async def _body(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    data = decode_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidArgument("request body must be a JSON object")
    unknown = set(data) - set(fields)
    if unknown:
        raise InvalidArgument(
            f"unknown fields {', '.join(sorted(unknown))}: expected {', '.join(fields)}"
        )
    return data


def _policy(body: dict[str, Any], key: str) -> Policy:
    doc = body.get(key)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{key} must be a policy object (defaultAdmissionRule, …)")
    doc = {k: v for k, v in doc.items() if k not in ("name", "updateTime", "etag")}
    try:
        return parse_policy(doc)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"{key}: {exc.message}", details=[f"{key}.{d}" for d in exc.details]
        ) from None


def _since(body: dict[str, Any]) -> str:
    since = body.get("since", _DEFAULT_SINCE)
    if not isinstance(since, str):
        raise InvalidArgument("since must be a string: an age (7d, 24h) or an RFC 3339 time")
    return since


def _running(body: dict[str, Any]) -> bool:
    running = body.get("running", True)
    if not isinstance(running, bool):
        raise InvalidArgument("running must be true or false")
    return running


@router.post(
    "/projects/{project}/policy:replay",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.POLICY_EVALUATE, also=_REPLAY_READS)],
)
async def replay_policy(project: str, request: Request, service: Replay) -> Response:
    """The recorded admissions since ``since`` (default 7d) and the running pods, judged
    under the stored policy and under ``policy``: which outcomes change, and why."""
    body = await _body(request, ("policy", "since", "running"))
    proposed = _policy(body, "policy")
    since = parse_since(_since(body), "since", service.now())
    report = await service.replay(project, proposed, since, running=_running(body))
    return json_response(report.to_dict())


@router.post(
    "/projects/{project}/policy:diff",
    openapi_extra=JSON_BODY,
    dependencies=[requires(p.POLICY_EVALUATE, also=_REPLAY_READS)],
)
async def diff_policies(project: str, request: Request, service: Replay) -> Response:
    """Two policies compared on the same cases: rules defined differently, what changes rule,
    and which outcomes change."""
    body = await _body(request, ("a", "b", "since", "running"))
    a, b = _policy(body, "a"), _policy(body, "b")
    since = parse_since(_since(body), "since", service.now())
    report = await service.diff(project, a, b, since, running=_running(body))
    return json_response(report.to_dict())


@router.get(
    "/projects/{project}/policy:coverage",
    dependencies=[requires(p.POLICY_GET, also=(p.DECISIONS_LIST, p.WORKLOADS_LIST))],
)
async def policy_coverage(
    project: str,
    request: Request,
    service: Replay,
    since: Annotated[str, Query(description="admissions since: 7d, 24h or RFC 3339")] = "7d",
    everything: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """Namespaces, service accounts and images (running, or admitted since ``since``) that
    no specific rule of the stored policy covers, and the rule each falls to."""
    report = await service.coverage(project, None, parse_since(since, "since", service.now()))
    return json_response(report.to_dict(everything=everything))
