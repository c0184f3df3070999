"""Change notices, so caches of derived results die with their inputs — in this process and,
through a ChangeChannel, in every replica sharing the database.

Writers (the Grafeas service, attestor and policy resources) announce what changed; caches
compare the version they computed under with the current one. Two kinds of version:

* per resource (a canonical image reference): bumped when an occurrence about it is created,
  changed or deleted;
* one configuration generation: bumped when any note, attestor or policy changes (rare, and
  any of them can change which evidence counts).

With a channel attached (PostgreSQL LISTEN/NOTIFY), local announcements are also published,
and notices from other replicas are applied here within milliseconds. A notice can be lost
(a dropped listening connection): the listener then bumps the generation, invalidating
everything, and caches also expire by age (the judge's ``cache_ttl``) as a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterable

import structlog

from chainproof.store.port import ChangeChannel

log = structlog.get_logger("chainproof.changes")

#: A notice naming more resources than this invalidates everything instead (PostgreSQL caps a
#: notification at 8,000 bytes, and a big batch is rare enough).
MAX_RESOURCES_PER_NOTICE = 40


class ChangeFeed:
    def __init__(self) -> None:
        self._resources: dict[str, int] = {}
        self.generation = 0
        self._origin = uuid.uuid4().hex
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._observers: list[tuple[Callable[[list[str]], None], Callable[[], None]]] = []

    def observe(
        self, on_resources: Callable[[list[str]], None], on_gap: Callable[[], None]
    ) -> None:
        """Be told of the resources *other replicas* changed (the scanner re-reads those
        images' packages), and, through ``on_gap``, when some changes may have gone unheard:
        a lost notice, or one that named too many resources to list."""
        self._observers.append((on_resources, on_gap))

    def resource_version(self, resource: str) -> int:
        return self._resources.get(resource, 0)

    def resources_changed(self, resources: Iterable[str]) -> None:
        changed = list(dict.fromkeys(resources))
        self._bump(changed)
        if not changed:
            return
        if len(changed) > MAX_RESOURCES_PER_NOTICE:
            self._send({"g": 1, "all": 1})  # "all": resources changed, too many to name
        else:
            self._send({"r": changed})

    def configuration_changed(self) -> None:
        self.generation += 1
        self._send({"g": 1})

    def _bump(self, resources: Iterable[str]) -> None:
        for r in resources:
            self._resources[r] = self._resources.get(r, 0) + 1
        if len(self._resources) > 200_000:
            # Bounded memory: forgetting versions is safe only with a generation bump, which
            # invalidates every cached entry at once.
            self._resources.clear()
            self.generation += 1

    # ----------------------------------------------------------------- between replicas

    async def run(self, channel: ChangeChannel) -> None:
        """Publish local changes on ``channel`` and apply other replicas' until :meth:`close`
        (a worker for the caller's task group)."""
        if self._outbox is not None:
            raise RuntimeError("the change feed is already attached to a channel")
        task = asyncio.current_task()
        assert task is not None
        self._outbox = asyncio.Queue(maxsize=10_000)
        self._tasks = [task]
        try:
            await asyncio.gather(
                channel.listen(self._receive, self._missed), self._publish_forever(channel)
            )
        finally:
            self._outbox = None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._outbox = None

    def _send(self, body: dict[str, object]) -> None:
        if self._outbox is None:
            return
        message = json.dumps({"o": self._origin, **body}, separators=(",", ":"))
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("change notices are not going out fast enough; dropping one")

    async def _publish_forever(self, channel: ChangeChannel) -> None:
        assert self._outbox is not None
        while True:
            message = await self._outbox.get()
            try:
                await channel.publish(message)
            except Exception:  # other replicas fall back to their cache TTL
                log.warning("could not publish a change notice", exc_info=True)

    def _receive(self, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("o") == self._origin:
            return
        if data.get("g"):
            self.generation += 1
        if data.get("all"):
            for _, on_gap in self._observers:
                on_gap()
        resources = data.get("r")
        if isinstance(resources, list):
            named = [r for r in resources if isinstance(r, str)]
            self._bump(named)
            for on_resources, _ in self._observers:
                on_resources(named)

    def _missed(self) -> None:
        self.generation += 1
        for _, on_gap in self._observers:
            on_gap()
