"""Keeping the workload inventory: a PodFeedHandler that writes what a cluster runs.

Turns each snapshot or watched change from a ``sources.kubernetes`` pod feed into inventory
rows (``domain.inventory.observe_pod`` and ``reconcile``) and stores them together with the
resourceVersion to resume from, in one transaction, so a restarted watcher resumes exactly
where the stored rows are. A snapshot (after a relist) closes every open row of the cluster
it does not show. The admission webhook opens rows too, for the pods it admits
(``admitted``), so the inventory knows a pod before any watcher has seen it. ``on_changes``
hears what changed (the re-judging worker uses it to judge newly running images).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chainproof.domain.breakglass import DEFAULT_MAXIMUM
from chainproof.domain.inventory import (
    InventoryChanges,
    observe_admitted_pod,
    observe_pod,
    reconcile,
)
from chainproof.sources.kubernetes.port import ChangeType, ObservedPod
from chainproof.store.runtime_port import RuntimeSessions

Sessions = RuntimeSessions
OnChanges = Callable[[str, InventoryChanges], Awaitable[None]]


class InventoryUpdater:
    def __init__(
        self,
        sessions: Sessions,
        clock: Callable[[], datetime],
        on_changes: OnChanges | None = None,
        *,
        breakglass_max: timedelta = DEFAULT_MAXIMUM,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_changes = on_changes
        self._breakglass_max = breakglass_max

    async def resume_point(self, cluster: str) -> str | None:
        async with self._sessions() as repos:
            return await repos.inventory.get_checkpoint(cluster)

    async def replace_all(
        self, cluster: str, pods: Sequence[ObservedPod], resource_version: str
    ) -> None:
        now = self._clock()
        observed = [
            row
            for p in pods
            for row in observe_pod(
                cluster, p.pod, p.workload, now, breakglass_max=self._breakglass_max
            )
        ]
        async with self._sessions() as repos:
            changes = reconcile(await repos.inventory.open_rows(cluster), observed, now)
            await repos.inventory.write(changes)
            await repos.inventory.set_checkpoint(cluster, resource_version)
        await self._tell(cluster, changes)

    async def apply(
        self, cluster: str, change: ChangeType, pod: ObservedPod, resource_version: str
    ) -> None:
        now = self._clock()
        observed = (
            []
            if change is ChangeType.DELETED
            else observe_pod(
                cluster, pod.pod, pod.workload, now, breakglass_max=self._breakglass_max
            )
        )
        async with self._sessions() as repos:
            current = await repos.inventory.open_rows(cluster, pod.namespace, pod.name)
            changes = reconcile(current, observed, now)
            await repos.inventory.write(changes)
            await repos.inventory.set_checkpoint(cluster, resource_version)
        await self._tell(cluster, changes)

    async def admitted(self, cluster: str, pod: Mapping[str, Any]) -> InventoryChanges:
        """Open rows (``source=admission``) for a pod the webhook just admitted, unless the
        pod is known already (a watcher was quicker): a watcher confirms or corrects them
        when it sees the pod, and its relist closes them if the pod never came to be."""
        now = self._clock()
        observed = observe_admitted_pod(cluster, pod, now, breakglass_max=self._breakglass_max)
        if not observed:
            return InventoryChanges()
        first = observed[0]
        async with self._sessions() as repos:
            if await repos.inventory.open_rows(cluster, first.namespace, first.pod):
                return InventoryChanges()
            changes = InventoryChanges(opened=tuple(observed))
            await repos.inventory.write(changes)
        await self._tell(cluster, changes)
        return changes

    async def expire_unconfirmed(self, cluster: str, older_than: datetime) -> int:
        """Close admission rows no watcher confirmed since ``older_than`` (the pod was never
        created: another webhook refused it, say); returns how many were closed."""
        now = self._clock()
        async with self._sessions() as repos:
            stale = tuple(
                replace(r, until=now)
                for r in await repos.inventory.open_rows(cluster)
                if r.source == "admission" and r.since < older_than
            )
            changes = InventoryChanges(closed=stale)
            if stale:
                await repos.inventory.write(changes)
        await self._tell(cluster, changes)
        return len(stale)

    async def checkpoint(self, cluster: str, resource_version: str) -> None:
        async with self._sessions() as repos:
            await repos.inventory.set_checkpoint(cluster, resource_version)

    async def _tell(self, cluster: str, changes: InventoryChanges) -> None:
        if changes and self._on_changes is not None:
            await self._on_changes(cluster, changes)
