"""Benchmark: server time of each dashboard page on a store filled with images and occurrences.

Fills a fresh PostgreSQL database on 127.0.0.1:5432 (or SQLite) through the Grafeas service in
batches of 1,000 (each image: one ATTESTATION, one PACKAGE, the rest VULNERABILITY, some with
a VEX assessment), records decisions, then times every page in process (ASGI, no socket) and
prints the median and worst of a few requests per page beside a floor: a do-nothing route on
the same application, measured the same way. The machine is shared: figures are noisy.

    .venv/bin/python bench/bench_ui.py                              # 2,000 images / 20,000 occ.
    .venv/bin/python bench/bench_ui.py --images 10000 --occurrences 100000 --backend sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from typing import Any

import httpx
import psycopg
from starlette.responses import PlainTextResponse

from chainproof.api.rest.auth import public
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.domain.messages import occurrence_from_json
from chainproof.policy import AdmissionRequest
from chainproof.services.judge.decision_log import DecisionEntry

BATCH = 1000
PROJECT = "production"


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


async def fill(app: Any, n_images: int, total: int) -> int:
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
    docs = occurrences(n_images, total)
    for start in range(0, len(docs), BATCH):
        msgs = [occurrence_from_json(d) for d in docs[start : start + BATCH]]
        await c.grafeas.batch_create_occurrences("projects/scans", msgs)
    for i in range(0, n_images, max(n_images // 500, 1)):
        decision = await c.judge.evaluate(PROJECT, AdmissionRequest(images=(image(i),)))
        await c.decisions.record(
            DecisionEntry(PROJECT, decision, namespace="default", workload="Pod/app")
        )
    await c.decisions.flush()
    return len(docs)


def occurrence_note(data: dict[str, Any]) -> Any:
    from chainproof.domain.messages import note_from_json

    return note_from_json(data)


async def measure(app: Any, path: str, repeat: int) -> tuple[float, float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await client.get(path)  # warm caches (templates, config)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = await client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return statistics.median(times), max(times)


async def run(args: argparse.Namespace) -> None:
    name = f"chainproof_bench_ui_{uuid.uuid4().hex[:8]}"
    if args.backend == "postgres":
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    settings = load_settings(
        database_url=url, grpc_enabled=False, admission={"project": PROJECT}, log_level="warning"
    )
    app = build_app(settings)

    async def floor() -> PlainTextResponse:
        return PlainTextResponse("ok")

    # Declared public like a health probe: the app refuses routes that declare nothing.
    app.add_api_route("/bench-floor", floor, dependencies=[public("the benchmark's floor")])
    try:
        async with app.router.lifespan_context(app):
            t0 = time.perf_counter()
            n = await fill(app, args.images, args.occurrences)
            print(
                f"backend {args.backend}: {args.images} images, {n} occurrences "
                f"filled in {time.perf_counter() - t0:.0f} s (noisy, shared machine)"
            )
            floor_p50, _ = await measure(app, "/bench-floor", args.repeat)
            print(f"{'page':<48} {'p50 ms':>8} {'max ms':>8} {'x floor':>9}")
            print(f"{'/bench-floor (do-nothing route)':<48} {floor_p50:8.2f}")
            for path in (
                "/",
                "/images",
                "/images?severity=CRITICAL&sort=scan&order=desc",
                f"/image?ref={image(1)}",
                "/decisions",
                "/decisions?outcome=denied",
                "/policy",
                "/impact?q=CVE-2024-0001",
                "/impact?q=pkg:pypi/lib3",
            ):
                p50, worst = await measure(app, path, args.repeat)
                print(f"{path:<48} {p50:8.1f} {worst:8.1f} {p50 / floor_p50:9.0f}")
    finally:
        if args.backend == "postgres":
            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
            ) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--occurrences", type=int, default=20000)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
