"""Authentication and authorization for REST routes: one FastAPI dependency per route.

Every route declares what it needs in one line, beside its path::

    @router.post("/projects/{project}/notes", dependencies=[requires(p.NOTES_CREATE)])

``requires(permission, on=…)`` checks the permission on the resource the request names (the
``{project}`` path parameter by default; ``on=note`` for ``{project}/notes/{note_id}``,
``on=collection`` for no project, or any function of the request). ``public("why")`` marks
the few routes that need no permission (health probes). The app-level dependency
:func:`authenticate` runs first on every route: it turns the request's credentials into a
principal and refuses any route that declares neither, so a route added without a
declaration cannot ship open by accident.

Missing or bad credentials answer 401 with ``WWW-Authenticate: Bearer`` (RFC 6750), an
anonymous caller without the permission too (it should authenticate); an authenticated caller
without it gets 403 naming the permission and the resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from cryptography import x509
from fastapi import Depends, Request
from fastapi.routing import APIRoute

from chainproof.api.rest.deps import services_of
from chainproof.errors import ChainproofError, PermissionDenied, Unauthenticated
from chainproof.iam import permissions as perms
from chainproof.iam.authorizer import AccessDecision, Resource
from chainproof.iam.principals import Principal
from chainproof.services.access.authn import Credentials
from chainproof.services.access.control import AccessControl, Operation

ResourceOf = Callable[[Request], Resource]


def project(request: Request) -> Resource:
    return Resource(request.path_params["project"])


def note(request: Request) -> Resource:
    return Resource(request.path_params["project"], request.path_params["note_id"])


def collection(request: Request) -> Resource:
    return Resource()


def admission_project(request: Request) -> Resource:
    return Resource(services_of(request).settings.admission.project)


def access_control(request: Request) -> AccessControl:
    return services_of(request).access


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _operation(request: Request) -> Operation:
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    return Operation(method=f"{request.method} {path}", transport="rest")


def _denied(principal: Principal, exc: PermissionDenied) -> ChainproofError:
    if principal.authenticated:
        return exc
    return Unauthenticated(
        f"authentication required: {exc.message}",
    )


class _Check:
    """``requires(permission, on, also)``: the declared permissions of one route."""

    def __init__(self, permission: str, on: ResourceOf, also: tuple[str, ...] = ()) -> None:
        self.permission = perms.check_known(permission)
        self.on = on
        # Read-only companions: an answer built from several kinds of data needs the right to
        # read each of them, on the same resource.
        self.also = tuple(perms.check_known(x) for x in dict.fromkeys(also) if x != permission)
        if any(x in perms.WRITES for x in self.also):
            raise ValueError("only the declared permission may be a write (it is audited)")

    async def authorize(self, request: Request) -> AccessDecision:
        """Refuse the request unless its principal holds the permissions; the decision."""
        access = access_control(request)
        principal = principal_of(request)
        operation = _operation(request)
        resource = self.on(request)
        try:
            decision = await access.require(principal, self.permission, resource, operation)
            for extra in self.also:
                await access.require(principal, extra, resource, operation)
        except PermissionDenied as exc:
            raise _denied(principal, exc) from None
        return decision

    async def __call__(self, request: Request) -> AsyncIterator[None]:
        decision = await self.authorize(request)
        if self.permission not in perms.WRITES:
            yield
            return
        access = access_control(request)
        principal = principal_of(request)
        operation = _operation(request)
        code = "OK"
        try:
            yield
        except ChainproofError as exc:
            code = exc.grpc_code
            raise
        except Exception:
            code = "INTERNAL"
            raise
        finally:
            await access.finish(principal, decision, operation, code)


class _Public:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def __call__(self) -> None:
        return None


def requires(permission: str, *, on: ResourceOf = project, also: tuple[str, ...] = ()) -> Any:
    """The declaration of a route's permission (see the module docstring); ``also``: the
    read permissions it needs beside it, on the same resource."""
    return Depends(_Check(permission, on, also))


def public(reason: str) -> Any:
    """A route anyone may call, and why (health probes): the exception, said out loud."""
    return Depends(_Public(reason))


def declaration(route: APIRoute) -> _Check | _Public | None:
    for dep in route.dependant.dependencies:
        if isinstance(dep.call, _Check | _Public):
            return dep.call
    return None


def guard_of(route: APIRoute) -> Callable[[Request], AbstractAsyncContextManager[None]] | None:
    """The route's permission check as FastAPI runs it — the check before the handler, a
    write's audit with its outcome after — for code serving the route without FastAPI's
    dependency resolution (api.fast_path); None for a public or undeclared route."""
    d = declaration(route)
    return asynccontextmanager(d.__call__) if isinstance(d, _Check) else None


def declared_permission(route: APIRoute) -> tuple[str, ResourceOf] | None:
    """(permission, resource function) of a route, None for public or undeclared ones."""
    d = declaration(route)
    return (d.permission, d.on) if isinstance(d, _Check) else None


def declared_also(route: APIRoute) -> tuple[str, ...]:
    """The read permissions a route needs beside its declared one (``requires(also=…)``)."""
    d = declaration(route)
    return d.also if isinstance(d, _Check) else ()


def credentials(request: Request) -> Credentials:
    header = request.headers.get("authorization")
    bearer: str | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated(
                "the Authorization header must be 'Bearer TOKEN' (an OIDC or Kubernetes token, "
                "or a chainproof API token)"
            )
        bearer = value.strip()
    return Credentials(bearer=bearer, certificate=client_certificate(request.scope))


def client_certificate(scope: Any) -> x509.Certificate | None:
    """The verified client certificate of a mutual-TLS connection (ASGI TLS extension)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if not chain:
        return None
    first = chain[0]
    return x509.load_pem_x509_certificate(first.encode() if isinstance(first, str) else first)


