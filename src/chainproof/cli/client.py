"""A small synchronous REST client for a chainproof server, used by the command line.

It owns the connection settings (:class:`ServerOptions`: URL, CA bundle, client certificate)
and one translation: every error the server answers with becomes the
:mod:`chainproof.errors` leaf of the same status, carrying the server's own message, and every
failure to reach the server becomes :class:`~chainproof.errors.Unavailable`. Commands never
see ``httpx`` exceptions or status codes, so the CLI maps errors to exit codes in one place.

It does not know what the resources mean; the command modules build bodies and read answers.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from chainproof.errors import (
    AlreadyExists,
    ChainproofError,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "CHAINPROOF_SERVER"
TOKEN_ENV = "CHAINPROOF_TOKEN"  # noqa: S105 - the name of a variable, not a secret

_BY_GRPC_STATUS: dict[str, type[ChainproofError]] = {
    cls.grpc_code: cls
    for cls in (
        InvalidArgument,
        FailedPrecondition,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        PayloadTooLarge,
        DeadlineExceeded,
        Unavailable,
        Internal,
    )
}
# FAILED_PRECONDITION and INVALID_ARGUMENT share 400; the body's status tells them apart.
_BY_HTTP_STATUS: dict[int, type[ChainproofError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: AlreadyExists,
    413: PayloadTooLarge,
    502: Unavailable,
    503: Unavailable,
    504: DeadlineExceeded,
}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where the server is and how to talk TLS to it.

    ``url`` falls back to ``$CHAINPROOF_SERVER`` and then to ``http://127.0.0.1:8080``.
    ``ca_cert`` is a PEM bundle to trust instead of the system store; ``client_cert`` and
    ``client_key`` identify the CLI to a server that requires mutual TLS.
    """

    url: str | None = None
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout: float = 30.0
    #: A bearer token (OIDC, Kubernetes, or a chainproof API token); else $CHAINPROOF_TOKEN.
    token: str | None = None

    @property
    def bearer(self) -> str | None:
        value = self.token if self.token is not None else os.environ.get(TOKEN_ENV)
        return value.strip() or None if value is not None else None

    @property
    def base_url(self) -> str:
        url = (self.url or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"server URL {url!r} has no scheme: expected http://HOST:PORT or https://HOST:PORT"
            )
        return url


def error_from_response(response: httpx.Response) -> ChainproofError:
    """The error leaf for a non-2xx answer, carrying the server's message and details."""
    status_name = ""
    message = ""
    details: list[str] = []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            status_name = str(err.get("status") or "")
            message = str(err.get("message") or "")
            for detail in err.get("details") or ():
                if isinstance(detail, Mapping):
                    for violation in detail.get("fieldViolations") or ():
                        if isinstance(violation, Mapping) and violation.get("description"):
                            details.append(str(violation["description"]))
        if not message and isinstance(body.get("message"), str):
            message = body["message"]
    # The server appends the details to the message; keep them apart so they print as a list.
    if details:
        suffix = ": " + "; ".join(details)
        message = message.removesuffix(suffix)
    if not message:
        text = response.text.strip()
        message = (
            f"the server answered HTTP {response.status_code}"
            + (f": {text[:300]}" if text else "")
            + f" ({response.request.method} {response.request.url.path})"
        )
    cls = _BY_GRPC_STATUS.get(status_name) or _BY_HTTP_STATUS.get(response.status_code)
    if cls is None:
        cls = Internal if response.status_code >= 500 else InvalidArgument
    return cls(message, details=details)


