"""An OIDC issuer's keys, fetched and cached: discovery document or JWKS URL or file.

Owns the I/O around :func:`chainproof.iam.jwt.verify_jwt`: reading
``ISSUER/.well-known/openid-configuration`` (whose ``issuer`` must equal the configured one,
as OpenID Connect Discovery requires), fetching its ``jwks_uri`` over HTTPS (with an
optional CA bundle, e.g. a Kubernetes API server's), re-reading the set after ``max_age``,
and refreshing it once when a token names an unknown ``kid`` (an issuer rotated its key) —
but no more often than ``min_refresh``, so that a flood of tokens with made-up kids cannot
turn chainproof into a load generator against the issuer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from chainproof.errors import Unavailable
from chainproof.iam.jwt import (
    IssuerConfig,
    KeySet,
    UnknownKey,
    principal_from_claims,
    verify_jwt,
)
from chainproof.iam.principals import Principal

log = structlog.get_logger("chainproof.sources.oidc")

MAX_DOCUMENT_BYTES = 1024 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class KeySource:
    """Where an issuer's keys come from: exactly one of the three."""

    discovery: bool = True
    jwks_uri: str | None = None
    jwks_file: Path | None = None
    ca_file: Path | None = None
    #: Presented when fetching (re-read each time: projected tokens rotate).
    bearer_token_file: Path | None = None


def _require_https(url: str, what: str) -> None:
    if urlsplit(url).scheme != "https":
        raise ValueError(f"{what} {url!r} must be an https:// URL")


class OidcIssuer:
    """Verifies tokens of one issuer; keys cached, refreshed on an unknown kid."""

    def __init__(
        self,
        config: IssuerConfig,
        source: KeySource,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        max_age: timedelta = timedelta(hours=1),
        min_refresh: timedelta = timedelta(seconds=30),
    ) -> None:
        if source.jwks_file is None:
            _require_https(config.issuer, "OIDC issuer")
        if source.jwks_uri is not None:
            _require_https(source.jwks_uri, "JWKS URI")
        self.config = config
        self._source = source
        self._clock = clock
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._keys: KeySet | None = None
        self._fetched_at: datetime | None = None
        self._refreshed_at: datetime | None = None
        self._lock = asyncio.Lock()
        verify: ssl.SSLContext | bool = True
        if source.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(source.ca_file))
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=verify,
            timeout=FETCH_TIMEOUT_SECONDS,
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str) -> Any:
        try:
            async with self._http.stream(
                "GET", url, headers={"Accept": "application/json, application/jwk-set+json"}
            ) as r:
                if r.status_code != 200:
                    raise Unavailable(
                        f"OIDC issuer {self.config.issuer}: GET {url} answered {r.status_code}"
                    )
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise Unavailable(
                            f"OIDC issuer {self.config.issuer}: {url} is larger than "
                            f"{MAX_DOCUMENT_BYTES} bytes"
                        )
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"OIDC issuer {self.config.issuer}: cannot fetch {url} ({type(exc).__name__})"
            ) from exc
        try:
            return orjson.loads(bytes(body))
        except orjson.JSONDecodeError as exc:
            raise Unavailable(f"OIDC issuer {self.config.issuer}: {url} is not JSON") from exc

    async def _load(self) -> KeySet:
        src = self._source
        if src.jwks_file is not None:
            try:
                data: Any = orjson.loads(src.jwks_file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise Unavailable(f"cannot read JWKS file {src.jwks_file}: {exc}") from exc
        else:
            uri = src.jwks_uri
            if uri is None:
                doc = await self._get_json(
                    self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                if not isinstance(doc, dict) or doc.get("issuer") != self.config.issuer:
                    raise Unavailable(
                        f"OIDC discovery document of {self.config.issuer} names another issuer"
                    )
                uri = doc.get("jwks_uri")
                if not isinstance(uri, str):
                    raise Unavailable(f"OIDC issuer {self.config.issuer} publishes no jwks_uri")
                try:
                    _require_https(uri, "jwks_uri")
                except ValueError as exc:
                    raise Unavailable(f"OIDC issuer {self.config.issuer}: {exc}") from exc
            data = await self._get_json(uri)
        try:
            keys = KeySet.from_json(data)
        except ValueError as exc:
            raise Unavailable(f"OIDC issuer {self.config.issuer}: {exc}") from exc
        log.info(
            "oidc keys loaded", issuer=self.config.issuer, keys=len(keys.by_kid) + len(keys.unnamed)
        )
        return keys

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The cached key set; fetched when missing, stale, or on a permitted ``refresh``."""
        async with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age
            if self._keys is not None and fresh and not refresh:
                return self._keys
            if refresh and self._keys is not None:
                # Forced refreshes (unknown kid) are rate-limited on their own clock.
                if self._refreshed_at is not None and now - self._refreshed_at < self._min_refresh:
                    return self._keys
                self._refreshed_at = now
            self._keys = await self._load()
            self._fetched_at = now
            return self._keys

    async def verify(self, token: str) -> Principal:
        keys = await self.keys()
        try:
            claims = verify_jwt(token, keys, self.config, self._clock())
        except UnknownKey:
            refreshed = await self.keys(refresh=True)
            if refreshed is keys:
                raise
            claims = verify_jwt(token, refreshed, self.config, self._clock())
        return principal_from_claims(claims, self.config)
