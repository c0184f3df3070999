"""Benchmark: server time of each dashboard page on a store filled with images and occurrences.

Small stores (``--occurrences`` up to 50,000, or SQLite) are filled through the Grafeas service
in batches of 1,000 (each image: one ATTESTATION, one PACKAGE, the rest VULNERABILITY, some
with a VEX assessment), so the summaries are kept by the write path itself. Large stores on
PostgreSQL are built as bench/bench_scale.py builds them: the first 20 images go through the
service, every other image gets copies of one of those stored rows (new IDs, its own
resource) written with ``COPY … FROM STDIN``, and then migration 0012's backfill
(``chainproof.store.sql.summaries.backfill``) reduces every occurrence to its facts and
computes every summary and the totals (migration 0014's ``summary_totals``), then ``VACUUM
ANALYZE`` as autovacuum would have by then — its time is printed too. Decisions are recorded
through the decision log for 500 images. Then every page is timed in process (ASGI, no
socket): p50 and p99 of ``--repeat`` requests per page beside a floor, a do-nothing route on
the same application measured the same way, and the ratio; and the CPU time per request of
this process plus the PostgreSQL backends serving it (from /proc), which a loaded machine
does not inflate as it does the wall time. The machine is shared: figures are noisy; the
load average is printed.

    .venv/bin/python bench/bench_ui.py                                  # 2,000 images / 20,000
    .venv/bin/python bench/bench_ui.py --images 100000 --occurrences 1000000   # issue 16
    .venv/bin/python bench/bench_ui.py --images 10000 --occurrences 100000 --backend sqlite
    .venv/bin/python bench/bench_ui.py --images 100000 --occurrences 1000000 --keep  # keep it
    .venv/bin/python bench/bench_ui.py --reuse chainproof_bench_ui_…    # time the kept store

``--keep`` prints the PostgreSQL database's name and leaves it; ``--reuse NAME`` skips the
build and times the pages of that database with the code as it is now (migrations newer
than the store run when the services open it), and leaves it too unless it fails to open.
A run that fails while building drops its database even with ``--keep``: a half-built
store is no use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from starlette.responses import PlainTextResponse

from chainproof.api.rest.app import create_app
from chainproof.api.rest.auth import public
from chainproof.api.rest.ops import Metrics
from chainproof.bootstrap import open_services, running
from chainproof.config import load_settings
from chainproof.domain.images import canonical_resource
from chainproof.domain.messages import occurrence_from_json
from chainproof.policy import AdmissionRequest
from chainproof.services.judge.decision_log import DecisionEntry

BATCH = 1000
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PROJECT = "production"
TEMPLATES = 20
#: Above this many occurrences on PostgreSQL the store is built by COPY and backfill.
BULK_ABOVE = 50_000
COLUMNS = (
    "project, occurrence_id, kind, note_project, note_id, resource, data, create_time, update_time"
)


def image(i: int) -> str:
    return f"registry.example.com/team{i % 50}/app{i}@sha256:{i:064x}"


def occurrences(n_images: int, total: int) -> list[dict[str, Any]]:
    per = max(total // n_images, 3)
    out: list[dict[str, Any]] = []
    for i in range(n_images):
        ref = image(i)
        out.append(
            {
                "resourceUri": ref,
                "noteName": "projects/sec/notes/qa",
                "attestation": {
                    "serializedPayload": "e30=",
                    "signatures": [{"signature": "AA==", "publicKeyId": "k1"}],
                },
            }
        )
        out.append(
            {
                "resourceUri": ref,
                "noteName": "projects/scans/notes/pkg",
                "package": {
                    "name": f"lib{i % 300}",
                    "cpeUri": f"pkg:pypi/lib{i % 300}@1.{i % 7}",
                    "version": {"name": f"1.{i % 7}", "kind": "NORMAL"},
                },
            }
        )
        for j in range(per - 2):
            cve = f"CVE-2024-{(i * 7 + j) % 500:04d}"
            v: dict[str, Any] = {
                "severity": ("LOW", "MEDIUM", "HIGH", "CRITICAL")[j % 4],
                "packageIssue": [
                    {
                        "affectedCpeUri": "cpe:/a:x",
                        "affectedPackage": f"lib{j}",
                        "affectedVersion": {"name": "1", "kind": "NORMAL"},
                    }
                ],
            }
            if j % 3 == 0:
                v["vexAssessment"] = {"vulnerabilityId": cve, "state": "NOT_AFFECTED"}
            out.append(
                {"resourceUri": ref, "noteName": f"projects/scans/notes/{cve}", "vulnerability": v}
            )
    return out[: max(total, 3 * n_images)]


async def notes(app: Any) -> None:
    c = app.state.services
    await c.grafeas.create_note("projects/sec", "qa", occurrence_note({"attestation": {}}))
    await c.grafeas.create_note(
        "projects/scans", "pkg", occurrence_note({"package": {"name": "lib"}})
    )
    for k in range(500):
        await c.grafeas.create_note(
            "projects/scans",
            f"CVE-2024-{k:04d}",
            occurrence_note({"vulnerability": {"severity": "HIGH"}}),
        )


async def fill(app: Any, n_images: int, total: int) -> int:
    c = app.state.services
    await notes(app)
    docs = occurrences(n_images, total)
    for start in range(0, len(docs), BATCH):
        msgs = [occurrence_from_json(d) for d in docs[start : start + BATCH]]
        await c.grafeas.batch_create_occurrences("projects/scans", msgs)
    await decide(app, n_images)
    return len(docs)


async def decide(app: Any, n_images: int) -> None:
    c = app.state.services
    for i in range(0, n_images, max(n_images // 500, 1)):
        decision = await c.judge.evaluate(PROJECT, AdmissionRequest(images=(image(i),)))
        await c.decisions.record(
            DecisionEntry(PROJECT, decision, namespace="default", workload="Pod/app")
        )
    await c.decisions.flush()


async def bulk_fill(app: Any, url: str, n_images: int, total: int) -> tuple[int, float, float]:
    """Templates through the service, copies by COPY, then the migration's backfill: (rows,
    seconds copying, seconds of backfill)."""
    import sqlalchemy as sa

    from chainproof.services.scribe.grafeas import new_occurrence_id
    from chainproof.store.sql.summaries import backfill

    c = app.state.services
    await notes(app)
    per = max(total // n_images, 3)
    docs = occurrences(TEMPLATES, TEMPLATES * per)
    for start in range(0, len(docs), BATCH):
        msgs = [occurrence_from_json(d) for d in docs[start : start + BATCH]]
        await c.grafeas.batch_create_occurrences("projects/scans", msgs)
    began = time.perf_counter()
    written = 0
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM occurrences").fetchall()  # noqa: S608
        by_template: dict[str, list[Any]] = {}
        for row in rows:
            by_template.setdefault(row[5], []).append(row)
        templates = [canonical_resource(image(t)) for t in range(TEMPLATES)]
        with conn.cursor().copy(f"COPY occurrences ({COLUMNS}) FROM STDIN") as copy:
            for i in range(TEMPLATES, n_images):
                tpl = templates[i % TEMPLATES]
                img = image(i)
                old = image(i % TEMPLATES)
                for project, oid, kind, nproj, nid, _res, data, ct, ut in by_template[tpl]:
                    new = new_occurrence_id()
                    text = json.dumps(data).replace(old, img).replace(oid, new)
                    copy.write_row((project, new, kind, nproj, nid, img, text, ct, ut))
                    written += 1
        conn.commit()
    copied = time.perf_counter() - began
    began = time.perf_counter()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        # The templates' facts were kept on write; the backfill computes everyone's anew.
        conn.execute(sa.text("TRUNCATE image_facts, impact_terms"))
        backfill(conn)
    with engine.connect() as conn:
        # As autovacuum would by now: statistics, and the visibility map index-only scans use.
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    filled = time.perf_counter() - began
    await decide(app, n_images)
    return written + len(docs), copied, filled


def occurrence_note(data: dict[str, Any]) -> Any:
    from chainproof.domain.messages import note_from_json

    return note_from_json(data)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.999999) - 1))]


def backend_cpu(database: str | None) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database`` (the
    application's pool), from /proc; 0 without a database (SQLite: it runs in process).
    Parallel workers come and go and are not counted."""
    if database is None:
        return 0.0
    with psycopg.connect(ADMIN, autocommit=True) as db:
        pids = [r[0] for r in db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
        )]  # fmt: skip
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def measure(
    app: Any, path: str, repeat: int, database: str | None = None
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, CPU ms per request: this process's plus the database backends')."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await client.get(path)  # warm caches (templates, config)
        times = []
        cpu0, db0 = time.process_time(), backend_cpu(database)
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = await client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        cpu = time.process_time() - cpu0 + backend_cpu(database) - db0
    return statistics.median(times), pct(times, 0.99), cpu * 1000 / repeat


