"""The registry's failures, each naming the registry and what went wrong.

``RegistryError`` (Unavailable, 503) covers timeouts, rate limits, refused or garbled answers
and hit bounds; the judge turns it into a denial that names the registry. A missing manifest or
tag is not an error: the client returns None for it.
"""

from __future__ import annotations

from chainproof.errors import Unavailable

__all__ = ["RegistryError"]


class RegistryError(Unavailable):
    def __init__(self, registry: str, problem: str) -> None:
        super().__init__(f"registry {registry}: {problem}")
        self.registry = registry
        self.problem = problem
