"""Kubernetes TokenReview: ask the API server whether a bearer token is one of its own.

For ServiceAccount tokens that cannot be verified as OIDC (legacy secrets-based tokens, or an
API server whose issuer chainproof cannot reach). chainproof authenticates itself to the
API server with its own token (a file, re-read on every call so a projected, rotating token
keeps working) and trusts the answer only when ``authenticated`` is true, the user is a
ServiceAccount and, when audiences were asked for, one of them was granted.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chainproof.errors import Unauthenticated, Unavailable
from chainproof.iam.principals import Principal, service_account

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
TIMEOUT_SECONDS = 5.0


class TokenReviewer:
    def __init__(
        self,
        api_server: str,
        *,
        credential_file: Path,
        ca_file: Path | None,
        audiences: tuple[str, ...] = (),
        clock: Callable[[], datetime],
        result_ttl: timedelta = timedelta(seconds=60),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_server.startswith("https://"):
            raise ValueError(f"TokenReview API server {api_server!r} must be an https:// URL")
        self._url = api_server.rstrip("/") + PATH
        self._credential_file = credential_file
        self._audiences = audiences
        self._clock = clock
        self._ttl = result_ttl
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._http = httpx.AsyncClient(transport=transport, verify=verify, timeout=TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        try:
            own = self._credential_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Unavailable(
                f"cannot read the TokenReview credential {self._credential_file}: {exc.strerror}"
            ) from exc
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        try:
            r = await self._http.post(
                self._url, json=body, headers={"Authorization": f"Bearer {own}"}
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"TokenReview at {self._url} failed ({type(exc).__name__})") from exc
        if r.status_code not in (200, 201):
            raise Unavailable(f"TokenReview at {self._url} answered {r.status_code}")
        try:
            status = r.json().get("status") or {}
        except ValueError as exc:
            raise Unavailable(f"TokenReview at {self._url} did not answer JSON") from exc
        if status.get("authenticated") is not True:
            raise Unauthenticated("the Kubernetes API server does not accept this bearer token")
        if self._audiences and not set(status.get("audiences") or ()) & set(self._audiences):
            raise Unauthenticated(
                f"bearer token is not meant for chainproof: audiences {list(self._audiences)}"
            )
        username = (status.get("user") or {}).get("username", "")
        parts = username.split(":") if isinstance(username, str) else []
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
            raise Unauthenticated(
                "the Kubernetes API server identified a user that is not a ServiceAccount; only "
                "ServiceAccount tokens are accepted through TokenReview"
            )
        return service_account(
            parts[2], parts[3], via="kubernetes-tokenreview", expires_at=self._clock() + self._ttl
        )
