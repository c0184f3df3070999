"""Where the scanner's full match spends its time on SQLite: the event loop's Python against
the SQLite driver's worker thread, per driver call.

    .venv/bin/python bench/bench_scan_laps.py [--images 1000] [--advisories 50000]

Runs bench_scan_service.py on SQLite and, during the first import only (the full match),
times every call the store hands to aiosqlite's worker thread: its wall time on that thread
and the thread's own CPU time (``time.thread_time``). Wall above CPU is time the call spent
waiting for the interpreter lock, held meanwhile by the event loop's Python (ADR 0216). The
process's CPU time less the worker's is the event loop's share. This wraps a private method
of aiosqlite (``Connection._execute``, through which every call goes) for the run only: a
measuring tool, not a path of the store.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiosqlite.core
import bench_scan_service

from chainproof.services.scribe.scanning import ScanService

#: Per call kind: [calls, wall on the worker, the worker's CPU].
_calls: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
_state = {"measuring": False, "done": False}


def _instrument() -> None:
    execute = aiosqlite.core.Connection._execute
    imports = ScanService.import_advisories

    async def timed_execute(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not _state["measuring"]:
            return await execute(self, fn, *args, **kwargs)
        key = getattr(fn, "__name__", repr(fn))
        if args and isinstance(args[0], str):  # the statement's start names the table
            key += " " + " ".join(args[0].split())[:60]

        def run() -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                c = _calls[key]
                c[0] += 1
                c[1] += time.perf_counter() - wall
                c[2] += time.thread_time() - cpu

        return await execute(self, run)

    async def timed_import(self: ScanService, advisories: Any) -> Any:
        if _state["done"]:
            return await imports(self, advisories)
        _state["measuring"] = True
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return await imports(self, advisories)
        finally:
            _state["measuring"], _state["done"] = False, True
            _report(time.perf_counter() - wall, time.process_time() - cpu)

    aiosqlite.core.Connection._execute = timed_execute  # type: ignore[method-assign]
    ScanService.import_advisories = timed_import  # type: ignore[method-assign]


def _report(wall: float, cpu: float) -> None:
    worker_wall = sum(c[1] for c in _calls.values())
    worker_cpu = sum(c[2] for c in _calls.values())
    print(f"full match on sqlite: wall {wall:.2f} s, process CPU {cpu:.2f} s")
    print(
        f"  SQLite worker thread: {worker_wall:.2f} s on it, CPU {worker_cpu:.2f} s "
        f"(waiting for the interpreter lock {worker_wall - worker_cpu:.2f} s)"
    )
    print(f"  event loop's Python (process CPU less the worker's): {cpu - worker_cpu:.2f} s")
    print("   wall s   CPU s  calls  call")
    for key, (n, w, c) in sorted(_calls.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"  {w:7.2f} {c:7.2f} {int(n):6d}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--advisories", type=int, default=50_000)
    args = parser.parse_args()
    _instrument()
    sys.argv = [
        "bench_scan_service.py",
        "--store",
        "sqlite",
        "--images",
        str(args.images),
        "--advisories",
        str(args.advisories),
    ]
    bench_scan_service.main()


if __name__ == "__main__":
    main()
