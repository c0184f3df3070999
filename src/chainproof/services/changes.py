"""Change notices inside one process, so caches of derived results die with their inputs.

Writers (the Grafeas service, attestor and policy resources) announce what changed; caches
compare the version they computed under with the current one. Two kinds of version:

* per resource (a canonical image reference): bumped when an occurrence about it is created,
  changed or deleted;
* one configuration generation: bumped when any note, attestor or policy changes (rare, and
  any of them can change which evidence counts).

Another replica's writes are not seen here; caches also expire by age (see the judge's
``cache_ttl``), which bounds how long such a change can go unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable


class ChangeFeed:
    def __init__(self) -> None:
        self._resources: dict[str, int] = {}
        self.generation = 0

    def resource_version(self, resource: str) -> int:
        return self._resources.get(resource, 0)

    def resources_changed(self, resources: Iterable[str]) -> None:
        for r in resources:
            self._resources[r] = self._resources.get(r, 0) + 1
        if len(self._resources) > 200_000:
            # Bounded memory: forgetting versions is safe only with a generation bump, which
            # invalidates every cached entry at once.
            self._resources.clear()
            self.generation += 1

    def configuration_changed(self) -> None:
        self.generation += 1
