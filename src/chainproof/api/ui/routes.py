"""The web UI's pages: server-rendered HTML (Jinja2, autoescaped) over the same services as
the REST API, enhanced by the vendored htmx when scripts run and complete without them.

Every page answers with the security headers of :mod:`chainproof.api.ui.security`; the one
write (saving the policy) requires the CSRF token. Filters live in the query string, so every
view can be shared as a link.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from chainproof.api.render import judge_document_json
from chainproof.api.rest.auth import BrowserRoute, admission_project, public, requires
from chainproof.api.rest.deps import services_of
from chainproof.api.ui.security import (
    CSRF_FIELD,
    Csrf,
    apply_headers,
    new_cookie,
    set_cookie,
)
from chainproof.api.ui.session import SESSION_COOKIE, Sealer, clear_cookie, open_session
from chainproof.domain.image_summary import SEVERITIES, enum_name
from chainproof.domain.images import canonical_resource
from chainproof.domain.timestamps import parse_rfc3339, rfc3339
from chainproof.errors import (
    ChainproofError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from chainproof.iam import permissions as perms
from chainproof.policy import AdmissionRequest, parse_policy
from chainproof.services.dashboard import (
    Dashboard,
    attestation_keys,
    build_summary,
    by_kind,
    finding_of,
    note_name,
    occurrence_json,
    package_row,
    stored_sbom,
)
from chainproof.services.wiring import Services
from chainproof.store.port import DecisionQuery, DecisionRecord
from chainproof.store.summaries import SORTS, After, SummaryQuery

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"

templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=True,  # every page, every value: nothing reaches the page unescaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _may(permission: str) -> list[Any]:
    """Pages are read and written in the admission project, under the API's permissions."""
    return [requires(permission, on=admission_project)]


class UiRoute(BrowserRoute):
    """A page: the signed-in session counts as a credential, and a refusal is a page too —
    a browser that is not signed in is sent to sign in, one without the permission gets a
    403 page naming it."""

    async def session_bearer(self, request: Request) -> str | None:
        session = await open_session(sealer(request), request, datetime.now(UTC))
        request.state.ui_session = session
        return session.bearer if session is not None else None

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except Unauthenticated as exc:
                return await _unauthenticated(request, exc)
            except PermissionDenied as exc:
                return await _error(request, exc)
            return response

        return guarded


router = APIRouter(include_in_schema=False, route_class=UiRoute)

OUTCOMES = ("allowed", "denied", "dry-run-would-deny", "breakglass", "error")
#: What a ``before=`` keyset position of the decision log may be: a decision ID's characters.
_DECISION_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")
_PAGE_ROWS = 100


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


templates.filters["rfc3339"] = rfc3339
templates.filters["pretty_json"] = lambda v: json.dumps(v, indent=2, sort_keys=True)


def _services(request: Request) -> Services:
    """The wired services, through the dependency module (the one reader of the app's state;
    pages reach them from helpers shared by many routes, hence not from their signatures)."""
    return services_of(request)


def _dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = _services(request).dashboard
    return dashboard


def _csrf(request: Request) -> Csrf:
    state = request.app.state
    if not hasattr(state, "ui_csrf"):
        state.ui_csrf = Csrf(_services(request).store)
    csrf: Csrf = state.ui_csrf
    return csrf


def sealer(request: Request) -> Sealer:
    state = request.app.state
    if not hasattr(state, "ui_sealer"):
        state.ui_sealer = Sealer(_services(request).store)
    found: Sealer = state.ui_sealer
    return found


