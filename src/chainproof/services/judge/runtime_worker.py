"""The leader's work: the notifier's loop, one pod watcher per configured cluster, and any
other singleton task registered with :meth:`RuntimeWorker.add_task` (re-judging).

Owns starting and stopping that work in the server: :meth:`start` runs the leader election
in the background, and while this replica leads, every task runs under a supervisor that
starts it again (with backoff) when it fails — a store outage in the middle of a watch, say —
so one failing task never stops the others. Losing leadership cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from chainproof.config import ClusterSettings
from chainproof.services.common import utc_now
from chainproof.services.judge.inventory import InventoryUpdater
from chainproof.services.judge.leader import LeaderElection
from chainproof.services.judge.notifier import Notifier

if TYPE_CHECKING:  # the Kubernetes client is imported only where a cluster is configured
    from chainproof.sources.kubernetes.client import ClusterConnection

log = structlog.get_logger("chainproof.runtime")

Work = Callable[[], Awaitable[None]]


async def notify_forever(
    notifier: Notifier,
    poll_s: float,
    retention: timedelta = timedelta(days=7),
    prune_every_s: float = 600.0,
) -> None:
    """Route new outbox events and deliver what is due; rest ``poll_s`` when idle; every
    ``prune_every_s``, forget what was delivered more than ``retention`` ago."""
    pruned_at = time.monotonic()
    try:
        while True:
            routed = await notifier.route()
            delivered = await notifier.deliver_due()
            # One batch per turn, between deliveries; again next turn while batches come full.
            if time.monotonic() - pruned_at >= prune_every_s and not await notifier.prune(
                retention
            ):
                pruned_at = time.monotonic()
            if not routed and not delivered:
                await asyncio.sleep(poll_s)
    finally:
        await notifier.close()


@dataclass
class ClusterWatcher:
    """Keeps one named cluster's inventory: list, then watch, resumable (sources.kubernetes)."""

    cluster: ClusterSettings
    updater: InventoryUpdater
    watch_timeout_s: int = 240
    #: Rows the admission webhook opened that no watch event confirmed within this long
    #: are closed (the pod was never created), checked every ``expire_every_s``.
    unconfirmed_after: timedelta = timedelta(minutes=10)
    expire_every_s: float = 300.0
    #: The running feed (for tests and metrics): its counters say how often it listed.
    feed: object | None = field(default=None, repr=False)

    async def run(self) -> None:
        from chainproof.sources.kubernetes.client import api_client
        from chainproof.sources.kubernetes.feed import KubernetesPodFeed

        c = self.cluster
        api = await api_client(connection_of(c))
        try:
            feed = KubernetesPodFeed(c.name, api, watch_timeout_s=self.watch_timeout_s)
            self.feed = feed
            async with asyncio.TaskGroup() as group:
                group.create_task(feed.run(await self.updater.resume_point(c.name), self.updater))
                group.create_task(self._expire_forever())
        finally:
            await api.close()

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.expire_every_s)
            closed = await self.updater.expire_unconfirmed(
                self.cluster.name, utc_now() - self.unconfirmed_after
            )
            if closed:
                log.info(
                    "closed admitted pods no watcher saw", cluster=self.cluster.name, rows=closed
                )


def connection_of(c: ClusterSettings) -> ClusterConnection:
    """How to reach a configured cluster (the token read from its file now)."""
    from chainproof.sources.kubernetes.client import ClusterConnection

    return ClusterConnection(
        c.name,
        in_cluster=c.in_cluster,
        kubeconfig=c.kubeconfig,
        context=c.context,
        url=c.url,
        token=_read_token(c.token_file) if c.token_file else None,
        ca_file=c.ca_file,
    )


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RuntimeError(f"cannot read the cluster token file {path}: {exc.strerror}") from exc


class RuntimeWorker:
    def __init__(self, election: LeaderElection) -> None:
        self.election = election
        self._tasks: list[tuple[str, Work]] = []
        self._runner: asyncio.Task[None] | None = None

    def add_task(self, name: str, work: Work) -> None:
        """Run ``work`` whenever this replica leads (add before :meth:`start`)."""
        self._tasks.append((name, work))

    @property
    def task_names(self) -> Sequence[str]:
        return [name for name, _ in self._tasks]

    def start(self) -> None:
        if self._runner is None and self._tasks:
            self._runner = asyncio.get_running_loop().create_task(self.election.run(self._lead))

    async def run(self) -> None:
        """Be the worker until :meth:`stop`: a coroutine for the caller's task group (the
        server runs it beside REST and gRPC)."""
        if self._runner is not None:
            raise RuntimeError("the runtime worker is already running")
        self._runner = asyncio.current_task()
        await self.election.run(self._lead)

    async def stop(self, grace: float | None = None) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def _lead(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name, work in self._tasks:
                group.create_task(_supervised(name, work))


async def _supervised(name: str, work: Work) -> None:
    delay = 0.5
    while True:
        try:
            await work()
            delay = 0.5
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("runtime task failed; starting it again", task=name, retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
