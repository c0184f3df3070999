"""Actions on pods for continuous validation: Events, annotations, evictions.

Events are written as core/v1 Events on the pod (``kubectl describe pod`` and
``kubectl get events`` show them), reported by component ``chainproof``. Evictions go through
the Eviction subresource so PodDisruptionBudgets are honoured. The RBAC these need is a
separate, opt-in ClusterRole in deploy/ (the watcher itself only reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

COMPONENT = "chainproof"


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
        try:
            uid = await self._uid(namespace, pod)
        except ApiException as exc:
            if exc.status == 404:
                return  # the pod is gone; nobody would see the event
            raise
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
        await self._core.create_namespaced_event(namespace, body)

    async def annotate(
        self, namespace: str, pod: str, annotations: Mapping[str, str | None]
    ) -> None:
        patch = {"metadata": {"annotations": dict(annotations)}}
        try:
            await self._core.patch_namespaced_pod(pod, namespace, patch)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def evict(self, namespace: str, pod: str) -> None:
        body: Any = {
            "apiVersion": "policy/v1beta1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        await self._core.create_namespaced_pod_eviction(pod, namespace, body)
