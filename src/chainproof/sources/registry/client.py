"""An async client for the OCI distribution API v2, made to fail closed and within a budget.

This module owns :class:`RegistryClient` and :class:`Deadline`. The client speaks only what
chainproof reads:

* ``HEAD``/``GET /v2/<name>/manifests/<ref>`` with the OCI and Docker manifest and index
  media types; a tag resolves to the digest of the bytes served, and a registry whose
  ``Docker-Content-Digest`` disagrees with those bytes, or that serves other bytes than the
  digest asked for, is an error;
* ``GET /v2/<name>/blobs/<digest>``, read in a bounded stream and digest-checked;
* ``GET /v2/<name>/referrers/<digest>`` (OCI 1.1), falling back to the ``sha256-<hex>`` tag
  scheme when the registry has no referrers API.

Authentication follows the ``WWW-Authenticate`` challenge: ``Bearer`` (a token fetched from
the realm, with basic credentials or an identity token when configured, anonymous otherwise,
cached per scope) or ``Basic``. TLS is per registry (CA bundle, client certificate). Mirrors
are tried first for every read and the upstream afterwards. Redirects are followed only to the
same host or to a host the registry's configuration lists, never with credentials, at most
``max_redirects`` times.

Every request runs under a :class:`Deadline`: timeouts are cut to what remains, 429 and 5xx
answers are retried at most ``max_retries`` times with exponential backoff, ``Retry-After``
honoured — and when the wait would outlast the deadline the client gives up at once. Every
failure is a :class:`~chainproof.sources.registry.errors.RegistryError` naming the registry.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import httpx

from chainproof.attest.oci import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    Descriptor,
    ImageIndex,
    cosign_tag,
    parse_manifest,
)
from chainproof.errors import InvalidArgument
from chainproof.outbound import GuardedTransport
from chainproof.sources.registry.auth import CredentialResolver
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.credentials import Credential
from chainproof.sources.registry.deadline import REVIEW_DEADLINE, Deadline
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.metrics import RegistryMetrics

__all__ = ["REVIEW_DEADLINE", "Deadline", "FetchedManifest", "Referrers", "RegistryClient"]

_RETRYABLE = frozenset({429, 500, 502, 503, 504})
#: Answers not read for their content are read to this size, to keep their connection.
_DISCARD_BYTES = 64 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A manifest's bytes, checked to hash to ``digest``, and its media type."""

    digest: str
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Referrers:
    """The referrers of a digest, and whether the fallback tag scheme produced them."""

    descriptors: tuple[Descriptor, ...]
    from_fallback_tag: bool


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


