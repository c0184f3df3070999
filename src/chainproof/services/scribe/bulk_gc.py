"""Pausing Python's cyclic garbage collector while one bulk operation builds many objects.

An ingest of a 10,000-component SBOM allocates a few hundred thousand dicts, lists and records
that all live until it ends. Each of them counts towards the collector's thresholds, so the
collector runs again and again over a heap that only grows — it took half of the ingest's CPU
time (ADR 0085). Reference counting still frees everything that is not in a cycle, so pausing
the *cyclic* collector for the length of one bounded operation costs little memory; it is
resumed when the last concurrent holder leaves, and a collector that was already off (a test
harness, an embedding application) is left off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_holders = 0
_was_enabled = False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Within the block the cyclic collector does not run; nesting and overlapping (between
    coroutines of one event loop) are fine."""
    global _holders, _was_enabled
    if _holders == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0 and _was_enabled:
            gc.enable()