def _refuse_plaintext_token(base_url: str) -> None:
    """A bearer token sent over plain HTTP beyond this machine is a token given away."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise InvalidArgument(
            f"refusing to send a token to {host} over plain http://: anyone on the way could "
            "read it; use an https:// server URL"
        )


class ChainproofClient:
    """REST calls to one chainproof server; use as a context manager."""

    def __init__(self, options: ServerOptions, transport: httpx.BaseTransport | None = None):
        self.base_url = options.base_url
        verify: ssl.SSLContext | bool = True
        if options.ca_cert is not None or options.client_cert is not None:
            verify = _tls_context(options)
        elif options.client_key is not None:
            raise InvalidArgument("--client-key needs --client-cert (the certificate it signs)")
        headers = {"User-Agent": "chainproof-cli"}
        bearer = options.bearer
        if bearer is not None:
            _refuse_plaintext_token(self.base_url)
            headers["Authorization"] = f"Bearer {bearer}"
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=verify,
            timeout=options.timeout,
            transport=transport,
            headers=headers,
        )

    def __enter__(self) -> ChainproofClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | list[str]] | None = None,
        body: Any = None,
        content: bytes | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body, or raise the matching error.

        ``body`` is sent as JSON; ``content`` (an uploaded document) as raw bytes."""
        try:
            response = self._http.request(
                method,
                path,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                json=body,
                content=content,
            )
        except httpx.TimeoutException as exc:
            raise Unavailable(
                f"the chainproof server at {self.base_url} did not answer in time ({exc!s}); "
                "check that it is running and reachable"
            ) from exc
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the chainproof server at {self.base_url}: {exc!s}. Start one "
                f"with `chainproof serve`, or point --server (or ${SERVER_ENV}) at it"
            ) from exc
        if response.is_error:
            raise error_from_response(response)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise Internal(
                f"the server at {self.base_url} answered {method} {path} with something that "
                "is not JSON; is --server pointing at a chainproof server?"
            ) from exc

    def paged(
        self,
        path: str,
        key: str,
        params: Mapping[str, str | int] | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (following ``nextPageToken``), up to ``limit``."""
        token = ""
        seen = 0
        while True:
            query: dict[str, str | int] = dict(params or {})
            query["pageSize"] = min(1000, limit - seen) if limit else 1000
            if token:
                query["pageToken"] = token
            page = self.request("GET", path, params=query)
            for item in page.get(key) or ():
                yield item
                seen += 1
                if limit and seen >= limit:
                    return
            token = page.get("nextPageToken") or ""
            if not token:
                return

    # ------------------------------------------------------------------ Grafeas

    def get_note(self, note_name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/{note_name}")
        return result

    def create_note(self, project: str, note_id: str, note: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}/notes", params={"noteId": note_id}, body=note
        )
        return result

    def create_occurrence(self, project: str, occurrence: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}/occurrences", body=occurrence
        )
        return result

    def list_occurrences(self, project: str, filter_text: str) -> list[dict[str, Any]]:
        return list(
            self.paged(
                f"/v1/projects/{_seg(project)}/occurrences", "occurrences", {"filter": filter_text}
            )
        )

    def list_note_occurrences(self, note_name: str, filter_text: str) -> list[dict[str, Any]]:
        return list(
            self.paged(f"/v1/{note_name}/occurrences", "occurrences", {"filter": filter_text})
        )

    # ------------------------------------------------------------------ judge

    def create_attestor(
        self, project: str, attestor_id: str, attestor: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST",
            f"/v1/projects/{_seg(project)}/attestors",
            params={"attestorId": attestor_id},
            body=attestor,
        )
        return result

    def get_attestor(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/{name}")
        return result

    def list_attestors(self, project: str) -> list[dict[str, Any]]:
        return list(self.paged(f"/v1/projects/{_seg(project)}/attestors", "attestors"))

    def delete_attestor(self, name: str) -> None:
        self.request("DELETE", f"/v1/{name}")

    def get_policy(self, project: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/projects/{_seg(project)}/policy")
        return result

    def put_policy(self, project: str, policy: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", f"/v1/projects/{_seg(project)}/policy", body=policy
        )
        return result

    def evaluate_policy(self, project: str, request: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}/policy:evaluate", body=request
        )
        return result

    def ingest(
        self,
        project: str,
        document: bytes,
        *,
        resource_uri: str = "",
        fmt: str = "",
        signatures: str = "",
        attestors: Sequence[str] = (),
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"resourceUri": resource_uri, "format": fmt}
        params["signatures"] = signatures
        if attestors:
            params["attestor"] = list(attestors)  # repeated: attestor=a&attestor=b
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}:ingest", params=params, content=document
        )
        return result

    def image_packages(self, project: str, image: str) -> list[dict[str, Any]]:
        found = self.request(
            "GET", f"/v1/projects/{_seg(project)}/images/packages", params={"image": image}
        )
        return list(found.get("packages", []))

    def image_vulnerabilities(self, project: str, image: str) -> list[dict[str, Any]]:
        """An image's findings, each with what VEX says and the statement resolving it."""
        found = self.request(
            "GET", f"/v1/projects/{_seg(project)}/images/vulnerabilities", params={"image": image}
        )
        return list(found.get("vulnerabilities", []))

    def package_images(self, project: str, purl: str) -> list[dict[str, Any]]:
        found = self.request(
            "GET", f"/v1/projects/{_seg(project)}/packages/images", params={"purl": purl}
        )
        return list(found.get("images", []))

    def impact(self, project: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/projects/{_seg(project)}/impact", params=params
        )
        return result

    def replay_policy(self, project: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}/policy:replay", body=body
        )
        return result

    def diff_policies(self, project: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/projects/{_seg(project)}/policy:diff", body=body
        )
        return result

    def policy_coverage(self, project: str, params: Mapping[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/projects/{_seg(project)}/policy:coverage", params=params
        )
        return result

    def list_decisions(
        self, project: str, params: Mapping[str, str | int], limit: int
    ) -> list[dict[str, Any]]:
        return list(
            self.paged(f"/v1/projects/{_seg(project)}/decisions", "decisions", params, limit=limit)
        )


def _seg(value: str) -> str:
    """One path segment, escaped; a '/' inside it would address another resource."""
    return quote(value, safe="")


def _tls_context(options: ServerOptions) -> ssl.SSLContext:
    """Certificate checks against --ca-cert (or the system store), plus the client identity."""
    if options.client_key is not None and options.client_cert is None:
        raise InvalidArgument("--client-key needs --client-cert (the certificate it signs)")
    cafile = _readable(options.ca_cert, "--ca-cert") if options.ca_cert is not None else None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise InvalidArgument(f"--ca-cert {cafile} is not a PEM CA bundle: {exc}") from None
    if options.client_cert is not None:
        cert = _readable(options.client_cert, "--client-cert")
        key = _readable(options.client_key, "--client-key") if options.client_key else None
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise InvalidArgument(
                f"--client-cert {cert} with --client-key {key or '(in the same file)'} cannot be "
                f"used: {exc}; give a PEM certificate and its matching unencrypted key"
            ) from None
    return context


def _readable(path: Path, option: str) -> str:
    if not path.is_file():
        raise InvalidArgument(f"{option} {path}: no such file")
    return str(path)
