"""Authentication: the credentials a call carries in, one :class:`Principal` out.

Order: a bearer token (a chainproof API token by its ``cpt_`` prefix, else a JWT verified
against the configured issuer it names, else TokenReview when configured), then a verified
client certificate, else the anonymous principal (a local administrator only on a
loopback-only server). A credential that is presented but fails is refused, never
downgraded to anonymous: a typo in a token must not silently become "no token".

Verified bearer tokens are cached by their SHA-256 until they expire (at most
``cache_ttl``, and at most ``api_token_ttl`` for API tokens, so a revocation made on another
replica takes effect within that bound), so the admission path pays for a signature check
once per token, not once per review.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509

from chainproof.errors import Unauthenticated
from chainproof.iam import api_tokens
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.certificates import principal_from_certificate
from chainproof.iam.jwt import unverified_issuer
from chainproof.iam.principals import ANY_PROJECT, Grant, Principal, anonymous
from chainproof.iam.roles import ADMIN


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


#: Finds a stored API token by the hash of its secret (the token repository).
FindApiToken = Callable[[str], Awaitable[ApiToken | None]]


@dataclass(frozen=True, slots=True)
class Credentials:
    bearer: str | None = None
    certificate: x509.Certificate | None = None


class Authenticator:
    def __init__(
        self,
        *,
        issuers: Mapping[str, TokenVerifier],
        token_review: TokenVerifier | None,
        find_api_token: FindApiToken,
        anonymous_principal: Principal,
        clock: Callable[[], datetime],
        cache_ttl: timedelta = timedelta(minutes=10),
        api_token_ttl: timedelta = timedelta(seconds=10),
        cache_size: int = 10_000,
    ) -> None:
        self._issuers = dict(issuers)
        self._token_review = token_review
        self._find_api_token = find_api_token
        self.anonymous = anonymous_principal
        self._clock = clock
        self._ttl = cache_ttl
        self._api_ttl = api_token_ttl
        self._size = cache_size
        self._cache: OrderedDict[bytes, tuple[Principal, datetime]] = OrderedDict()

    def forget(self) -> None:
        """Drop every cached verification (a token was revoked on this replica)."""
        self._cache.clear()

    async def authenticate(self, credentials: Credentials) -> Principal:
        if credentials.bearer is not None:
            return await self._bearer(credentials.bearer)
        if credentials.certificate is not None:
            return principal_from_certificate(credentials.certificate)
        return self.anonymous

    async def _bearer(self, token: str) -> Principal:
        if not token:
            raise Unauthenticated("the Authorization header carries an empty bearer token")
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None:
            principal, until = hit
            if now < until:
                return principal
            del self._cache[key]
        if api_tokens.looks_like_api_token(token):
            principal = await self._api_token(token, now)
            until = now + self._api_ttl
        else:
            principal = await self._jwt(token)
            until = now + self._ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self._cache[key] = (principal, until)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return principal

    async def _api_token(self, token: str, now: datetime) -> Principal:
        stored = await self._find_api_token(api_tokens.hash_token(token))
        if stored is None:
            raise Unauthenticated("API token is not known (revoked, or never issued here)")
        return stored.principal(now)

    async def _jwt(self, token: str) -> Principal:
        issuer = unverified_issuer(token)
        verifier = self._issuers.get(issuer)
        if verifier is not None:
            return await verifier.verify(token)
        if self._token_review is not None:
            return await self._token_review.verify(token)
        raise Unauthenticated(
            f"bearer token issuer {issuer[:200]!r} is not trusted; "
            "configure it under auth.oidc_issuers"
        )


def local_admin() -> Principal:
    """The anonymous caller of a loopback-only server: administrator of every project."""
    return anonymous(grants=(Grant(ANY_PROJECT, ADMIN),))
