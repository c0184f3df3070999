"""Signing in to the web UI and out again.

- With ``auth.sign_in`` configured: OIDC's authorization-code flow with PKCE against that
  issuer (:mod:`chainproof.sources.oidc_login`). The ID token that comes back is verified
  by the same authenticator as every API bearer token, and its nonce must be the one this
  browser's sign-in started with.
- Always: a form taking a token (a chainproof API token, or an OIDC/Kubernetes token), checked
  the same way. On a loopback-only server in local mode nobody needs to sign in.

Success stores the credential in the sealed session cookie (:mod:`chainproof.api.ui.session`);
every page then runs under exactly the permissions that credential has on the API. A token is
never written back into a page, a URL or a log line, not even after a failed attempt.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from chainproof.api.rest.auth import public
from chainproof.api.ui.routes import UiRoute, _csrf, _error, _render, _services, safe_next, sealer
from chainproof.api.ui.security import CSRF_FIELD, apply_headers
from chainproof.api.ui.session import (
    MAX_COOKIE_CHARS,
    MAX_SESSION,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_LIFETIME,
    clear_cookie,
    set_cookie,
)
from chainproof.config import SignInSettings
from chainproof.errors import ChainproofError, InvalidArgument, Unauthenticated
from chainproof.iam.principals import Principal
from chainproof.services.access.authn import Authenticator, Credentials
from chainproof.sources.oidc_login import OidcLogin, nonce_of

router = APIRouter(include_in_schema=False, route_class=UiRoute)

_OPEN = "signing in is how a person gets a credential"


def _settings(request: Request) -> SignInSettings | None:
    found: SignInSettings | None = _services(request).settings.auth.sign_in
    return found


def _login(request: Request, config: SignInSettings) -> OidcLogin:
    state = request.app.state
    if not hasattr(state, "ui_oidc_login"):
        issuer = next(
            i for i in _services(request).settings.auth.oidc_issuers if i.issuer == config.issuer
        )
        state.ui_oidc_login = OidcLogin(
            config.issuer,
            config.client_id,
            client_secret_file=config.client_secret_file,
            scopes=tuple(config.scopes),
            ca_file=issuer.ca_file,
        )
    login: OidcLogin = state.ui_oidc_login
    return login


def _redirect_uri(request: Request, config: SignInSettings) -> str:
    if config.redirect_uri:
        return config.redirect_uri
    return f"{request.url.scheme}://{request.headers.get('host', '')}/signin/callback"


async def _page(
    request: Request, *, next_path: str, error: str = "", status_code: int = 200
) -> Response:
    config = _settings(request)
    anonymous = _services(request).access.authenticator.anonymous
    return await _render(
        request,
        "signin.html",
        status_code=status_code,
        title="Sign in",
        next_path=next_path,
        error=error,
        ended=request.query_params.get("ended") == "1",
        oidc_issuer=config.issuer if config is not None else "",
        local_mode=bool(anonymous.grants),
    )


async def _verified(request: Request, bearer: str) -> Principal:
    authenticator: Authenticator = _services(request).access.authenticator
    principal = await authenticator.authenticate(Credentials(bearer=bearer))
    if not principal.authenticated:
        raise Unauthenticated("that credential names nobody")
    return principal


async def _start_session(
    request: Request, bearer: str, principal: Principal, response: Response
) -> None:
    now = datetime.now(UTC)
    expires = now + MAX_SESSION
    if principal.expires_at is not None:
        expires = min(expires, principal.expires_at)
    sealed = await sealer(request).seal(SESSION_COOKIE, {"bearer": bearer}, expires)
    if len(sealed) > MAX_COOKIE_CHARS:
        raise InvalidArgument(
            "this credential is too large to keep in a browser cookie; sign in with a "
            "chainproof API token instead"
        )
    set_cookie(response, request, SESSION_COOKIE, sealed, expires - now)


@router.get("/signin", dependencies=[public(_OPEN)])
async def signin_page(request: Request) -> Response:
    return await _page(request, next_path=safe_next(request.query_params.get("next")))


@router.post("/signin", dependencies=[public(_OPEN)])
async def signin_with_token(request: Request) -> Response:
    form = {
        k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    next_path = safe_next(form.get("next"))
    try:
        # A sign-in form without the token is refused too: another site must not be able
        # to sign a browser in under the other site's own account.
        await _csrf(request).check(request, form.get(CSRF_FIELD))
    except ChainproofError as exc:
        return await _error(request, exc)
    token = form.get("token", "").strip()
    if not token:
        return await _page(request, next_path=next_path, error="Enter a token.", status_code=400)
    try:
        principal = await _verified(request, token)
        response: Response = RedirectResponse(next_path, status_code=303)
        await _start_session(request, token, principal, response)
    except ChainproofError as exc:
        # The reason, never the token: messages of the authenticator do not quote it.
        return await _page(
            request, next_path=next_path, error=exc.message, status_code=exc.http_status
        )
    apply_headers(response)
    return response


@router.get("/signin/oidc", dependencies=[public(_OPEN)])
async def signin_oidc(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    config = _settings(request)
    if config is None:
        return await _page(
            request,
            next_path=next_path,
            error="OIDC sign-in is not configured on this server (auth.sign_in).",
            status_code=404,
        )
    redirect_uri = _redirect_uri(request, config)
    try:
        started = await _login(request, config).start(redirect_uri)
    except ChainproofError as exc:
        return await _page(
            request, next_path=next_path, error=exc.message, status_code=exc.http_status
        )
    expires = datetime.now(UTC) + SIGNIN_LIFETIME
    flow: dict[str, Any] = {
        "state": started.state,
        "nonce": started.nonce,
        "verifier": started.verifier,
        "redirect": redirect_uri,
        "next": next_path,
    }
    response = RedirectResponse(started.url, status_code=303)
    set_cookie(
        response,
        request,
        SIGNIN_COOKIE,
        await sealer(request).seal(SIGNIN_COOKIE, flow, expires),
        SIGNIN_LIFETIME,
        samesite="lax",  # the issuer's redirect back is a cross-site navigation
    )
    apply_headers(response)
    return response


@router.get("/signin/callback", dependencies=[public(_OPEN)])
async def signin_callback(request: Request) -> Response:
    q = request.query_params
    config = _settings(request)
    flow = await sealer(request).open(
        SIGNIN_COOKIE, request.cookies.get(SIGNIN_COOKIE), datetime.now(UTC)
    )
    next_path = safe_next(str(flow.get("next", "/"))) if flow else "/"

    async def refused(why: str, status_code: int = 401) -> Response:
        page = await _page(request, next_path=next_path, error=why, status_code=status_code)
        clear_cookie(page, request, SIGNIN_COOKIE)
        return page

    if config is None:
        return await refused("OIDC sign-in is not configured on this server.", 404)
    if q.get("error"):
        return await refused(f"The issuer did not sign you in ({q['error'][:100]}).")
    if flow is None:
        return await refused(
            "This sign-in was not started in this browser, or took longer than "
            f"{int(SIGNIN_LIFETIME.total_seconds() // 60)} minutes: start again."
        )
    # state ties the answer to the sign-in this browser started (RFC 6749 §10.12).
    if not hmac.compare_digest(str(flow.get("state", "")), q.get("state", "")):
        return await refused("The sign-in answer does not belong to this browser's sign-in.")
    code = q.get("code", "")
    if not code:
        return await refused("The issuer's answer carries no code.", 400)
    try:
        token = await _login(request, config).exchange(
            code, str(flow["verifier"]), str(flow["redirect"])
        )
        principal = await _verified(request, token)
        # The nonce proves the ID token was issued for this sign-in, not replayed from another.
        if not hmac.compare_digest(nonce_of(token), str(flow["nonce"])):
            raise Unauthenticated("the ID token was not issued for this sign-in (nonce)")
        # A same-site page moves on: a Strict cookie set during a cross-site redirect chain
        # would not be sent on the next hop of that chain.
        response = await _render(
            request, "signed_in.html", title="Signed in", next_path=next_path, who=principal.member
        )
        await _start_session(request, token, principal, response)
    except ChainproofError as exc:
        return await refused(exc.message, exc.http_status)
    clear_cookie(response, request, SIGNIN_COOKIE)
    return response


@router.post("/signout", dependencies=[public("signing out only drops this browser's session")])
async def signout(request: Request) -> Response:
    form = {
        k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    try:
        await _csrf(request).check(request, form.get(CSRF_FIELD))
    except ChainproofError as exc:
        return await _error(request, exc)
    response = RedirectResponse("/signin", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    apply_headers(response)
    return response