async def run(args: argparse.Namespace) -> None:
    name = args.reuse or f"chainproof_bench_ui_{uuid.uuid4().hex[:8]}"
    if args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as db:
            found = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            raise SystemExit(f"no database {name!r} to reuse")
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    elif args.backend == "postgres":
        with psycopg.connect(ADMIN, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        print(f"database {name}", flush=True)
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    settings = load_settings(
        database_url=url,
        grpc_enabled=False,
        admission={"project": PROJECT},
        log_level="warning",
        # Pages only: no scanner re-matching the filled images, no notifier routing their
        # events, while the pages are timed.
        scanning={"scan_on_sbom": False},
        notifications={"enabled": False},
    )

    async def floor() -> PlainTextResponse:
        return PlainTextResponse("ok")

    built = False
    try:
        metrics = Metrics()
        services = await open_services(settings, None, metrics=metrics)
        async with running(services):
            app = create_app(services, metrics)
            # Declared public like a health probe: the app refuses routes that declare nothing.
            app.add_api_route("/bench-floor", floor, dependencies=[public("the benchmark's floor")])
            t0 = time.perf_counter()
            if args.reuse:
                print(f"backend postgres: reusing database {name} (no build)")
            elif args.backend == "postgres" and args.occurrences > BULK_ABOVE:
                n, copied, filled = await bulk_fill(app, url, args.images, args.occurrences)
                print(
                    f"backend postgres: {args.images} images, {n} occurrences: COPY "
                    f"{copied:.0f} s, backfill (facts, summaries, totals) and VACUUM ANALYZE "
                    f"{filled:.0f} s"
                )
            else:
                n = await fill(app, args.images, args.occurrences)
                print(
                    f"backend {args.backend}: {args.images} images, {n} occurrences "
                    f"filled through the service in {time.perf_counter() - t0:.0f} s"
                )
            built = True
            database = name if args.backend == "postgres" else None
            floor_p50, floor_p99, floor_cpu = await measure(
                app, "/bench-floor", args.repeat, database
            )
            print(f"load average before timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(f"{'page':<52} {'p50 ms':>8} {'p99 ms':>8} {'p50/floor':>10} {'CPU ms':>8}")
            print(
                f"{'/bench-floor (do-nothing route: the floor)':<52} "
                f"{floor_p50:8.2f} {floor_p99:8.2f} {'':>10} {floor_cpu:8.2f}"
            )
            for path in (
                "/",
                "/images",
                "/images?severity=CRITICAL&sort=scan&order=desc",
                "/images?sort=decision&order=desc",
                "/images?sort=decision",
                "/images?decision=denied",
                "/images?decision=none",
                "/images?image=app4242",
                "/images?image=team4",
                f"/image?ref={image(1)}",
                "/decisions",
                "/decisions?outcome=denied",
                "/policy",
                "/impact?q=CVE-2024-0001",
                "/impact?q=pkg:pypi/lib3",
                "/impact?q=lib7",
            ):
                p50, p99, cpu = await measure(app, path, args.repeat, database)
                print(f"{path:<52} {p50:8.1f} {p99:8.1f} {p50 / floor_p50:10.0f} {cpu:8.1f}")
            print(f"load average after timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.backend == "postgres":
            if args.reuse or (args.keep and built):
                print(f"kept database {name}")
            else:
                with psycopg.connect(ADMIN, autocommit=True) as db:
                    db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--occurrences", type=int, default=20000)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--keep", action="store_true", help="PostgreSQL: print the database's name, do not drop it"
    )
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="PostgreSQL: skip the build and time the pages of this existing (kept) database",
    )
    args = parser.parse_args()
    if args.reuse:
        args.backend = "postgres"
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
