"""The ports between services and a Kubernetes cluster.

A ``PodFeed`` tells a ``PodFeedHandler`` what pods one named cluster runs: first a full
snapshot (after a list), then one change at a time (from a watch), each with the
``resourceVersion`` to resume from. A snapshot comes again whenever the feed had to relist
(the API server answered 410 Gone to a stale resourceVersion), and the handler then treats
everything it holds open for that cluster and not in the snapshot as gone.

``PodActions`` are what continuous validation may do to a pod: record a Kubernetes Event on
it, set an annotation, evict it. An action the cluster did not carry out raises
``PodActionFailed``, saying what the API server answered (its HTTP status, or none when it
could not be reached or did not answer in time) and when it asked to be tried again; whether
to try again is the caller's decision (services.judge.pod_actions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from chainproof.domain.inventory import WorkloadRef


class ChangeType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class ObservedPod:
    """A Pod object as the API server returned it, and the workload that owns it."""

    pod: Mapping[str, Any]
    workload: WorkloadRef

    @property
    def namespace(self) -> str:
        return str(self.pod.get("metadata", {}).get("namespace") or "default")

    @property
    def name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name") or "")


class PodFeedHandler(Protocol):
    async def replace_all(
        self, cluster: str, pods: Sequence[ObservedPod], resource_version: str
    ) -> None:
        """The whole cluster as listed at ``resource_version``."""

    async def apply(
        self, cluster: str, change: ChangeType, pod: ObservedPod, resource_version: str
    ) -> None:
        """One watched change."""

    async def checkpoint(self, cluster: str, resource_version: str) -> None:
        """A bookmark: nothing changed up to ``resource_version``; resume from it."""


class PodFeed(Protocol):
    @property
    def cluster(self) -> str: ...

    async def run(self, resume_from: str | None, handler: PodFeedHandler) -> None:
        """Feed ``handler`` until cancelled. ``resume_from`` is the last resourceVersion the
        handler stored (None: start with a list). Connection failures are retried with
        backoff; only cancellation ends it."""


class PodActionFailed(Exception):
    """The API server refused an action on a pod, or could not be reached.

    ``status`` is the HTTP status of its answer; None when there was none (the connection
    failed: ``timed_out`` says whether it was a timeout). ``retry_after`` is the wait, in
    seconds, the server asked for (``Retry-After``), when it asked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.timed_out = timed_out

    def __str__(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}: {self.message}"
        return f"{'timed out' if self.timed_out else 'unreachable'}: {self.message}"


class PodActions(Protocol):
    async def record_event(
        self, namespace: str, pod: str, reason: str, message: str, *, warning: bool
    ) -> None: ...

    async def annotate(
        self, namespace: str, pod: str, annotations: Mapping[str, str | None]
    ) -> None:
        """Set (or, for None, remove) annotations on a pod."""

    async def evict(self, namespace: str, pod: str) -> None:
        """Ask the API server to evict the pod (honours PodDisruptionBudgets: one that
        forbids it is a 429)."""