def safe_next(value: str | None) -> str:
    """A path on this server to return to after signing in; anything else is "/" (an open
    redirect would let a link to our sign-in page send people anywhere)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


async def _unauthenticated(request: Request, exc: Unauthenticated) -> Response:
    had_session = SESSION_COOKIE in request.cookies
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        params = {"next": here, **({"ended": "1"} if had_session else {})}
        response: Response = RedirectResponse(f"/signin?{urlencode(params)}", status_code=303)
        apply_headers(response)
    else:
        response = await _error(request, exc)
        response.headers["WWW-Authenticate"] = "Bearer"  # as the API's 401 (RFC 6750)
    if had_session:
        clear_cookie(response, request, SESSION_COOKIE)
    return response


async def readable(request: Request, permission: str = perms.OCCURRENCES_LIST) -> list[str]:
    """The projects whose data the caller may read with ``permission``: pages show only
    those, as the API would answer only those (a viewer of one project sees nothing of
    another's occurrences or attestors)."""
    return (await _readable_of(request, permission))[0]


async def _readable_of(request: Request, permission: str) -> tuple[list[str], list[str]]:
    """(the projects readable with ``permission``, every project)."""
    access = _services(request).access
    principal = request.state.principal
    every = await _dashboard(request).projects()
    out: list[str] = []
    for p in every:
        if await access.test_iam_permissions(principal, access.iam_resource(p), [permission]):
            out.append(p)
    return out, every


async def _scope(request: Request) -> tuple[str, ...] | None:
    """The summary scope of the caller: the projects whose occurrences it may list (None:
    every project, the summaries kept over all of them)."""
    mine, every = await _readable_of(request, perms.OCCURRENCES_LIST)
    return Dashboard.scope(mine, every)


async def sees_runtime(request: Request) -> bool:
    """Whether the caller may see what runs: the inventory is the admission project's (its
    webhook and watchers feed it), read under the permission of that project's decision log,
    which names the same namespaces and workloads."""
    access = _services(request).access
    resource = access.iam_resource(_project(request))
    principal = request.state.principal
    return bool(await access.test_iam_permissions(principal, resource, [perms.DECISIONS_LIST]))


def _project(request: Request) -> str:
    project: str = _services(request).settings.admission.project
    return project


async def _render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    csrf = _csrf(request)
    cookie = csrf.cookie_of(request)
    fresh = cookie is None
    if cookie is None:
        cookie = new_cookie()
    body = templates.get_template(template).render(
        request_path=request.url.path,
        project=_project(request),
        csrf_field=CSRF_FIELD,
        csrf_token=await csrf.token_for(cookie),
        viewer=getattr(request.state, "principal", None),
        signed_in=getattr(request.state, "ui_session", None) is not None,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    if fresh:
        set_cookie(response, request, cookie)
    apply_headers(response)
    return response


async def _error(request: Request, exc: ChainproofError) -> HTMLResponse:
    return await _render(
        request, "error.html", status_code=exc.http_status, error=exc, title="Error"
    )


def _link(path: str, params: dict[str, str], **changes: str) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v}
    return f"{path}?{urlencode(merged)}" if merged else path


templates.globals["link"] = _link


# --------------------------------------------------------------------------- overview


@router.get(
    "/",
    response_class=HTMLResponse,
    dependencies=_may(perms.OCCURRENCES_LIST),
)
async def overview(request: Request) -> Response:
    now = datetime.now(UTC)
    data = await _dashboard(request).overview(
        _project(request), now, await _scope(request), runtime=await sees_runtime(request)
    )
    peak = max((sum(c.values()) for _, c in data.hourly), default=0)
    return await _render(
        request,
        "overview.html",
        title="Overview",
        data=data,
        outcomes=OUTCOMES,
        severities=tuple(reversed(SEVERITIES)),
        peak=max(peak, 1),
    )


# --------------------------------------------------------------------------- images


def _required(config: Any) -> dict[str, str]:
    """Attestor name → the note its attestations are occurrences of, for every attestor the
    project's policy names."""
    if config.policy is None:
        return {}
    out: dict[str, str] = {}
    for name in sorted(config.policy.referenced_attestors()):
        attestor = config.attestors.get(name)
        out[name] = attestor.note_reference if attestor is not None else ""
    return out


def _after(value: str, sort: str) -> After | None:
    """The keyset position of a ``next`` link (made by :func:`_next_link`)."""
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)))
        key, resource = data["k"], data["r"]
        if sort == "scan":
            key = parse_rfc3339(key)
        elif sort in ("severity", "occurrences"):
            key = int(key)
        else:
            key = str(key)
        return key, str(resource)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgument(
            f"after={value[:40]!r} is not a position of this list (sort={sort}): "
            "follow the page's own Next link"
        ) from None


