"""The per-rule policy editor: one admission rule edited field by field.

``/policy/rule?rule=default`` (or ``GROUP/KEY``, e.g. ``kubernetesNamespaceAdmissionRules/
payments``; a key not in the policy yet starts a new rule) shows the rule's evaluation and
enforcement modes as choices, its attestors as check boxes (every attestor the store knows,
plus any the rule names), and one box per chainproof check (``vulnerabilities``,
``freshness``…, the registry's keys) holding that check's JSON. Saving puts the rule back into
the current policy and saves the whole policy through the API's own parser, with the etag the
form was loaded with; every problem the parser reports is shown under the field its path
names (``defaultAdmissionRule.chainproofChecks.freshness.maxAgeHours`` → the freshness box).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from chainproof.api.render import judge_document_json
from chainproof.api.ui.routes import (
    UiRoute,
    _csrf,
    _error,
    _may,
    _project,
    _render,
    _services,
    readable,
)
from chainproof.api.ui.security import CSRF_FIELD
from chainproof.errors import ChainproofError, InvalidArgument, NotFound
from chainproof.iam import permissions as perms
from chainproof.policy.binauthz import EnforcementMode, EvaluationMode
from chainproof.policy.checks import CHECKS

router = APIRouter(include_in_schema=False, route_class=UiRoute)

RULE_GROUPS = (
    "clusterAdmissionRules",
    "kubernetesNamespaceAdmissionRules",
    "kubernetesServiceAccountAdmissionRules",
    "istioServiceIdentityAdmissionRules",
)
CHECK_KEYS = tuple(c.key for c in CHECKS)
_MAX_KEY = 253


def rule_location(text: str) -> tuple[str, str | None]:
    """(group, key) of a ``rule=`` parameter: ``("defaultAdmissionRule", None)`` for default."""
    if text in ("", "default"):
        return "defaultAdmissionRule", None
    group, sep, key = text.partition("/")
    if not sep or group not in RULE_GROUPS or not key or len(key) > _MAX_KEY:
        raise InvalidArgument(
            f"rule={text[:80]!r}: expected default or GROUP/KEY with GROUP one of "
            + ", ".join(RULE_GROUPS)
        )
    return group, key


def rule_path(group: str, key: str | None) -> str:
    """Where the parser reports this rule's problems (its error paths start with this)."""
    return group if key is None else f"{group}.{key}"


def field_of(detail: str, prefix: str) -> str:
    """The form field a parser problem belongs to; "" for the rule or policy as a whole."""
    head = detail.split(":", 1)[0]
    if not head.startswith(prefix + "."):
        return ""
    rest = head[len(prefix) + 1 :]
    if rest.startswith("chainproofChecks."):
        name = rest.removeprefix("chainproofChecks.").split(".", 1)[0].split("[", 1)[0]
        return f"check-{name}" if name in CHECK_KEYS else "checks"
    name = rest.split(".", 1)[0].split("[", 1)[0]
    return name if name in ("evaluationMode", "enforcementMode", "requireAttestationsBy") else ""


