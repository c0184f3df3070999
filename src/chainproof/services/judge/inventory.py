"""Keeping the workload inventory: a PodFeedHandler that writes what a cluster runs.

Turns each snapshot or watched change from a ``sources.kubernetes`` pod feed into inventory
rows (``domain.inventory.observe_pod`` and ``reconcile``) and stores them together with the
resourceVersion to resume from, in one transaction, so a restarted watcher resumes exactly
where the stored rows are. A snapshot (after a relist) closes every open row of the cluster
it does not show. ``on_changes`` hears what changed (the re-judging worker uses it to judge
newly running images).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from chainproof.domain.inventory import InventoryChanges, observe_pod, reconcile
from chainproof.sources.kubernetes.port import ChangeType, ObservedPod
from chainproof.store.runtime_port import RuntimeSessions

Sessions = RuntimeSessions
OnChanges = Callable[[str, InventoryChanges], Awaitable[None]]


class InventoryUpdater:
    def __init__(
        self, sessions: Sessions, clock: Callable[[], datetime], on_changes: OnChanges | None = None
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_changes = on_changes

    async def resume_point(self, cluster: str) -> str | None:
        async with self._sessions() as repos:
            return await repos.inventory.get_checkpoint(cluster)

    async def replace_all(
        self, cluster: str, pods: Sequence[ObservedPod], resource_version: str
    ) -> None:
        now = self._clock()
        observed = [row for p in pods for row in observe_pod(cluster, p.pod, p.workload, now)]
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
            [] if change is ChangeType.DELETED else observe_pod(cluster, pod.pod, pod.workload, now)
        )
        async with self._sessions() as repos:
            current = await repos.inventory.open_rows(cluster, pod.namespace, pod.name)
            changes = reconcile(current, observed, now)
            await repos.inventory.write(changes)
            await repos.inventory.set_checkpoint(cluster, resource_version)
        await self._tell(cluster, changes)

    async def checkpoint(self, cluster: str, resource_version: str) -> None:
        async with self._sessions() as repos:
            await repos.inventory.set_checkpoint(cluster, resource_version)

    async def _tell(self, cluster: str, changes: InventoryChanges) -> None:
        if changes and self._on_changes is not None:
            await self._on_changes(cluster, changes)