def _encode_after(after: After) -> str:
    key, resource = after
    value = rfc3339(key) if isinstance(key, datetime) else key
    raw = json.dumps({"k": value, "r": resource}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _image_query(
    q: dict[str, str],
    project: str,
    scope: tuple[str, ...] | None,
    required: dict[str, str],
    now: datetime,
) -> SummaryQuery | None:
    """The summary query of ``/images``' parameters; None when nothing can match (present=
    an attestor the policy names but that does not exist)."""
    decision = q.get("decision", "")
    if decision and decision not in (*OUTCOMES, "none"):
        raise InvalidArgument(
            f"decision={decision!r}: expected one of {', '.join((*OUTCOMES, 'none'))}"
        )
    severity = q.get("severity", "")
    if severity and severity not in (*SEVERITIES, "NONE"):
        raise InvalidArgument(
            f"severity={severity!r}: expected one of {', '.join((*SEVERITIES, 'NONE'))}"
        )
    sort = q.get("sort", "image")
    if sort not in SORTS:
        raise InvalidArgument(f"sort={sort!r}: expected one of {', '.join(SORTS)}")
    order = q.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidArgument(f"order={order!r}: expected asc or desc")
    since = not_since = None
    if q.get("scanned"):
        try:
            hours = int(q["scanned"])
        except ValueError:
            raise InvalidArgument(f"scanned={q['scanned']!r}: expected a number of hours") from None
        if not -100_000 <= hours <= 100_000:
            raise InvalidArgument(f"scanned={hours}: at most 100000 hours either way")
        if hours > 0:
            since = now - timedelta(hours=hours)
        elif hours < 0:
            not_since = now + timedelta(hours=hours)
    present = missing = ""
    if q.get("present"):
        present = required.get(q["present"], "")
        if not present:
            return None
    if q.get("missing"):
        missing = required.get(q["missing"], "")  # an attestor not found: every image lacks it
    return SummaryQuery(
        projects=scope,
        decision_project=project,
        image=q.get("image", ""),
        decision=decision,
        present=present,
        missing=missing,
        severity=severity,
        scanned_since=since,
        not_scanned_since=not_since,
        sort=sort,
        descending=order == "desc",
    )


@router.get(
    "/images",
    response_class=HTMLResponse,
    dependencies=_may(perms.OCCURRENCES_LIST),
)
async def images(request: Request) -> Response:
    q = {k: v for k, v in request.query_params.items() if v}
    now = datetime.now(UTC)
    dashboard = _dashboard(request)
    try:
        project = _project(request)
        config = await _services(request).judge_resources.load_config(project)
        required = _required(config)
        query = _image_query(q, project, await _scope(request), required, now)
        after = _after(q.get("after", ""), q.get("sort", "image"))
        if query is None:
            rows, total, total_bounded, next_after = [], 0, False, None
        else:
            page = await dashboard.images(query, after, _PAGE_ROWS)
            rows, total, next_after = page.rows, page.total, page.next_after
            total_bounded = page.total_bounded
        running: dict[str, Any] = {}
        runtime = await sees_runtime(request)
        if runtime:
            running, _ = await dashboard.running([r.summary.resource for r in rows])
    except ChainproofError as exc:
        return await _error(request, exc)
    base = {k: v for k, v in q.items() if k != "after"}
    return await _render(
        request,
        "images.html",
        title="Images",
        q=base,
        rows=rows,
        total=total,
        total_bounded=total_bounded,
        shown=len(rows),
        first=after is None,
        next_link=_link("/images", base, after=_encode_after(next_after)) if next_after else "",
        required=required,
        outcomes=OUTCOMES,
        severities=tuple(reversed(SEVERITIES)),
        ago=lambda t: _ago(now, t),
        sorts=SORTS,
        runtime=runtime,
        running=running,
    )


@router.get(
    "/image",
    response_class=HTMLResponse,
    dependencies=_may(perms.OCCURRENCES_LIST),
)
async def image(request: Request) -> Response:
    ref = request.query_params.get("ref", "")
    pkg = request.query_params.get("pkg", "").strip().lower()
    if not ref:
        return await _error(request, InvalidArgument("ref is required: /image?ref=IMAGE"))
    try:
        dashboard = _dashboard(request)
        resource, records, partial = await dashboard.image(ref, await readable(request))
        project = _project(request)
        decisions, more = await dashboard.decisions(
            DecisionQuery(project=project, image=resource), 50
        )
        verdict = None
        if "@" in resource:
            verdict = await _services(request).judge.evaluate(
                project, AdmissionRequest(images=(resource,))
            )
        runtime = await sees_runtime(request)
        running, running_more = await dashboard.running([resource]) if runtime else ({}, False)
    except ChainproofError as exc:
        return await _error(request, exc)
    kinds = by_kind(records)
    packages = [package_row(r) for r in kinds.get("PACKAGE", [])]
    if pkg:
        packages = [p for p in packages if pkg in p.name.lower() or pkg in p.purl.lower()]
    return await _render(
        request,
        "image.html",
        title="Image",
        resource=resource,
        kinds=kinds,
        partial=partial,
        attestations=kinds.get("ATTESTATION", []),
        builds=kinds.get("BUILD", []),
        discoveries=kinds.get("DISCOVERY", []),
        packages=packages,
        pkg=pkg,
        findings=sorted(
            (finding_of(r) for r in kinds.get("VULNERABILITY", [])),
            key=lambda f: (-SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 0, f.cve),
        ),
        sboms=[x for x in map(stored_sbom, kinds.get("SBOM_REFERENCE", [])) if x is not None],
        others={k: v for k, v in kinds.items() if k not in _SHOWN_KINDS},
        note_name=note_name,
        attestation_keys=attestation_keys,
        build_summary=build_summary,
        scan_status=lambda r: enum_name(r.occurrence.discovery, "analysis_status"),
        occurrence_json=occurrence_json,
        decisions=decisions,
        more_decisions=more,
        verdict=verdict,
        runtime=runtime,
        workloads=running.get(resource, []),
        workloads_more=running_more,
    )


_SHOWN_KINDS = frozenset(
    {"ATTESTATION", "BUILD", "PACKAGE", "VULNERABILITY", "DISCOVERY", "SBOM_REFERENCE"}
)


# --------------------------------------------------------------------------- SBOM download


#: The registered media type and a file name suffix of each SBOM format ingestion stores.
SBOM_MEDIA = {
    "cyclonedx-json": ("application/vnd.cyclonedx+json", ".cdx.json"),
    "cyclonedx-xml": ("application/vnd.cyclonedx+xml", ".cdx.xml"),
    "spdx-json": ("application/spdx+json", ".spdx.json"),
    "spdx-tag-value": ("text/spdx; charset=utf-8", ".spdx"),
}

#: A downloaded document is data, never a page: nothing in it may run, even if opened inline.
_DOWNLOAD_CSP = "default-src 'none'; sandbox"


@router.get(
    "/sbom/{project}/{digest}",
    # The REST route's permission (GET /v1/projects/{project}/documents/{digest}), on the
    # project the document was ingested into.
    dependencies=[requires(perms.OCCURRENCES_GET)],
)
async def sbom(request: Request, project: str, digest: str) -> Response:
    try:
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise InvalidArgument(
                f"{digest[:80]!r} is not a document digest: expected sha256:<64 hex>"
            )
        fmt, content = await _services(request).ingest.document(f"projects/{project}", digest)
        if fmt not in SBOM_MEDIA:
            raise NotFound(
                f"document {digest} of project {project} is a {fmt or 'stored'} document, not an "
                f"SBOM; it is served at /v1/projects/{project}/documents/{digest}"
            )
    except ChainproofError as exc:
        return await _error(request, exc)
    media, suffix = SBOM_MEDIA[fmt]
    response = Response(content, media_type=media)
    name = f"sbom-{digest.removeprefix('sha256:')[:16]}{suffix}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Security-Policy"] = _DOWNLOAD_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The bytes behind a digest never change, but who may read them can: keep it private
    # and let the browser revalidate through the permission check.
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["ETag"] = f'"{digest}"'
    return response


