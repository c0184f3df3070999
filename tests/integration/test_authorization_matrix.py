"""The authorization matrix, generated from the route table and the gRPC methods: every
operation × {anonymous, every role, a bootstrap administrator, another project's member}.

Identities are real: OIDC tokens from a loopback issuer (HTTPS, discovery, JWKS). The server
treats anonymous callers as nobody (``auth.anonymous: none``), as on a public listener. A
route or RPC that declares no permission fails this test, so none can ship open.
Expected outcomes come from the role table (data), not from the code under test: granted →
anything but 401/403 (the dummy bodies may well be refused as invalid), not granted → 403, or
401 for an anonymous caller (with ``WWW-Authenticate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from fastapi.routing import APIRoute

from apps import unopened_app
from chainproof.api.grpc.auth import RULES, request_types
from chainproof.api.grpc.descriptors import (
    GRAFEAS_METHODS,
    GRAFEAS_SERVICE,
    PROJECTS_SERVICE,
    schema,
)
from chainproof.api.rest.auth import (
    BrowserRoute,
    admission_project,
    declaration,
    declared_also,
    declared_permission,
    route_table,
)
from chainproof.config import load_settings
from chainproof.iam import permissions as p
from chainproof.iam.roles import ROLES
from live import LiveServer, live_server
from oidc_issuer import LoopbackIssuer, running_issuer

PROJECT = "alpha"
ADMIN = "user:admin@example.com"
OUTSIDER = "user:outsider@example.com"


@dataclass(frozen=True)
class Identity:
    label: str
    member: str | None  # None: anonymous
    role: str | None  # the role bound on PROJECT; "bootstrap" for the administrator
    token: str | None


def email_for(role: str) -> str:
    return role.removeprefix("roles/").replace("/", ".") + "@example.com"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackIssuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as it:
        yield it


def auth_settings(issuer: LoopbackIssuer) -> dict[str, Any]:
    return {
        "anonymous": "none",
        "bootstrap_admins": [ADMIN],
        "oidc_issuers": [
            {"issuer": issuer.url, "audiences": ["chainproof"], "ca_file": str(issuer.ca_file)}
        ],
    }


@pytest.fixture(scope="module")
def server(issuer: LoopbackIssuer) -> Iterator[LiveServer]:
    with live_server(auth=auth_settings(issuer), admission={"project": PROJECT}) as live:
        yield live


def token(issuer: LoopbackIssuer, email: str) -> str:
    return issuer.token(email=email, email_verified=True, sub=email, lifetime=_HOUR)


import datetime as _dt  # noqa: E402

_HOUR = _dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def identities(issuer: LoopbackIssuer, server: LiveServer) -> list[Identity]:
    out = [
        Identity("anonymous", None, None, None),
        Identity("bootstrap admin", ADMIN, "bootstrap", token(issuer, "admin@example.com")),
        Identity("other project's admin", OUTSIDER, None, token(issuer, "outsider@example.com")),
    ]
    for role in sorted(ROLES):
        email = email_for(role)
        out.append(Identity(role, f"user:{email}", role, token(issuer, email)))
    admin = {"Authorization": f"Bearer {out[1].token}"}
    bindings = [
        {"role": i.role, "members": [i.member]} for i in out if i.role and i.role != "bootstrap"
    ]
    with httpx.Client(base_url=server.base_url, headers=admin) as http:
        r = http.post(
            f"/v1/projects/{PROJECT}:setIamPolicy", json={"policy": {"bindings": bindings}}
        )
        assert r.status_code == 200, r.text
        r = http.post(
            "/v1/projects/beta:setIamPolicy",
            json={
                "policy": {"bindings": [{"role": "roles/chainproof.admin", "members": [OUTSIDER]}]}
            },
        )
        assert r.status_code == 200, r.text
    return out


def expected_granted(identity: Identity, permission: str, on_project: bool) -> bool:
    if identity.role == "bootstrap":
        return True
    if identity.role is None or not on_project:
        return False
    return permission in ROLES[identity.role]


_FILL = {
    "project": PROJECT,
    "note_id": "n1",
    "occurrence_id": "o1",
    "attestor_id": "a1",
    "name": "tok",
    "rest": "x/y",
}


def concrete(path: str) -> str:
    # Path parameters other routes add later get a plain value (the check comes first).
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: _FILL.get(m.group(1), "x1"), path)


def api_routes() -> list[tuple[str, frozenset[str], APIRoute]]:
    settings = load_settings(database_url="memory://", grpc_enabled=False)
    return route_table(unopened_app(settings))


def test_every_route_declares_a_permission_or_is_public() -> None:
    routes = api_routes()
    assert len(routes) > 40
    undeclared = [f"{sorted(m)} {path}" for path, m, r in routes if declaration(r) is None]
    assert undeclared == []


def test_every_rpc_declares_a_permission() -> None:
    names = {f"/{GRAFEAS_SERVICE}/{m.name}" for m in GRAFEAS_METHODS}
    names |= {f"/{PROJECTS_SERVICE}/{m.name}" for m in schema().projects_methods}
    assert names == set(RULES)


def test_rest_matrix(server: LiveServer, identities: list[Identity]) -> None:
    routes = api_routes()
    assert len(routes) > 40
    failures: list[str] = []
    checked = 0
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for template, methods, route in routes:
            declared = declared_permission(route)
            path = concrete(template)
            # The webhooks check the admission project (settings.admission.project).
            # The webhooks and the dashboard's pages act on the admission project.
            on_project = (
                "{project}" in template
                or template.startswith("/webhook/")
                or (declared is not None and declared[1] is admission_project)
            )
            for method in sorted(methods - {"HEAD"}):
                for who in identities:
                    headers = {"Authorization": f"Bearer {who.token}"} if who.token else {}
                    body = {} if method in ("POST", "PUT", "PATCH") else None
                    r = http.request(method, path, headers=headers, json=body)
                    checked += 1
                    browser_page = isinstance(route, BrowserRoute) and method == "GET"
                    if declared is None:  # public (a dashboard form still wants its token)
                        csrf = r.status_code == 403 and "CSRF" in r.text
                        ok = r.status_code not in (401, 403) or csrf
                        want = "not 401/403"
                    elif all(
                        expected_granted(who, x, on_project)
                        for x in (declared[0], *declared_also(route))
                    ):
                        # A granted dashboard form without its CSRF token is still refused,
                        # by the CSRF check that runs after authorization: that proves the
                        # permission was granted.
                        csrf = r.status_code == 403 and "CSRF" in r.text
                        ok = r.status_code not in (401, 403) or csrf
                        want = "granted"
                    elif who.token is None and browser_page:
                        # A dashboard page sends a browser that has not signed in to sign in.
                        location = r.headers.get("location", "")
                        ok = r.status_code == 303 and location.startswith("/signin?next=")
                        want = "303 to /signin"
                    elif who.token is None:
                        ok = r.status_code == 401 and r.headers.get(
                            "www-authenticate", ""
                        ).startswith("Bearer")
                        want = "401 with WWW-Authenticate"
                    else:
                        # The first of the route's permissions the identity lacks.
                        missing = next(
                            x
                            for x in (declared[0], *declared_also(route))
                            if not expected_granted(who, x, on_project)
                        )
                        ok = r.status_code == 403 and missing in r.text
                        want = f"403 naming {missing}"
                    if not ok:
                        failures.append(
                            f"{method} {path} as {who.label}: {r.status_code} {r.text[:120]} (want {want})"
                        )
    assert checked > 1000
    assert failures == []


def _grpc_request(method: str) -> bytes:
    req = request_types()[method]()
    short = method.rsplit("/", 1)[1]
    fields = {f.name for f in req.DESCRIPTOR.fields}
    if "parent" in fields:
        req.parent = f"projects/{PROJECT}"
    if "name" in fields:
        if short in ("GetNote", "DeleteNote", "UpdateNote", "ListNoteOccurrences"):
            req.name = f"projects/{PROJECT}/notes/n1"
        elif "Occurrence" in short:
            req.name = f"projects/{PROJECT}/occurrences/o1"
        else:
            req.name = f"projects/{PROJECT}"
    return bytes(req.SerializeToString())


def test_grpc_matrix(server: LiveServer, identities: list[Identity]) -> None:
    failures: list[str] = []
    with grpc.insecure_channel(server.grpc_target) as channel:
        for method, rule in sorted(RULES.items()):
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            on_project = not method.endswith(("/CreateProject", "/ListProjects"))
            for who in identities:
                metadata = [("authorization", f"Bearer {who.token}")] if who.token else []
                try:
                    call(_grpc_request(method), metadata=metadata, timeout=30)
                    code = grpc.StatusCode.OK
                    details = ""
                except grpc.RpcError as exc:
                    code, details = exc.code(), exc.details() or ""
                if expected_granted(who, rule.permission, on_project):
                    ok = code not in (
                        grpc.StatusCode.UNAUTHENTICATED,
                        grpc.StatusCode.PERMISSION_DENIED,
                    )
                elif who.token is None:
                    ok = code == grpc.StatusCode.UNAUTHENTICATED
                else:
                    ok = code == grpc.StatusCode.PERMISSION_DENIED and rule.permission in details
                if not ok:
                    failures.append(f"{method} as {who.label}: {code.name} {details[:100]}")
    assert failures == []


def test_denied_writes_are_audited_with_principal_and_permission(
    server: LiveServer, identities: list[Identity]
) -> None:
    viewer = next(i for i in identities if i.role == "roles/containeranalysis.notes.viewer")
    admin = next(i for i in identities if i.role == "bootstrap")
    with httpx.Client(base_url=server.base_url) as http:
        r = http.post(
            f"/v1/projects/{PROJECT}/notes?noteId=audited",
            json={"package": {"name": "x"}},
            headers={"Authorization": f"Bearer {viewer.token}"},
        )
        assert r.status_code == 403
        log = http.get(
            f"/v1/projects/{PROJECT}/auditLogs",
            params={"principal": viewer.member, "permission": p.NOTES_CREATE},
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert log.status_code == 200, log.text
        entries = log.json()["auditLogs"]
        assert entries and entries[0]["outcome"] == "denied"
        assert entries[0]["resource"] == f"projects/{PROJECT}"
        # A secret never lands in the audit log.
        assert viewer.token is not None and viewer.token not in log.text


def test_test_iam_permissions_reports_the_callers_own(
    server: LiveServer, identities: list[Identity]
) -> None:
    attacher = next(i for i in identities if i.role == "roles/containeranalysis.notes.attacher")
    with httpx.Client(base_url=server.base_url) as http:
        r = http.post(
            f"/v1/projects/{PROJECT}:testIamPermissions",
            json={"permissions": [p.NOTES_ATTACH_OCCURRENCE, p.NOTES_CREATE, p.NOTES_GET]},
            headers={"Authorization": f"Bearer {attacher.token}"},
        )
        assert r.json() == {"permissions": [p.NOTES_ATTACH_OCCURRENCE, p.NOTES_GET]}
        anon = http.post(
            f"/v1/projects/{PROJECT}:testIamPermissions", json={"permissions": [p.NOTES_GET]}
        )
        assert anon.json() == {}
