"""A small fake OCI registry for what Debian's docker-registry lacks or will not do on demand.

It implements our own port's counterpart — the distribution API's wire behaviour — only as far
as chainproof reads it: manifests (GET/HEAD/PUT, answering 404 for a manifest whose media type
the Accept header does not list, as the real registry does), blobs (GET, monolithic uploads),
and what the real one lacks: the OCI 1.1 referrers API, Bearer-token challenges with a token
realm, and misbehaviour on demand (429/503 with Retry-After, bytes that do not match the
digest asked for, oversized bodies, redirects to other hosts). ``tests/integration/
test_registry_parity.py`` keeps it honest against the real registry.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from live import free_port

_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status_code=status)


@dataclass
class FakeRegistry:
    referrers_api: bool = True
    #: Bearer tokens required; basic credentials for the realm ("" = anonymous tokens).
    token_auth: bool = False
    username: str = ""
    password: str = ""
    #: Statuses to answer (in order) before behaving, with an optional Retry-After.
    failures: list[tuple[int, str | None]] = field(default_factory=list)
    #: Paths whose bytes are swapped for other bytes (a lying registry).
    tampered: set[str] = field(default_factory=set)
    #: Blob reads redirect to this base URL.
    redirect_blobs_to: str | None = None
    #: Where the 401 challenge sends clients for tokens (default: this registry).
    realm: str | None = None
    host: str = ""
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    # -- state helpers -------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        digest = _digest(data)
        self.blobs[digest] = data
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        digest = _digest(body)
        self.manifests[(repository, digest)] = (body, media_type)
        if not reference.startswith("sha256:"):
            self.tags[(repository, reference)] = digest
        return digest

    # -- the app -------------------------------------------------------------------------

    def _authorised(self, request: Request) -> Response | None:
        if not self.token_auth:
            return None
        header = request.headers.get("authorization", "")
        repo = request.path_params.get("name", "")
        if header == f"Bearer token-for-repository:{repo}:pull":
            return None
        realm = self.realm or f"http://{self.host}/token"
        return Response(
            status_code=401,
            headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="fake",'
                f'scope="repository:{repo}:pull"'
            },
        )

    def _fault(self) -> Response | None:
        if not self.failures:
            return None
        status, retry_after = self.failures.pop(0)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if status == 429:
            response = _error(429, "TOOMANYREQUESTS", "slow down")
            response.headers.update(headers)
            return response
        return Response(b"", status_code=status, headers=headers)

    async def token(self, request: Request) -> Response:
        self.token_requests.append(dict(request.query_params))
        if self.username:
            expected = (
                "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            )
            if request.headers.get("authorization") != expected:
                return _error(401, "UNAUTHORIZED", "bad credentials")
        return JSONResponse({"token": f"token-for-{request.query_params.get('scope', '')}"})

    async def base(self, request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    async def manifest(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path, dict(request.headers)))
        name, reference = request.path_params["name"], request.path_params["reference"]
        if (fault := self._fault()) is not None:
            return fault
        if (denied := self._authorised(request)) is not None:
            return denied
        if request.method == "PUT":
            body = await request.body()
            digest = self.put_manifest(
                name, reference, body, request.headers.get("content-type", "")
            )
            return Response(
                status_code=201,
                headers={
                    "Docker-Content-Digest": digest,
                    "Location": f"/v2/{name}/manifests/{digest}",
                },
            )
        digest = reference if reference.startswith("sha256:") else self.tags.get((name, reference))
        found = self.manifests.get((name, digest or ""))
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        body, media_type = found
        accept = request.headers.get("accept", "")
        if media_type.startswith("application/vnd.oci.") and media_type not in accept:
            return _error(
                404,
                "MANIFEST_UNKNOWN",
                "OCI manifest found, but accept header does not support OCI manifests",
            )
        if request.url.path in self.tampered:
            body = body.replace(b'"size"', b'"size" ', 1)
        headers = {"Docker-Content-Digest": digest or "", "Content-Length": str(len(body))}
        if request.method == "HEAD":
            return Response(b"", media_type=media_type, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    async def blob(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path, dict(request.headers)))
        if (fault := self._fault()) is not None:
            return fault
        if (denied := self._authorised(request)) is not None:
            return denied
        digest = request.path_params["digest"]
        if self.redirect_blobs_to is not None:
            return Response(
                status_code=307, headers={"Location": f"{self.redirect_blobs_to}/blob/{digest}"}
            )
        data = self.blobs.get(digest)
        if data is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if request.url.path in self.tampered:
            data = data + b" "
        return Response(data, media_type="application/octet-stream")

    async def raw_blob(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path, dict(request.headers)))
        data = self.blobs.get(request.path_params["digest"])
        return Response(data or b"", status_code=200 if data is not None else 404)

    async def upload_start(self, request: Request) -> Response:
        name = request.path_params["name"]
        return Response(status_code=202, headers={"Location": f"/v2/{name}/blobs/uploads/u1"})

    async def upload_finish(self, request: Request) -> Response:
        data = await request.body()
        digest = request.query_params.get("digest", "")
        if _digest(data) != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.blobs[digest] = data
        return Response(status_code=201, headers={"Docker-Content-Digest": digest})

    async def referrers(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path, dict(request.headers)))
        if (fault := self._fault()) is not None:
            return fault
        if not self.referrers_api:
            return Response(b"404 page not found\n", status_code=404, media_type="text/plain")
        if (denied := self._authorised(request)) is not None:
            return denied
        name, digest = request.path_params["name"], request.path_params["digest"]
        entries: list[dict[str, Any]] = []
        for (repo, ref), (body, media_type) in self.manifests.items():
            if repo != name:
                continue
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            if (doc.get("subject") or {}).get("digest") != digest:
                continue
            entry: dict[str, Any] = {"mediaType": media_type, "digest": ref, "size": len(body)}
            artifact_type = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
            if artifact_type:
                entry["artifactType"] = artifact_type
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": _INDEX, "manifests": entries}
        return Response(json.dumps(index).encode(), media_type=_INDEX)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/", self.base),
                Route("/token", self.token),
                Route("/blob/{digest}", self.raw_blob),
                Route(
                    "/v2/{name:path}/manifests/{reference}",
                    self.manifest,
                    methods=["GET", "HEAD", "PUT"],
                ),
                Route("/v2/{name:path}/blobs/uploads/", self.upload_start, methods=["POST"]),
                Route(
                    "/v2/{name:path}/blobs/uploads/{upload}", self.upload_finish, methods=["PUT"]
                ),
                Route("/v2/{name:path}/blobs/{digest}", self.blob, methods=["GET", "HEAD"]),
                Route("/v2/{name:path}/referrers/{digest}", self.referrers),
            ]
        )


@contextmanager
def serve_fake(fake: FakeRegistry, ssl: dict[str, Any] | None = None) -> Iterator[FakeRegistry]:
    """Serve ``fake`` on a free loopback port (HTTPS with uvicorn's ``ssl_*`` options)."""
    port = free_port()
    fake.host = f"127.0.0.1:{port}"
    config = uvicorn.Config(
        fake.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        **(ssl or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("fake registry did not start")
        time.sleep(0.02)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=20)
