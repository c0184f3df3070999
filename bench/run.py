"""Run every benchmark under bench/ with small, quick defaults and print their figures.

    make bench                                  # every bench/bench_*.py, quick settings
    .venv/bin/python bench/run.py admission     # only the benchmarks whose name contains this

Each benchmark runs in its own process (so one's server, caches and GIL cannot colour the
next), with the arguments in ``QUICK`` below: enough to print every figure and its floor in
a minute or so, not enough to be precise. For figures worth reporting, run a benchmark
directly with its own (larger) defaults, twice: the machine is shared and figures are noisy.
A benchmark that fails is reported and makes the run exit non-zero; the others still run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Quick arguments per benchmark; one not listed here runs with its own defaults.
QUICK: dict[str, list[str]] = {
    "bench_admission": [
        "--floor", "--rate", "300", "--duration", "3", "--warmup", "200", "--closed-duration", "2",
    ],
    "bench_findings_layout": ["--findings", "20000", "--templates", "3000"],
    "bench_flood": [],
    "bench_grpc": ["--batches", "2", "--calls", "200", "--stores", "memory,sqlite"],
    "bench_judge": ["--seconds", "0.5"],
    "bench_outbox": ["--batches", "3", "--events", "300"],
    "bench_policy": ["--seconds", "0.5"],
    "bench_registry": ["--rate", "200", "--duration", "3", "--cold", "50"],
    "bench_scale": ["--images", "200", "--samples", "100", "--reviews", "100"],
    "bench_scan": ["--sboms", "50", "--packages", "100", "--advisories", "5000"],
    "bench_scan_laps": ["--images", "10", "--advisories", "500"],
    "bench_scan_service": ["--images", "10", "--advisories", "500"],
    "bench_store": [
        "--occurrences", "10000", "--images", "500", "--samples", "200", "--backend", "both",
    ],
    "bench_verify": ["--seconds", "0.3"],
}  # fmt: skip


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    scripts = sorted(
        p for p in HERE.glob("bench_*.py") if not wanted or any(w in p.stem for w in wanted)
    )
    if not scripts:
        print(f"no benchmark matches {wanted}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for script in scripts:
        args = QUICK.get(script.stem, [])
        print(f"\n=== {script.name} {' '.join(args)}", flush=True)
        began = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *args], check=False).returncode
        took = time.perf_counter() - began
        print(f"--- {script.name}: {'ok' if code == 0 else f'FAILED ({code})'} in {took:.0f} s")
        if code != 0:
            failed.append(script.name)
    print(f"\n{len(scripts) - len(failed)}/{len(scripts)} benchmarks ran; figures are noisy")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
