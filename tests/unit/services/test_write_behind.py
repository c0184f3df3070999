"""write_behind: the next step prepared while one writes; writes in order, one at a time; a
failure anywhere waits for the write under way, and a cancellation stops it."""

from __future__ import annotations

import asyncio

import pytest

from chainproof.services.scribe.write_behind import write_behind


class Trace:
    """Prepares and writes that take turns of the event loop, recording what overlapped."""

    def __init__(self, *, fail_prepare: int | None = None, fail_write: int | None = None):
        self.log: list[str] = []
        self.writing: set[int] = set()
        self.preparing: set[int] = set()
        self.most_writes = 0
        self.most_prepares = 0
        self.fail_prepare, self.fail_write = fail_prepare, fail_write

    async def prepare(self, step: int) -> int:
        self.preparing.add(step)
        self.most_prepares = max(self.most_prepares, len(self.preparing))
        self.log.append(f"prepare {step}")
        for _ in range(3):
            await asyncio.sleep(0)
        if self.writing:
            self.log.append(f"prepared {step} beside a write")
        self.preparing.discard(step)
        if step == self.fail_prepare:
            raise ValueError(f"prepare {step} failed")
        return step * 10

    async def write(self, prepared: int) -> None:
        step = prepared // 10
        self.writing.add(step)
        self.most_writes = max(self.most_writes, len(self.writing))
        try:
            for _ in range(5):
                await asyncio.sleep(0)
            if step == self.fail_write:
                raise OSError(f"write {step} failed")
            self.log.append(f"wrote {step}")
        finally:
            self.writing.discard(step)


async def test_each_next_step_is_prepared_while_the_previous_one_writes() -> None:
    trace = Trace()
    await write_behind(range(5), trace.prepare, trace.write)
    assert [e for e in trace.log if e.startswith("wrote")] == [f"wrote {i}" for i in range(5)]
    assert "prepared 0 beside a write" not in trace.log  # nothing to write beside yet
    assert all(f"prepared {i} beside a write" in trace.log for i in range(1, 5))
    assert trace.most_writes == 1 and trace.most_prepares == 1
    assert not trace.writing


async def test_no_steps_writes_nothing() -> None:
    trace = Trace()
    await write_behind([], trace.prepare, trace.write)
    assert trace.log == []


async def test_a_failed_write_raises_and_nothing_is_written_after_it() -> None:
    trace = Trace(fail_write=1)
    with pytest.raises(OSError, match="write 1 failed"):
        await write_behind(range(5), trace.prepare, trace.write)
    assert [e for e in trace.log if e.startswith("wrote")] == ["wrote 0"]
    assert not trace.writing
    for _ in range(20):
        await asyncio.sleep(0)
    assert [e for e in trace.log if e.startswith("wrote")] == ["wrote 0"]


async def test_a_failed_preparation_waits_for_the_write_under_way() -> None:
    trace = Trace(fail_prepare=2)
    with pytest.raises(ValueError, match="prepare 2 failed"):
        await write_behind(range(5), trace.prepare, trace.write)
    # Step 1's write was under way when step 2 failed: it ended before the error went on.
    assert [e for e in trace.log if e.startswith("wrote")] == ["wrote 0", "wrote 1"]
    assert not trace.writing


async def test_a_write_that_fails_beside_a_failed_preparation_does_not_hide_it() -> None:
    trace = Trace(fail_prepare=2, fail_write=1)
    with pytest.raises(ValueError, match="prepare 2 failed"):
        await write_behind(range(5), trace.prepare, trace.write)
    assert not trace.writing


async def test_cancelling_the_caller_stops_the_write_under_way() -> None:
    trace = Trace()
    started = asyncio.Event()

    async def slow_write(prepared: int) -> None:
        started.set()
        trace.writing.add(prepared)
        try:
            await asyncio.Event().wait()  # a write that would never end
        finally:
            trace.writing.discard(prepared)

    task = asyncio.create_task(write_behind(range(3), trace.prepare, slow_write))
    await started.wait()
    for _ in range(10):  # step 1 prepared; now waiting for step 0's write
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not trace.writing


async def test_cancelling_the_caller_during_a_preparation_lets_the_write_under_way_end() -> None:
    trace = Trace()
    preparing = asyncio.Event()

    async def slow_prepare(step: int) -> int:
        if step == 1:
            preparing.set()
            await asyncio.Event().wait()  # cancelled here
        return await trace.prepare(step)

    task = asyncio.create_task(write_behind(range(3), slow_prepare, trace.write))
    await preparing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Step 0's write was under way beside the cancelled preparation: it ended, whole.
    assert [e for e in trace.log if e.startswith("wrote")] == ["wrote 0"]
    assert not trace.writing
