"""Actions on pods for continuous validation: Events, annotations, evictions.

Events are written as core/v1 Events on the pod (``kubectl describe pod`` and
``kubectl get events`` show them), reported by component ``chainproof``. Evictions go through
the Eviction subresource so PodDisruptionBudgets are honoured. The RBAC these need is a
separate, opt-in ClusterRole in deploy/ (the watcher itself only reads).

Every failure leaves as ``PodActionFailed``: the API server's status and the message of its
``Status`` body (not the client's dump of headers and body), the ``Retry-After`` it asked
for, or no status when the connection failed or timed out. Nothing here retries.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from chainproof.sources.kubernetes.port import PodActionFailed

COMPONENT = "chainproof"
_T = TypeVar("_T")


def _retry_after(exc: ApiException, body: Mapping[str, Any]) -> float | None:
    """Seconds the server asked to wait: the ``Retry-After`` header (seconds), else the
    ``Status`` body's ``details.retryAfterSeconds``; None when it asked nothing."""
    headers: Any = exc.headers or {}
    details: Any = body.get("details") or {}
    for value in (headers.get("Retry-After"), details.get("retryAfterSeconds")):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds > 0:
            return seconds
    return None


def api_failure(exc: ApiException) -> PodActionFailed:
    """The API server's answer as the port's error."""
    body: Mapping[str, Any] = {}
    if exc.body:
        try:
            parsed = json.loads(exc.body)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    message = str(body.get("message") or exc.reason or "no message")
    details: Any = body.get("details") or {}
    causes = [str(c.get("message")) for c in details.get("causes") or () if c.get("message")]
    if causes:  # e.g. which disruption budget, and how many healthy pods it needs
        message += " (" + "; ".join(causes) + ")"
    message = message[:400]
    status = int(exc.status) if exc.status else None
    return PodActionFailed(message, status=status, retry_after=_retry_after(exc, body))


async def _call(work: Awaitable[_T]) -> _T:
    try:
        return await work
    except ApiException as exc:
        raise api_failure(exc) from exc
    except TimeoutError as exc:
        raise PodActionFailed(
            "the API server did not answer in time", status=None, timed_out=True
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise PodActionFailed(f"{type(exc).__name__}: {exc}"[:400], status=None) from exc


class KubernetesPodActions:
    def __init__(self, api: k8s.ApiClient) -> None:
        self._core = k8s.CoreV1Api(api)

    async def _uid(self, namespace: str, pod: str) -> str:
        found = await self._core.read_namespaced_pod(pod, namespace)
        return str(found.metadata.uid or "")

    async def record_event(
        self, namespace: str, pod: str, reason: str, message: str, *, warning: bool
    ) -> None:
        now = datetime.now(UTC)
        uid = await _call(self._uid(namespace, pod))
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{pod}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": pod,
                "uid": uid,
            },
            "reason": reason,
            # Event messages are capped at 1 KiB by convention (kubectl truncates too).
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        await _call(self._core.create_namespaced_event(namespace, body))

    async def annotate(
        self, namespace: str, pod: str, annotations: Mapping[str, str | None]
    ) -> None:
        patch = {"metadata": {"annotations": dict(annotations)}}
        await _call(self._core.patch_namespaced_pod(pod, namespace, patch))

    async def evict(self, namespace: str, pod: str) -> None:
        body: Any = {
            "apiVersion": "policy/v1beta1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        await _call(self._core.create_namespaced_pod_eviction(pod, namespace, body))
