"""Two stages of a bulk operation overlapped: the next step prepared while one is written.

A bulk operation of the scribe (the scanner's re-match) is a row of steps, each a CPU-bound
preparation in this process (reads, matches, drafting, parsing) followed by
a write transaction whose time is mostly the database's: SQLite's statements and commit run
in the driver's thread, which lets go of the interpreter lock while SQLite works, and
PostgreSQL's in its own server. Run one after another, this process waits for the database
and the database for it. :func:`write_behind` runs step *n + 1*'s preparation while step
*n*'s write is under way — never more than one write and one preparation at once, so what is
held in memory stays two steps' worth (ADR 0215).

The steps must be independent: a preparation may not read what an earlier step's write is
still writing (the scanner's batches hold disjoint images). Writes run in order, one at a
time. When anything fails, the write under way is awaited before the error goes on, and a
cancellation of the caller while it waits for a write cancels that write; either way nothing
of the operation is still writing when the call returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")
W = TypeVar("W")


async def write_behind(
    steps: Iterable[S],
    prepare: Callable[[S], Coroutine[Any, Any, W]],
    write: Callable[[W], Coroutine[Any, Any, None]],
) -> None:
    """``prepare`` each step and ``write`` what it gave, the next step prepared while the
    previous one's write runs."""
    writing: asyncio.Task[None] | None = None
    try:
        for step in steps:
            prepared = await prepare(step)
            if writing is not None:
                await writing
            writing = asyncio.create_task(write(prepared))
            del prepared  # held by the write task only: freed when it ends
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            # A preparation failed, or the caller was cancelled while one ran: the write
            # under way ends before the error goes on (cancelled too if this await is).
            try:
                await writing
            except Exception:
                log.exception("a write failed while an earlier failure was being raised")