# --------------------------------------------------------------------------- decisions


def _time_param(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise InvalidArgument(
            f"{name} {value!r} is not a time: expected e.g. 2026-11-22T10:00"
        ) from None


@router.get(
    "/decisions",
    response_class=HTMLResponse,
    dependencies=_may(perms.DECISIONS_LIST),
)
async def decisions(request: Request) -> Response:
    q = {k: v for k, v in request.query_params.items() if v}
    try:
        if q.get("outcome") and q["outcome"] not in OUTCOMES:
            raise InvalidArgument(
                f"outcome={q['outcome']!r}: expected one of {', '.join(OUTCOMES)}"
            )
        query = DecisionQuery(
            project=_project(request),
            image=canonical_resource(q["image"]) if q.get("image") else None,
            namespace=q.get("namespace") or None,
            outcome=q.get("outcome") or None,
            since=_time_param(q.get("since", ""), "since"),
            until=_time_param(q.get("until", ""), "until"),
        )
        before = q.get("before", "")
        if before and not _DECISION_ID.fullmatch(before):
            raise InvalidArgument(
                f"before={before[:40]!r} is not a decision ID: follow the page's own Older link"
            )
        rows, more = await _dashboard(request).decisions(query, _PAGE_ROWS, before or None)
    except ChainproofError as exc:
        return await _error(request, exc)
    base = {k: v for k, v in q.items() if k != "before"}
    older = _link("/decisions", base, before=rows[-1].decision_id) if more and rows else ""
    return await _render(
        request,
        "decisions.html",
        title="Decisions",
        q=base,
        rows=rows,
        more=more,
        first=not q.get("before"),
        older_link=older,
        newest_link=_link("/decisions", base),
        outcomes=OUTCOMES,
    )


@router.get(
    "/decisions/{decision_id}",
    response_class=HTMLResponse,
    dependencies=_may(perms.DECISIONS_LIST),
)
async def decision(request: Request, decision_id: str) -> Response:
    try:
        record = await _dashboard(request).decision(_project(request), decision_id)
        if record is None:
            raise NotFound(f"decision {decision_id} does not exist")
    except ChainproofError as exc:
        return await _error(request, exc)
    return await _render(request, "decision.html", title="Decision", d=record, explain=explain)


def explain(record: DecisionRecord) -> str:
    """The stored decision as the text the judge's explanation reads (Decision.explain)."""
    d: dict[str, Any] = dict(record.data.get("decision") or {})
    head = {
        "allowed": "ALLOWED",
        "denied": "DENIED",
        "dry-run-would-deny": "ALLOWED (dry run: the policy would deny)",
    }.get(str(d.get("outcome", "")), str(d.get("outcome", record.outcome)).upper())
    if d.get("policy"):
        head += f" by {d['policy']}"
    lines = [head]
    for image in d.get("images") or []:
        lines.append(f"- {image.get('reference') or image.get('image')}: {image.get('outcome')}")
        rule = image.get("rule") or {}
        lines.append(f"  rule: {rule.get('why', '')}")
        if rule.get("evidenceFrom"):
            lines.append(
                "  evidence counted from: "
                + ", ".join(rule["evidenceFrom"])
                + " (and unsigned Grafeas facts)"
            )
        for req in image.get("requirements") or []:
            mark = "ok  " if req.get("passed") else "FAIL"
            lines.append(f"  [{mark}] {req.get('name')}: {req.get('reason')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- policy


#: The top-level fields of a Binary Authorization policy, each edited in its own box so that
#: the parser's error paths (``clusterAdmissionRules.x.evaluationMode: …``) land at a field.
POLICY_FIELDS = (
    "globalPolicyEvaluationMode",
    "admissionWhitelistPatterns",
    "defaultAdmissionRule",
    "clusterAdmissionRules",
    "kubernetesNamespaceAdmissionRules",
    "kubernetesServiceAccountAdmissionRules",
    "istioServiceIdentityAdmissionRules",
    "description",
)


def _field_of(detail: str) -> str:
    head = detail.split(":", 1)[0]
    for name in POLICY_FIELDS:
        if head == name or head.startswith((name + ".", name + "[")):
            return name
    return ""


async def _policy_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    status_code: int = 200,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    services = _services(request)
    project = _project(request)
    policy: dict[str, Any] | None
    try:
        policy = judge_document_json(
            await services.judge_resources.get_policy(f"projects/{project}")
        )
    except NotFound:
        policy = None
    config = await services.judge_resources.load_config(project)
    attestors: list[dict[str, Any]] = []
    for p in await readable(request, perms.ATTESTORS_LIST):
        page = await services.judge_resources.list_attestors(f"projects/{p}", 1000, "")
        attestors.extend(judge_document_json(d) for d in page.items)
    if values is None:
        values = {
            name: json.dumps(policy[name], indent=2)
            if policy is not None and name in policy and not isinstance(policy[name], str)
            else (policy or {}).get(name, "")
            for name in POLICY_FIELDS
        }
    return await _render(
        request,
        "policy.html",
        status_code=status_code,
        title="Policy",
        policy=policy,
        unusable=config.unusable,
        attestors=attestors,
        fields=POLICY_FIELDS,
        values=values,
        errors=errors or {},
        message=message,
        etag=(policy or {}).get("etag", ""),
        preview=preview,
    )


@router.get(
    "/policy",
    response_class=HTMLResponse,
    dependencies=_may(perms.POLICY_GET),
)
async def policy(request: Request) -> Response:
    return await _policy_page(request)


_STRING_FIELDS = frozenset({"globalPolicyEvaluationMode", "description"})


async def _policy_form(
    request: Request,
) -> tuple[dict[str, str], dict[str, list[str]], dict[str, Any]] | HTMLResponse:
    """The editor's form, checked for its CSRF token: (field values, errors by field, the
    document they make), or the refusal page."""
    form = {
        k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    try:
        await _csrf(request).check(request, form.get(CSRF_FIELD))
    except ChainproofError as exc:
        return await _error(request, exc)
    values = {name: form.get(name, "") for name in POLICY_FIELDS}
    errors: dict[str, list[str]] = {}
    document: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        text = values[name].strip()
        if not text:
            continue
        if name in _STRING_FIELDS:
            document[name] = text
            continue
        try:
            document[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.setdefault(name, []).append(
                f"{name}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            )
    if form.get("etag"):
        document["etag"] = form["etag"]
    return values, errors, document


def _field_errors(exc: ChainproofError, errors: dict[str, list[str]]) -> None:
    for detail in exc.details or (exc.message,):
        errors.setdefault(_field_of(detail), []).append(detail)
    if exc.details:
        errors.setdefault("", []).insert(0, exc.message)


@router.post(
    "/policy",
    response_class=HTMLResponse,
    dependencies=_may(perms.POLICY_UPDATE),
)
async def save_policy(request: Request) -> Response:
    checked = await _policy_form(request)
    if isinstance(checked, HTMLResponse):
        return checked
    values, errors, document = checked
    if not errors:
        try:
            await _services(request).judge_resources.put_policy(
                f"projects/{_project(request)}", document
            )
        except ChainproofError as exc:
            _field_errors(exc, errors)
    if errors:
        return await _policy_page(
            request, values=values, errors=errors, status_code=400, message="Not saved."
        )
    return await _policy_page(request, message="Saved.")


#: What a preview looks back over, and how many changes it lists.
PREVIEW_SINCE = timedelta(days=7)
PREVIEW_CHANGES = 50


@router.post(
    "/policy/preview",
    response_class=HTMLResponse,
    dependencies=[
        requires(
            perms.POLICY_EVALUATE,
            on=admission_project,
            also=(
                perms.POLICY_GET,
                perms.DECISIONS_LIST,
                perms.WORKLOADS_LIST,
                perms.OCCURRENCES_LIST,
            ),
        )
    ],
)
async def preview_policy(request: Request) -> Response:
    """What the edited policy would change (a replay of the last 7 days of admissions and
    of the running pods), shown above the editor with the edits kept; nothing is saved."""
    checked = await _policy_form(request)
    if isinstance(checked, HTMLResponse):
        return checked
    values, errors, document = checked
    report: dict[str, Any] | None = None
    if not errors:
        services = _services(request)
        try:
            proposed = parse_policy({k: v for k, v in document.items() if k != "etag"})
            since = services.replay.now() - PREVIEW_SINCE
            report = (await services.replay.replay(_project(request), proposed, since)).to_dict()
        except ChainproofError as exc:
            _field_errors(exc, errors)
    if errors or report is None:
        return await _policy_page(
            request, values=values, errors=errors, status_code=400, message="Not previewed."
        )
    report["changes"] = report["changes"][:PREVIEW_CHANGES]
    return await _policy_page(
        request, values=values, preview=report, message="Preview: nothing was saved."
    )


# --------------------------------------------------------------------------- impact


@router.get(
    "/impact",
    response_class=HTMLResponse,
    dependencies=_may(perms.OCCURRENCES_LIST),
)
async def impact(request: Request) -> Response:
    query = request.query_params.get("q", "")
    dashboard = _dashboard(request)
    try:
        if len(query) > 512:
            raise InvalidArgument(f"q is {len(query)} characters long: at most 512")
        rows, more = await dashboard.affected(query, await _scope(request))
        runtime = await sees_runtime(request)
        running, running_more = (
            await dashboard.running(sorted({r.image for r in rows})) if runtime else ({}, False)
        )
    except ChainproofError as exc:
        return await _error(request, exc)
    workloads = sorted(
        (w for ws in running.values() for w in ws),
        key=lambda w: (w.cluster, w.namespace, w.workload, w.pod, w.container),
    )
    return await _render(
        request,
        "impact.html",
        title="Vulnerability / package",
        q=query,
        rows=rows,
        more=more,
        images=len({r.image for r in rows}),
        runtime=runtime,
        workloads=workloads,
        workloads_more=running_more,
    )


# --------------------------------------------------------------------------- static


_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}


_static_files: dict[str, tuple[bytes, str]] = {}


@router.get("/static/{name}", dependencies=[public("committed static assets")])
async def static(name: str) -> Response:
    # A fixed set of committed files, read once: no paths, no directory walking.
    if not _static_files:
        for p in STATIC_DIR.iterdir():
            if p.is_file():
                _static_files[p.name] = (p.read_bytes(), _STATIC_TYPES.get(p.suffix, "text/plain"))
    found = _static_files.get(name)
    if found is None:
        return PlainTextResponse("not found", status_code=404)
    response = Response(found[0], media_type=found[1])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