class RegistryClient:
    """See the module docstring. One instance per process; it keeps connections and tokens."""

    def __init__(
        self,
        config: RegistryConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: RegistryMetrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        credentials: CredentialResolver | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self.metrics = metrics
        self._sleep = sleep
        self.credentials = credentials or CredentialResolver()
        self._clients: dict[str, httpx.AsyncClient] = {}
        #: (host, scope, credential identity) → token: a token earned with one pod's pull
        #: secret is never sent on behalf of another credential (or of none).
        self._tokens: dict[tuple[str, str, str], str] = {}
        #: host → (until when, whether it has the OCI 1.1 referrers API).
        self._referrers_api: dict[str, tuple[float, bool]] = {}

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    # -- public reads -------------------------------------------------------------------

    async def manifest(
        self, registry: str, repository: str, reference: str, deadline: Deadline
    ) -> FetchedManifest | None:
        """The manifest or index at a tag or digest, or None when the registry has none."""
        limit = self.config.max_manifest_bytes
        for host in self._read_hosts(registry):
            path = f"/v2/{repository}/manifests/{reference}"
            try:
                response, body = await self._get(
                    host, registry, repository, path, {"Accept": MANIFEST_ACCEPT}, limit, deadline
                )
            except RegistryError:
                if host.host == registry:
                    raise
                continue  # a failing mirror: the upstream decides
            if response is None:
                if host.host == registry:
                    return None
                continue
            return self._checked_manifest(host.host, reference, response, body)
        return None

    async def resolve_tag(
        self, registry: str, repository: str, tag: str, deadline: Deadline
    ) -> str | None:
        """The digest a tag points at (``HEAD``, then ``GET`` when no digest header comes)."""
        host = self.config.host(registry)
        path = f"/v2/{repository}/manifests/{tag}"
        response = await self._send(
            host, registry, repository, "HEAD", path, {"Accept": MANIFEST_ACCEPT}, deadline
        )
        try:
            if response.status_code == 404:
                return None
            self._raise_for_status(host.host, response)
            digest: str | None = response.headers.get("Docker-Content-Digest")
        finally:
            await response.aclose()
        if digest and re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return digest
        fetched = await self.manifest(registry, repository, tag, deadline)
        return fetched.digest if fetched else None

    async def blob(
        self, registry: str, repository: str, digest: str, max_bytes: int, deadline: Deadline
    ) -> bytes | None:
        """A blob's bytes, read up to ``max_bytes`` and checked against ``digest``."""
        limit = min(max_bytes, self.config.max_blob_bytes)
        for host in self._read_hosts(registry):
            try:
                response, body = await self._get(
                    host,
                    registry,
                    repository,
                    f"/v2/{repository}/blobs/{digest}",
                    {},
                    limit,
                    deadline,
                )
            except RegistryError:
                if host.host == registry:
                    raise
                continue
            if response is None:
                if host.host == registry:
                    return None
                continue
            actual = "sha256:" + hashlib.sha256(body).hexdigest()
            if actual != digest:
                raise RegistryError(
                    host.host, f"blob {digest} of {repository} has content hashing to {actual}"
                )
            return body
        return None

    async def referrers(
        self, registry: str, repository: str, digest: str, deadline: Deadline
    ) -> Referrers:
        """Who refers to ``digest``: the referrers API, or else the ``sha256-<hex>`` tag index.

        Whether a registry has the API is remembered (``referrers_memory_seconds``): one that
        answered 404 is asked for the fallback tag directly, which saves a round trip per
        image. While it is not known, both are asked at once and the API's answer, when there
        is one, is the one used."""
        host = self.config.host(registry)
        path = f"/v2/{repository}/referrers/{digest}"
        limit = self.config.max_manifest_bytes
        known = self._referrers_api.get(host.host)
        supported = known[1] if known is not None and known[0] > time.monotonic() else None

        async def fallback() -> FetchedManifest | None:
            return await self.manifest(registry, repository, cosign_tag(digest), deadline)

        async def api() -> tuple[httpx.Response | None, bytes]:
            return await self._get(
                host,
                registry,
                repository,
                path,
                {"Accept": "application/vnd.oci.image.index.v1+json"},
                limit,
                deadline,
            )

        tagged: asyncio.Task[FetchedManifest | None] | None = None
        if supported is False:
            response, body = None, b""
        else:
            if supported is None:
                tagged = asyncio.ensure_future(fallback())
            try:
                response, body = await api()
            except BaseException:
                if tagged is not None:
                    tagged.cancel()
                    await asyncio.gather(tagged, return_exceptions=True)
                raise
            self._remember_referrers_api(host.host, response is not None)
        from_tag = False
        if response is None:
            found = await tagged if tagged is not None else await fallback()
            if found is None:
                return Referrers((), True)
            body, from_tag = found.data, True
        else:
            if tagged is not None:
                # The API answered: what the fallback tag says does not count (nor its errors).
                tagged.cancel()
                await asyncio.gather(tagged, return_exceptions=True)
        if response is not None and response.headers.get("content-type", "").split(";")[
            0
        ].strip() not in (INDEX_MEDIA_TYPES | {"application/json", ""}):
            raise RegistryError(
                host.host,
                f"referrers of {digest} came as {response.headers.get('content-type')!r}, "
                "not an image index",
            )
        try:
            index = parse_manifest(body)
        except InvalidArgument as exc:
            raise RegistryError(host.host, f"referrers of {digest}: {exc.message}") from exc
        if not isinstance(index, ImageIndex):
            raise RegistryError(host.host, f"referrers of {digest} is not an image index")
        if len(index.manifests) > self.config.max_referrers:
            raise RegistryError(
                host.host,
                f"{digest} has {len(index.manifests)} referrers, more than the "
                f"{self.config.max_referrers} chainproof reads",
            )
        return Referrers(index.manifests, from_tag)

    # -- machinery ----------------------------------------------------------------------

    def _remember_referrers_api(self, host: str, supported: bool) -> None:
        until = time.monotonic() + self.config.referrers_memory_seconds
        self._referrers_api[host] = (until, supported)

    def _read_hosts(self, registry: str) -> list[RegistryHost]:
        upstream = self.config.host(registry)
        return [self.config.host(m) for m in upstream.mirrors] + [upstream]

    def _checked_manifest(
        self, host: str, reference: str, response: httpx.Response, body: bytes
    ) -> FetchedManifest:
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and actual != reference:
            raise RegistryError(
                host, f"asked for manifest {reference} but was served content hashing to {actual}"
            )
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != actual:
            raise RegistryError(
                host,
                f"manifest {reference}: Docker-Content-Digest {announced} does not match the "
                f"content served ({actual})",
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not media_type:
            try:
                media_type = str(json.loads(body).get("mediaType") or "")
            except (ValueError, AttributeError):
                media_type = ""
        return FetchedManifest(actual, media_type, body)

    def _client(self, host: RegistryHost) -> httpx.AsyncClient:
        client = self._clients.get(host.host)
        if client is None:
            # Plain-HTTP hosts never use TLS: skip building a context (tens of ms each).
            verify: ssl.SSLContext | bool = not host.insecure
            if host.ca_file or host.client_cert:
                context = ssl.create_default_context(cafile=host.ca_file)
                if host.client_cert:
                    context.load_cert_chain(host.client_cert, host.client_key)
                verify = context
            inner = self._transport or httpx.AsyncHTTPTransport(verify=verify)
            guarded = GuardedTransport(
                self.config.destinations,
                inner,
                resolve_ttl_s=self.config.resolve_ttl_seconds,
            )
            client = httpx.AsyncClient(
                transport=guarded,
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[host.host] = client
        return client

    async def _get(
        self,
        host: RegistryHost,
        registry: str,
        repository: str,
        path: str,
        headers: Mapping[str, str],
        limit: int,
        deadline: Deadline,
    ) -> tuple[httpx.Response | None, bytes]:
        """(response, body) for a 2xx; (None, b"") for a 404; RegistryError otherwise."""
        response = await self._send(host, registry, repository, "GET", path, headers, deadline)
        try:
            if response.status_code == 404:
                await self._discard(response, deadline)
                return None, b""
            self._raise_for_status(host.host, response)
            body = await self._read_bounded(host.host, path, response, limit, deadline)
        finally:
            await response.aclose()
        return response, body

    async def _discard(self, response: httpx.Response, deadline: Deadline) -> None:
        """Read what is left of a small answer (a 404's error document, a 401's) so that its
        connection goes back to the pool: closing it unread makes httpcore drop the
        connection, and every "no .att here" then costs a new TCP connection."""
        size = 0
        try:
            async with asyncio.timeout(max(min(0.2, deadline.remaining()), 0.001)):
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > _DISCARD_BYTES:
                        break  # not small: let the connection go instead
        except (TimeoutError, httpx.HTTPError):
            pass
        finally:
            await response.aclose()

    async def _read_bounded(
        self, host: str, path: str, response: httpx.Response, limit: int, deadline: Deadline
    ) -> bytes:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise RegistryError(
                host, f"{path} is {length} bytes, more than the {limit} chainproof reads"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(max(deadline.remaining(), 0.001)):
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise RegistryError(
                            host, f"{path} is larger than the {limit} bytes chainproof reads"
                        )
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise RegistryError(host, f"reading {path} outlasted the review's deadline") from exc
        except httpx.HTTPError as exc:
            raise RegistryError(host, f"reading {path} failed: {exc!r}") from exc
        return b"".join(chunks)

    def _raise_for_status(self, host: str, response: httpx.Response) -> None:
        if 200 <= response.status_code < 300:
            return
        raise RegistryError(
            host,
            f"{response.request.method} {response.request.url.path} answered HTTP "
            f"{response.status_code}",
        )

    def _auth_header(self, host: RegistryHost, scope: str, identity: str) -> dict[str, str]:
        token = self._tokens.get((host.host, scope, identity))
        if token is not None:
            if token.startswith("Basic "):
                return {"Authorization": token}
            return {"Authorization": f"Bearer {token}"}
        return {}

    async def _send(
        self,
        host: RegistryHost,
        registry: str,
        repository: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> httpx.Response:
        """One logical request: auth challenge, retries, redirects; a streaming response."""
        scope = f"repository:{repository}:pull"
        credential = await self.credentials.credential(host, repository, deadline)
        identity = credential.identity if credential is not None else ""
        attempt = 0
        challenged = False
        url = host.base_url + path
        redirects = 0
        while True:
            if deadline.expired():
                raise RegistryError(host.host, f"{method} {path}: the review's deadline passed")
            same_host = urlsplit(url).netloc == host.endpoint
            request_headers = dict(headers)
            if same_host:
                request_headers.update(self._auth_header(host, scope, identity))
            response = await self._once(host, method, url, request_headers, deadline)
            status = response.status_code
            if status == 401 and same_host and not challenged:
                challenged = True
                header = response.headers.get("WWW-Authenticate", "")
                await self._discard(response, deadline)
                await self._authenticate(host, scope, header, deadline, credential)
                continue
            if status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                await self._discard(response, deadline)
                url = self._redirect(host, url, location, redirects)
                redirects += 1
                continue
            if status in _RETRYABLE and attempt < host.max_retries:
                wait = _retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                await self._discard(response, deadline)
                if wait is None:
                    wait = min(
                        self.config.backoff_seconds * (2**attempt), self.config.max_backoff_seconds
                    )
                if wait >= deadline.remaining():
                    raise RegistryError(
                        host.host,
                        f"{method} {path} answered HTTP {status}; waiting {wait:.2f}s to retry "
                        "would outlast the review's deadline",
                    )
                attempt += 1
                await self._sleep(wait)
                continue
            return response

    def _redirect(self, host: RegistryHost, current: str, location: str, count: int) -> str:
        if count >= self.config.max_redirects:
            raise RegistryError(host.host, f"more than {self.config.max_redirects} redirects")
        target = httpx.URL(current).join(location)
        allowed = {host.endpoint, *host.redirect_hosts}
        if target.netloc.decode() not in allowed:
            raise RegistryError(
                host.host,
                f"redirected to {target.netloc.decode()}, a host not configured for this "
                "registry (list it in redirect_hosts to allow it)",
            )
        if target.scheme != urlsplit(current).scheme and not host.insecure:
            raise RegistryError(host.host, f"redirected from https to {target.scheme}")
        return str(target)

    async def _once(
        self,
        host: RegistryHost,
        method: str,
        url: str,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> httpx.Response:
        timeout = max(min(host.timeout_seconds, deadline.remaining()), 0.001)
        client = self._client(host)
        started = time.perf_counter()
        try:
            request = client.build_request(
                method, url, headers=headers, timeout=httpx.Timeout(timeout)
            )
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            self._count(host.host, method, "timeout", started)
            raise RegistryError(host.host, f"{method} {urlsplit(url).path} timed out") from exc
        except httpx.HTTPError as exc:
            self._count(host.host, method, "error", started)
            raise RegistryError(
                host.host, f"{method} {urlsplit(url).path} failed: {exc!r}"
            ) from exc
        except ssl.SSLError as exc:
            self._count(host.host, method, "tls", started)
            raise RegistryError(host.host, f"TLS failed: {exc}") from exc
        self._count(host.host, method, str(response.status_code), started)
        return response

    def _count(self, host: str, method: str, code: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels(host, method, code).inc()
            self.metrics.latency.labels(host).observe(time.perf_counter() - started)

    async def _authenticate(
        self,
        host: RegistryHost,
        scope: str,
        header: str,
        deadline: Deadline,
        credential: Credential | None,
    ) -> None:
        scheme, params = _challenge(header)
        identity = credential.identity if credential is not None else ""
        if scheme == "basic":
            if credential is None or not credential.username:
                raise RegistryError(
                    host.host, "asks for basic authentication and no credentials are configured"
                )
            raw = f"{credential.username}:{credential.password}".encode()
            self._tokens[(host.host, scope, identity)] = "Basic " + base64.b64encode(raw).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(host.host, f"answered 401 with an unusable challenge {header!r}")
        realm = params["realm"]
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        headers: dict[str, str] = {}
        if credential is not None and credential.username:
            raw = f"{credential.username}:{credential.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        realm_url = httpx.URL(realm)
        if realm_url.scheme != "https" and not host.insecure:
            raise RegistryError(host.host, f"token realm {realm} is not https")
        timeout = max(min(host.timeout_seconds, deadline.remaining()), 0.001)
        client = self._client(host)
        started = time.perf_counter()
        try:
            if credential is not None and credential.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": credential.identity_token,
                    "service": params.get("service", ""),
                    "scope": query["scope"],
                    "client_id": "chainproof",
                }
                response = await client.post(realm, data=form, timeout=timeout)
            else:
                response = await client.get(
                    f"{realm}?{urlencode(query)}", headers=headers, timeout=timeout
                )
        except httpx.HTTPError as exc:
            raise RegistryError(host.host, f"token request to {realm} failed: {exc!r}") from exc
        self._count(host.host, "TOKEN", str(response.status_code), started)
        if response.status_code != 200:
            raise RegistryError(
                host.host, f"token request to {realm} answered HTTP {response.status_code}"
            )
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(host.host, f"token response from {realm} carries no token")
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[(host.host, scope, identity)] = token
