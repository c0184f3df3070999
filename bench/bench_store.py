"""Benchmark: fill the store through REST batch creates, then time resourceUrl-filtered lists.

Starts ``chainproof serve`` as a separate process per backend (SQLite file; PostgreSQL in a
fresh database on 127.0.0.1:5432), sends N occurrences spread over M images in batches of
1,000 from a few concurrent clients, and prints ingest throughput and the p50/p99 latency of
``GET …/occurrences?filter=resourceUrl="…"`` for random images.

    .venv/bin/python bench/bench_store.py                      # 1,000,000 over 20,000 images
    .venv/bin/python bench/bench_store.py --occurrences 100000 --backend sqlite
    .venv/bin/python bench/bench_store.py --occurrences 20000 --images 1000 --backend postgres

The floor (PostgreSQL): the very rows chainproof wrote are read back with ``COPY … TO``, then
written with one ``COPY … FROM STDIN`` from this process into a copy of the same table with
the same indexes (``CREATE TABLE … (LIKE occurrences INCLUDING ALL)``), timed, in the same
run; ingest prints as a ratio to it (1.0 would be COPY's speed). Ingest runs in ``--rounds``
rounds, each followed by the COPY of the rows it wrote, so that both are measured under the
same load on a shared machine; the ratio is the median of the rounds'. SQLite has no COPY: no
floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

BATCH = 1000
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(database_url: str, workers: int, port: int = 0, grpc_port: int = 0) -> Iterator[str]:
    port = port or free_port()
    env = {
        **os.environ,
        "CHAINPROOF_DATABASE_URL": database_url,
        "CHAINPROOF_PORT": str(port),
        # gRPC stays on (the default): every worker serves it on the shared port (ADR 0141).
        "CHAINPROOF_GRPC_PORT": str(grpc_port or free_port()),
        "CHAINPROOF_LOG_LEVEL": "warning",
        "CHAINPROOF_PAGE_TOKEN_SECRET": "bench-secret-bench-secret-bench-secret",
    }
    cmd = [str(ROOT / ".venv/bin/chainproof"), "serve", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def image(i: int) -> str:
    return f"registry.example.com/team{i % 50}/app{i}@sha256:{i:064x}"


def batch_body(start: int, images: int) -> bytes:
    # Bodies are built as text: the client must cost little next to the server it measures.
    items = []
    for n in range(start, start + BATCH):
        img = image(n % images)
        if n % 5 == 0:
            items.append(
                f'{{"resourceUri":"{img}","noteName":"projects/bench/notes/qa","attestation":'
                '{"serializedPayload":"cGF5bG9hZA==","signatures":[{"signature":"c2ln",'
                f'"publicKeyId":"k{n}"}}]}}}}'
            )
        else:
            items.append(
                f'{{"resourceUri":"{img}","noteName":"projects/bench/notes/cve","vulnerability":'
                '{"effectiveSeverity":"HIGH","packageIssue":[{"affectedCpeUri":"cpe:/o:debian:'
                'debian_linux:12","affectedPackage":"openssl","affectedVersion":{"kind":"NORMAL",'
                f'"name":"3.0.{n % 100}"}}}}]}}}}'
            )
    return ('{"occurrences":[' + ",".join(items) + "]}").encode()


async def ingest(
    base: str, starts: list[int], images: int, concurrency: int, *, notes: bool
) -> float:
    """Send the batches beginning at ``starts``; occurrences per second."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        if notes:
            await c.post("/v1/projects/bench/notes?noteId=qa", json={"attestation": {}})
            await c.post(
                "/v1/projects/bench/notes?noteId=cve",
                json={"vulnerability": {"severity": "HIGH"}},
            )
        queue: asyncio.Queue[int] = asyncio.Queue()
        for start in starts:
            queue.put_nowait(start)

        async def worker() -> None:
            while not queue.empty():
                start = queue.get_nowait()
                r = await c.post(
                    "/v1/projects/bench/occurrences:batchCreate",
                    content=batch_body(start, images),
                    headers={"content-type": "application/json"},
                )
                if r.status_code != 200:
                    raise RuntimeError(f"batch at {start} failed: {r.status_code} {r.text[:300]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(starts) * BATCH / (time.perf_counter() - began)


class CopyFloor:
    """PostgreSQL's COPY of the rows chainproof wrote, into a same-shaped table.

    ``occurrences_floor`` is ``CREATE TABLE … (LIKE occurrences INCLUDING ALL)``: the same
    columns, defaults, constraints and indexes (there are no foreign keys). After each round
    of ingest, the rows that round wrote are read back with ``COPY … TO`` and written into it
    with one ``COPY … FROM STDIN``, timed, so that the floor table is as large as the real one
    was and the two are measured under the same load, moments apart."""

    def __init__(self, database_url: str) -> None:
        self._conn = psycopg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        self._conn.execute("CREATE TABLE occurrences_floor (LIKE occurrences INCLUDING ALL)")
        self._conn.commit()
        self._since: Any = None

    def round(self) -> float:
        """Rows per second for the rows written since the previous round."""
        conn = self._conn
        where, params = ("WHERE create_time > %s", (self._since,)) if self._since else ("", ())
        buffer = bytearray()
        query = f"COPY (SELECT * FROM occurrences {where}) TO STDOUT (FORMAT binary)"  # noqa: S608
        with conn.cursor().copy(query, params) as copy:
            for chunk in copy:
                buffer += chunk
        row = conn.execute(
            f"SELECT count(*), max(create_time) FROM occurrences {where}",  # noqa: S608
            params,
        ).fetchone()
        assert row is not None
        rows, self._since = int(row[0]), row[1]
        conn.commit()
        began = time.perf_counter()
        with conn.cursor().copy("COPY occurrences_floor FROM STDIN (FORMAT binary)") as copy:
            copy.write(buffer)
        conn.commit()
        return rows / (time.perf_counter() - began)

    def close(self) -> None:
        self._conn.execute("DROP TABLE occurrences_floor")
        self._conn.commit()
        self._conn.close()


def list_latency(base: str, images: int, samples: int) -> tuple[float, float, int]:
    rng = random.Random(7)
    timings: list[float] = []
    found = 0
    with httpx.Client(base_url=base, timeout=30) as c:
        for i in range(samples + 50):
            flt = f'resourceUrl="https://{image(rng.randrange(images))}"'
            began = time.perf_counter()
            r = c.get("/v1/projects/bench/occurrences", params={"filter": flt})
            elapsed = time.perf_counter() - began
            r.raise_for_status()
            if i >= 50:  # warm-up excluded
                timings.append(elapsed)
                found += len(r.json().get("occurrences", []))
    timings.sort()
    p50 = statistics.median(timings) * 1000
    p99 = timings[int(len(timings) * 0.99) - 1] * 1000
    return p50, p99, found // samples


@contextmanager
def backend_url(name: str) -> Iterator[str]:
    if name == "sqlite":
        tmp = tempfile.mkdtemp(prefix="chainproof-bench-")
        try:
            yield f"sqlite:///{tmp}/bench.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    db = f"chainproof_bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{db}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--occurrences", type=int, default=1_000_000, help="how many to ingest")
    ap.add_argument("--images", type=int, default=20_000, help="images they are spread over")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="server processes (PostgreSQL)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="PostgreSQL: ingest in this many rounds, each followed by its COPY floor; the "
        "ratio printed is the median of the rounds' ratios",
    )
    ap.add_argument(
        "--port", type=int, default=0, help="the server's HTTP port (default: a free one)"
    )
    ap.add_argument("--grpc-port", type=int, default=0, help="its gRPC port (default: a free one)")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"{args.occurrences:,} occurrences over {args.images:,} images, batches of {BATCH:,}")
    print(
        f"{'backend':<10} {'workers':>7} {'ingest occ/s':>13} {'list p50 ms':>12} "
        f"{'list p99 ms':>12} {'hits/list':>9} {'COPY rows/s':>12} {'× COPY':>7}"
    )
    for name in backends:
        # SQLite has one writer: a second server process only adds lock waits.
        workers = 1 if name == "sqlite" else args.workers
        with backend_url(name) as url, server(url, workers, args.port, args.grpc_port) as base:
            starts = list(range(0, args.occurrences, BATCH))
            rounds = max(1, min(args.rounds, len(starts))) if name == "postgres" else 1
            floor = CopyFloor(url) if name == "postgres" else None
            rates, copies = [], []
            try:
                for r in range(rounds):
                    part = starts[r::rounds]
                    rates.append(
                        asyncio.run(ingest(base, part, args.images, args.concurrency, notes=r == 0))
                    )
                    if floor is not None:
                        copies.append(floor.round())
            finally:
                if floor is not None:
                    floor.close()
            rate = args.occurrences / sum(
                len(starts[r::rounds]) * BATCH / x for r, x in enumerate(rates)
            )
            p50, p99, hits = list_latency(base, args.images, args.samples)
            shown = f"{'n/a':>12} {'':>7}"
            if copies:
                ratios = [x / c for x, c in zip(rates, copies, strict=True)]
                shown = f"{statistics.median(copies):>12,.0f} {statistics.median(ratios):>7.2f}"
        print(f"{name:<10} {workers:>7} {rate:>13,.0f} {p50:>12.2f} {p99:>12.2f} {hits:>9} {shown}")
        if copies:
            print(
                "  per round (ingest occ/s / COPY rows/s = ratio): "
                + "; ".join(
                    f"{x:,.0f} / {c:,.0f} = {x / c:.2f}" for x, c in zip(rates, copies, strict=True)
                )
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
