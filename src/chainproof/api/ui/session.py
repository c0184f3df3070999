"""The web UI's sign-in session: a sealed, HttpOnly cookie holding the credential the person
signed in with (an OIDC ID token, or the API token they typed), verified again on every page
exactly as the API verifies a bearer token.

Sealing is AES-256-GCM under a key kept in the store's metadata (``ui_session_key``), so every
replica opens every other replica's cookies, the browser's cookie jar never holds a readable
token, and a cookie changed by one bit opens to nothing. The sealed value also carries its
expiry (the credential's own, at most :data:`MAX_SESSION`), checked before the credential is.

Two cookies: ``chainproof_session`` (SameSite=Strict: never sent by another site's request)
and, for the few minutes of an OIDC sign-in, ``chainproof_signin`` holding the state, nonce
and PKCE verifier. The latter must be SameSite=Lax, because the issuer's redirect back to us
is a cross-site navigation and a Strict cookie would not come with it.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from chainproof.store.port import MetadataStore

SESSION_COOKIE = "chainproof_session"
SIGNIN_COOKIE = "chainproof_signin"
_KEY_NAME = "ui_session_key"
MAX_SESSION = timedelta(hours=12)
SIGNIN_LIFETIME = timedelta(minutes=10)
#: Browsers keep cookies up to about 4 KiB; a larger sealed value would be silently dropped.
MAX_COOKIE_CHARS = 3800


@dataclass(frozen=True, slots=True)
class Session:
    bearer: str
    expires_at: datetime


class Sealer:
    """Seals and opens cookie values; ``purpose`` is bound in so one cookie cannot pose as
    the other."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._aead: AESGCM | None = None

    async def _cipher(self) -> AESGCM:
        if self._aead is None:
            async with self._store.session() as s:
                value = await s.meta.get_or_set(_KEY_NAME, secrets.token_hex(32))
            self._aead = AESGCM(bytes.fromhex(value))
        return self._aead

    async def seal(self, purpose: str, data: dict[str, Any], expires_at: datetime) -> str:
        nonce = os.urandom(12)
        plain = orjson.dumps({**data, "exp": int(expires_at.timestamp())})
        sealed = (await self._cipher()).encrypt(nonce, plain, purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    async def open(self, purpose: str, value: str | None, now: datetime) -> dict[str, Any] | None:
        """The sealed data, or None for a missing, altered, foreign or expired value."""
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = (await self._cipher()).decrypt(raw[:12], raw[12:], purpose.encode())
            data = orjson.loads(plain)
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
            return None
        if now.timestamp() >= data["exp"]:
            return None
        return data


async def open_session(sealer: Sealer, request: Request, now: datetime) -> Session | None:
    data = await sealer.open(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE), now)
    if data is None or not isinstance(data.get("bearer"), str):
        return None
    return Session(data["bearer"], datetime.fromtimestamp(data["exp"], UTC))


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    max_age: timedelta,
    samesite: Literal["strict", "lax"] = "strict",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max(int(max_age.total_seconds()), 1),
        httponly=True,
        samesite=samesite,
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, secure=request.url.scheme == "https", samesite="strict"
    )
