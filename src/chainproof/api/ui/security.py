"""The web UI's browser-side defences: response headers and CSRF tokens.

- A strict Content-Security-Policy on every UI page: scripts and styles only from our own
  ``/static/`` files (no inline script or style, no eval), nothing framed, forms post only to
  us. A hostile string that slips past escaping still cannot run.
- CSRF: a signed double-submit token. The browser holds a random ``chainproof_csrf`` cookie
  (HttpOnly, SameSite=Strict); every form carries ``HMAC(secret, cookie)``; a write is refused
  (403) unless the field matches the cookie it was made for and, when the browser sends an
  Origin, the Origin is this server. Another site can neither read the cookie nor compute
  the token, and SameSite keeps the cookie off its requests in the first place.

The HMAC secret is kept in the store's metadata so that every replica accepts every other
replica's forms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from chainproof.errors import ChainproofError
from chainproof.store.port import MetadataStore

CSRF_COOKIE = "chainproof_csrf"
CSRF_FIELD = "csrf_token"
_SECRET_KEY = "ui_csrf_secret"  # noqa: S105 - a key name, not a secret

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class CsrfRefused(ChainproofError):
    grpc_code = "PERMISSION_DENIED"
    http_status = 403


class Csrf:
    """Issues and checks form tokens (see the module docstring)."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._secret: bytes | None = None

    async def _key(self) -> bytes:
        if self._secret is None:
            async with self._store.session() as s:
                value = await s.meta.get_or_set(_SECRET_KEY, secrets.token_hex(32))
            self._secret = bytes.fromhex(value)
        return self._secret

    @staticmethod
    def cookie_of(request: Request) -> str | None:
        value = request.cookies.get(CSRF_COOKIE)
        # Only our own shape: 64 hex digits. Anything else is treated as no cookie at all.
        if value is None or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            return None
        return value

    async def token_for(self, cookie: str) -> str:
        return hmac.new(await self._key(), cookie.encode(), hashlib.sha256).hexdigest()

    async def check(self, request: Request, submitted: str | None) -> None:
        cookie = self.cookie_of(request)
        if cookie is None or not submitted:
            raise CsrfRefused(
                "refused: this form has no valid CSRF token (reload the page and submit again)"
            )
        expected = await self.token_for(cookie)
        if not hmac.compare_digest(expected, submitted):
            raise CsrfRefused("refused: the CSRF token does not match this browser's session")
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            raise CsrfRefused(f"refused: the request came from another origin ({origin})")


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}"


def new_cookie() -> str:
    return secrets.token_hex(32)


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def apply_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response