def rule_from_form(form: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The rule a submitted form describes, and the problems found before any parser runs
    (a check box that is not JSON)."""
    errors: dict[str, list[str]] = {}
    rule: dict[str, Any] = {}
    for name in ("evaluationMode", "enforcementMode"):
        value = (form.get(name) or [""])[-1].strip()
        if value:
            rule[name] = value
    attestors = [a.strip() for a in form.get("requireAttestationsBy", []) if a.strip()]
    if attestors:
        rule["requireAttestationsBy"] = attestors
    checks: dict[str, Any] = {}
    for key in CHECK_KEYS:
        text = (form.get(f"check-{key}") or [""])[-1].strip()
        if not text:
            continue
        try:
            checks[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.setdefault(f"check-{key}", []).append(
                f"{key}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            )
    if checks:
        rule["chainproofChecks"] = checks
    return rule, errors


def form_values(rule: dict[str, Any]) -> dict[str, Any]:
    checks = rule.get("chainproofChecks") or {}
    return {
        "evaluationMode": rule.get("evaluationMode", ""),
        "enforcementMode": rule.get("enforcementMode", ""),
        "requireAttestationsBy": list(rule.get("requireAttestationsBy") or []),
        **{
            f"check-{k}": json.dumps(checks[k], indent=2) if k in checks else "" for k in CHECK_KEYS
        },
    }


async def _current(request: Request) -> dict[str, Any] | None:
    try:
        stored = await _services(request).judge_resources.get_policy(
            f"projects/{_project(request)}"
        )
    except NotFound:
        return None
    return judge_document_json(stored)


def _rule_of(policy: dict[str, Any] | None, group: str, key: str | None) -> dict[str, Any]:
    if policy is None:
        return {}
    found = policy.get(group) if key is None else (policy.get(group) or {}).get(key)
    return dict(found) if isinstance(found, dict) else {}


async def _page(
    request: Request,
    rule_param: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    group, key = rule_location(rule_param)
    policy = await _current(request)
    if values is None:
        values = form_values(_rule_of(policy, group, key))
    services = _services(request)
    known: list[str] = []
    for p in await readable(request, perms.ATTESTORS_LIST):
        page = await services.judge_resources.list_attestors(f"projects/{p}", 1000, "")
        known.extend(a.name for a in page.items)
    attestors = list(dict.fromkeys([*known, *values["requireAttestationsBy"]]))
    return await _render(
        request,
        "policy_rule.html",
        status_code=status_code,
        title="Edit rule",
        rule_param=rule_param or "default",
        rule_label="default rule" if key is None else f"{group}: {key}",
        values=values,
        errors=errors or {},
        message=message,
        etag=(policy or {}).get("etag", ""),
        evaluation_modes=[m.value for m in EvaluationMode],
        enforcement_modes=[m.value for m in EnforcementMode],
        attestors=attestors,
        check_keys=CHECK_KEYS,
    )


@router.get("/policy/rule", response_class=HTMLResponse, dependencies=_may(perms.POLICY_GET))
async def edit_rule(request: Request) -> Response:
    try:
        return await _page(request, request.query_params.get("rule", "default"))
    except ChainproofError as exc:
        return await _error(request, exc)


@router.post("/policy/rule", response_class=HTMLResponse, dependencies=_may(perms.POLICY_UPDATE))
async def save_rule(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    try:
        await _csrf(request).check(request, (form.get(CSRF_FIELD) or [""])[-1])
        rule_param = (form.get("rule") or ["default"])[-1]
        group, key = rule_location(rule_param)
    except ChainproofError as exc:
        return await _error(request, exc)
    rule, errors = rule_from_form(form)
    values = {
        **form_values(rule),
        **{f"check-{k}": (form.get(f"check-{k}") or [""])[-1] for k in CHECK_KEYS},
    }
    if not errors:
        document = dict(await _current(request) or {})
        if key is None:
            document[group] = rule
        else:
            document[group] = {**(document.get(group) or {}), key: rule}
        etag = (form.get("etag") or [""])[-1]
        if etag:
            document["etag"] = etag
        for server_field in ("name", "updateTime"):
            document.pop(server_field, None)
        try:
            await _services(request).judge_resources.put_policy(
                f"projects/{_project(request)}", document
            )
        except ChainproofError as exc:
            prefix = rule_path(group, key)
            for detail in exc.details or (exc.message,):
                errors.setdefault(field_of(detail, prefix), []).append(detail)
            if exc.details:
                errors.setdefault("", []).insert(0, exc.message)
    if errors:
        return await _page(
            request,
            rule_param,
            values=values,
            errors=errors,
            message="Not saved.",
            status_code=400,
        )
    return await _page(request, rule_param, message="Saved.")
