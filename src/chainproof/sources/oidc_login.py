"""The relying party's half of OIDC sign-in: the authorization-code flow with PKCE (RFC 7636).

:meth:`OidcLogin.start` makes the URL the browser is sent to, with a fresh ``state``, ``nonce``
and code verifier (whose S256 challenge goes in the URL; the verifier itself stays with us
until the code is exchanged). :meth:`OidcLogin.exchange` trades the code for the ID token at
the issuer's token endpoint. The endpoints come from the issuer's discovery document (whose
``issuer`` must be the configured one) and must be https.

This module fetches and posts; it does not decide who the token names. The caller verifies
the returned ID token as any bearer token (signature, issuer, audience, expiry) and then
checks its ``nonce`` (:func:`nonce_of`) against the one it started with.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
import orjson

from chainproof.errors import Unauthenticated, Unavailable

FETCH_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Started:
    """A sign-in under way: where to send the browser, and what to keep until it returns."""

    url: str
    state: str
    nonce: str
    verifier: str


def pkce_challenge(verifier: str) -> str:
    """RFC 7636's S256 challenge of a code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def nonce_of(id_token: str) -> str:
    """The ``nonce`` claim of an ID token the caller has already verified."""
    claims = jwt.decode(id_token, options={"verify_signature": False})
    nonce = claims.get("nonce")
    return nonce if isinstance(nonce, str) else ""


def _https(url: Any, what: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme != "https":
        raise Unavailable(f"OIDC sign-in: the issuer's {what} {url!r} is not an https:// URL")
    return url


class OidcLogin:
    """One issuer, one client: the two requests of the authorization-code flow."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        client_secret_file: Path | None = None,
        scopes: tuple[str, ...] = ("openid", "email", "profile"),
        ca_file: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret_file = client_secret_file
        self._scopes = tuple(dict.fromkeys(("openid", *scopes)))
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._http = httpx.AsyncClient(
            transport=transport, verify=verify, timeout=FETCH_TIMEOUT_SECONDS
        )
        self._endpoints: tuple[str, str] | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise Unavailable(f"OIDC sign-in: the issuer's {what} is larger than allowed")
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise Unavailable(f"OIDC sign-in: the issuer's {what} is not JSON") from None
        if not isinstance(data, dict):
            raise Unavailable(f"OIDC sign-in: the issuer's {what} is not a JSON object")
        return data

    async def endpoints(self) -> tuple[str, str]:
        """(authorization endpoint, token endpoint) from the discovery document, cached."""
        if self._endpoints is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                r = await self._http.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise Unavailable(
                    f"OIDC sign-in: cannot fetch {url} ({type(exc).__name__})"
                ) from exc
            if r.status_code != 200:
                raise Unavailable(f"OIDC sign-in: GET {url} answered {r.status_code}")
            doc = await self._json(r, "discovery document")
            if doc.get("issuer") != self.issuer:
                raise Unavailable(f"OIDC discovery document of {self.issuer} names another issuer")
            self._endpoints = (
                _https(doc.get("authorization_endpoint"), "authorization_endpoint"),
                _https(doc.get("token_endpoint"), "token_endpoint"),
            )
        return self._endpoints

    async def start(self, redirect_uri: str) -> Started:
        authorize, _ = await self.endpoints()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 characters of RFC 7636's unreserved set
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self._scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if urlsplit(authorize).query else "?"
        return Started(f"{authorize}{separator}{query}", state, nonce, verifier)

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the issuer gives for ``code`` (not yet verified: the caller does)."""
        _, token_url = await self.endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        if self._secret_file is not None:
            form["client_secret"] = self._secret_file.read_text().strip()
        try:
            r = await self._http.post(token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"OIDC sign-in: cannot reach the token endpoint ({type(exc).__name__})"
            ) from exc
        body = await self._json(r, "token response")
        if r.status_code != 200:
            # RFC 6749 §5.2: the error code says why; its description is the issuer's words.
            error = str(body.get("error", r.status_code))[:100]
            raise Unauthenticated(f"the issuer refused the sign-in code ({error})")
        token = body.get("id_token")
        if not isinstance(token, str) or not token:
            raise Unauthenticated("the issuer's token response carries no id_token")
        return token