class BrowserRoute(APIRoute):
    """A route of the web UI. Besides the Authorization header, a signed-in browser's session
    (:meth:`session_bearer`) is a credential here, and only here: the API's routes never read
    a cookie, so no other site can make a browser call them with its session."""

    async def session_bearer(self, request: Request) -> str | None:
        return None


async def authenticate(request: Request) -> None:
    """App-level dependency: every route's principal; routes without a declaration refused."""
    route = request.scope.get("route")
    found = declaration(route) if isinstance(route, APIRoute) else None
    if found is None:
        raise PermissionDenied(
            f"{request.method} {request.url.path} declares no permission, so it is refused; "
            "this is a bug in chainproof (every route must declare one)"
        )
    given = credentials(request)
    # Public UI routes (the sign-in pages) ignore the session: a stale one must not lock
    # anyone out of signing in again.
    if given.bearer is None and isinstance(route, BrowserRoute) and isinstance(found, _Check):
        bearer = await route.session_bearer(request)
        if bearer is not None:
            given = Credentials(bearer=bearer, certificate=given.certificate)
    request.state.principal = await access_control(request).authenticator.authenticate(given)


async def require_attach(request: Request, note_names: Iterable[tuple[str, str]]) -> None:
    """Grafeas' rule: writing an occurrence also needs ``notes.attachOccurrence`` on the note
    it attaches to, which may live in another project (the QA team's note)."""
    access = access_control(request)
    principal = principal_of(request)
    operation = _operation(request)
    for note_project, note_id in dict.fromkeys(note_names):
        resource = Resource(note_project, note_id)
        try:
            decision = await access.require(
                principal, perms.NOTES_ATTACH_OCCURRENCE, resource, operation
            )
        except PermissionDenied as exc:
            raise _denied(principal, exc) from None
        await access.record(
            principal, decision, operation, "AUTHORIZED"
        )  # before the write; the write itself is audited too


async def require_also(request: Request, permissions: Iterable[str]) -> None:
    """Permissions a route needs beside the one it declares, on the same project: an answer
    built from several kinds of data needs the right to read each of them."""
    access = access_control(request)
    principal = principal_of(request)
    operation = _operation(request)
    resource = project(request)
    for permission in dict.fromkeys(permissions):
        try:
            await access.require(principal, perms.check_known(permission), resource, operation)
        except PermissionDenied as exc:
            raise _denied(principal, exc) from None


def route_table(app: Any) -> list[tuple[str, frozenset[str], APIRoute]]:
    """Every API route of ``app`` as (full path, methods, route), through included routers
    (FastAPI ≥ 0.160 keeps included routers lazily; older versions flatten them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return [
            (r.path, frozenset(r.methods or ()), r) for r in app.routes if isinstance(r, APIRoute)
        ]
    table: list[tuple[str, frozenset[str], APIRoute]] = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            methods = frozenset(ctx.methods or route.methods or ())
            table.append((ctx.path or route.path, methods, route))
    return table
