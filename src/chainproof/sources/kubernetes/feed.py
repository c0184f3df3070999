"""The pod feed: list every pod of a cluster, then watch from that resourceVersion.

Implements the informer protocol by hand on kubernetes_asyncio's generated calls, reading
raw JSON (``_preload_content=False``) so that pods reach the inventory as the API server
wrote them, without a round trip through model classes:

1. list pods across namespaces in pages (``limit`` + ``continue``), remembering the list's
   resourceVersion, and hand the whole snapshot over;
2. watch from that resourceVersion with bookmarks, handing over each change;
3. when a watch ends (the server's timeout), watch again from the last resourceVersion seen;
4. when the server answers 410 Gone (that resourceVersion was compacted away, or a paging
   token expired), list again: the snapshot lets the handler close what vanished meanwhile.

Connection failures back off and retry from the last resourceVersion. Owner chains are
resolved by reading each ReplicaSet / Job / ReplicationController once (cached by UID).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from chainproof.domain.inventory import OwnerRef, WorkloadRef, controller_of, resolve_workload
from chainproof.sources.kubernetes.port import ChangeType, ObservedPod, PodFeedHandler

log = logging.getLogger(__name__)

#: A watch line longer than this is refused (the watch restarts) rather than buffered.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class ResourceVersionGone(Exception):
    """The API server no longer has the history from that resourceVersion (410 Gone)."""


class FeedError(Exception):
    """The API server answered something the feed cannot use; retried with backoff."""


async def _raw(
    call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> aiohttp.ClientResponse:
    """Call a generated API method for its raw aiohttp response (no model decoding)."""
    return cast(aiohttp.ClientResponse, await call(*args, _preload_content=False, **kwargs))


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    body = await resp.read()
    if resp.status == 410:
        raise ResourceVersionGone(body[:200].decode(errors="replace"))
    if resp.status != 200:
        raise FeedError(f"HTTP {resp.status}: {body[:300].decode(errors='replace')}")
    data = orjson.loads(body)
    if not isinstance(data, dict):
        raise FeedError("the API server returned JSON that is not an object")
    return data


class KubernetesPodFeed:
    """A PodFeed over one cluster's API server."""

    def __init__(
        self,
        cluster: str,
        api: k8s.ApiClient,
        *,
        page_size: int = 500,
        watch_timeout_s: int = 240,
        retry_cap_s: float = 30.0,
    ) -> None:
        self._cluster = cluster
        self._core = k8s.CoreV1Api(api)
        self._apps = k8s.AppsV1Api(api)
        self._batch = k8s.BatchV1Api(api)
        self._page_size = page_size
        self._watch_timeout_s = watch_timeout_s
        self._retry_cap_s = retry_cap_s
        self._owners: dict[str, OwnerRef | None] = {}
        #: Counters, for metrics and tests: how often the feed listed and watched.
        self.lists = 0
        self.relists_on_gone = 0
        self.watches = 0

    @property
    def cluster(self) -> str:
        return self._cluster

    async def run(self, resume_from: str | None, handler: PodFeedHandler) -> None:
        rv = resume_from
        failures = 0
        while True:
            try:
                if rv is None:
                    rv = await self._list(handler)
                rv = await self._watch(rv, handler)
                failures = 0
            except ResourceVersionGone as gone:
                log.info("pod watch of %s: %s; listing again", self._cluster, gone)
                self.relists_on_gone += 1
                rv = None
            except (aiohttp.ClientError, TimeoutError, FeedError, ApiException) as exc:
                failures += 1
                delay = min(self._retry_cap_s, 0.2 * 2**failures)
                log.warning(
                    "pod feed of %s failed (%s); retrying in %.1fs", self._cluster, exc, delay
                )
                await asyncio.sleep(delay)

    # listing ------------------------------------------------------------------------------
    async def _list(self, handler: PodFeedHandler) -> str:
        self.lists += 1
        pods: list[ObservedPod] = []
        token: str | None = None
        rv = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self._page_size}
            if token:
                kwargs["_continue"] = token
            resp = await _raw(self._core.list_pod_for_all_namespaces, **kwargs)
            try:
                page = await _json(resp)
            finally:
                resp.release()
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    pods.append(await self._observe(item))
            token = meta.get("continue") or None
            if not token:
                break
        if not rv:
            raise FeedError("the pod list carried no resourceVersion")
        await handler.replace_all(self._cluster, pods, rv)
        return rv

    # watching -----------------------------------------------------------------------------
    async def _watch(self, rv: str, handler: PodFeedHandler) -> str:
        self.watches += 1
        resp = await _raw(
            self._core.list_pod_for_all_namespaces,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_s,
            _request_timeout=self._watch_timeout_s + 30,
        )
        try:
            if resp.status != 200:
                await _json(resp)  # raises with the reason
            async for line in _lines(resp):
                event = orjson.loads(line)
                rv = await self._handle(event, rv, handler)
        finally:
            resp.release()
        return rv

    async def _handle(self, event: Any, rv: str, handler: PodFeedHandler) -> str:
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise FeedError("a watch event that is not {type, object}")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise ResourceVersionGone(str(obj.get("message", "")))
            raise FeedError(f"watch error: {obj.get('message', obj)}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind == "BOOKMARK":
            await handler.checkpoint(self._cluster, new_rv)
            return new_rv
        try:
            change = ChangeType(str(kind))
        except ValueError as exc:
            raise FeedError(f"unknown watch event type {kind!r}") from exc
        await handler.apply(self._cluster, change, await self._observe(obj), new_rv)
        return new_rv

    # owners ---------------------------------------------------------------------------------
    async def _observe(self, pod: Mapping[str, Any]) -> ObservedPod:
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        first = controller_of(meta)
        if first is not None and first.kind in ("ReplicaSet", "Job", "ReplicationController"):
            # Fetch the chain now (async); resolve_workload then walks the cache.
            here: OwnerRef | None = first
            for _ in range(4):
                if here is None or here.kind not in ("ReplicaSet", "Job", "ReplicationController"):
                    break
                here = await self._owner_of(namespace, here)
        workload: WorkloadRef = resolve_workload(
            str(meta.get("name") or ""), first, lambda ref: self._owners.get(ref.uid)
        )
        return ObservedPod(pod, workload)

    async def _owner_of(self, namespace: str, ref: OwnerRef) -> OwnerRef | None:
        if ref.uid in self._owners:
            return self._owners[ref.uid]
        read: Callable[..., Awaitable[Any]] = {
            "ReplicaSet": self._apps.read_namespaced_replica_set,
            "Job": self._batch.read_namespaced_job,
            "ReplicationController": self._core.read_namespaced_replication_controller,
        }[ref.kind]
        resp = await _raw(read, ref.name, namespace)
        try:
            if resp.status in (403, 404):
                # Gone, or not ours to read: the chain stops at this owner.
                owner = None
            else:
                owner = controller_of((await _json(resp)).get("metadata") or {})
        finally:
            resp.release()
        self._owners[ref.uid] = owner
        return owner


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        if len(buffer) > MAX_EVENT_BYTES and b"\n" not in buffer:
            raise FeedError(f"a watch event is longer than {MAX_EVENT_BYTES} bytes")
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
