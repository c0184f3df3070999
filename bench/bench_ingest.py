"""Benchmark: ingesting documents, each against a floor measured in the same run.

Three figures (the machine is shared: they are noisy, compare the ratios):

1. a 10,000-component CycloneDX SBOM (budget 1 s) and 2. a 1,000-finding Trivy report (budget
   0.5 s), ingested whole (convert, validate, notes and occurrences stored in one transaction)
   on the embedded SQLite store and in memory. Each is run ``--repeat`` times into fresh
   projects; the median wall time is printed with the median CPU time of this process.
   Floor: ``orjson.loads`` of the same document plus the store's raw batch write
   (``insert_notes`` + ``insert_occurrences`` in one session) of the very records that ingest
   wrote, re-keyed into another project — what any ingest must at least do;
3. a stream of Trivy reports for distinct images on PostgreSQL (127.0.0.1:5432, a fresh
   database), in occurrences per second, printed beside the same store's raw throughput for
   ``batchCreate`` of 1,000 occurrences at a time, and their ratio.

    .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --reports 10 --skip-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chainproof.domain.messages import note_from_json, occurrence_from_json, to_json  # noqa: E402
from chainproof.domain.pagination import PageTokenCodec  # noqa: E402
from chainproof.services.scribe.bulk_gc import cyclic_gc_paused  # noqa: E402
from chainproof.services.scribe.grafeas import GrafeasService, new_occurrence_ids  # noqa: E402
from chainproof.services.scribe.ingestion import IngestService  # noqa: E402
from chainproof.store.factory import create_store  # noqa: E402
from chainproof.store.port import MetadataStore  # noqa: E402

TRIVY = ROOT / "tests/fixtures/ingest/scans/trivy/alpine-310.json"


def sbom(components: int) -> bytes:
    comps = [
        {
            "type": "library",
            "bom-ref": f"c{i}",
            "name": f"lib{i}",
            "version": f"1.{i % 97}.{i}",
            "purl": f"pkg:npm/%40scope{i % 50}/lib{i}@1.{i % 97}.{i}",
            "licenses": [{"license": {"id": "MIT"}}],
        }
        for i in range(components)
    ]
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": comps}
    ).encode()


def trivy(findings: int, seed: str) -> bytes:
    """The real alpine-310 report, its findings repeated over distinct packages."""
    doc = json.loads(TRIVY.read_bytes())
    template = doc["Results"][0]["Vulnerabilities"]
    vulns = []
    for i in range(findings):
        v = dict(template[i % len(template)])
        name = f"{v['PkgName']}-{i}"
        v["PkgName"] = name
        v["PkgIdentifier"] = {"PURL": f"pkg:apk/alpine/{name}@{v['InstalledVersion']}"}
        vulns.append(v)
    doc["Results"][0]["Vulnerabilities"] = vulns
    doc["ReportID"] = seed
    return json.dumps(doc).encode()


def image(i: int) -> str:
    return f"registry.example/bench/app{i}@sha256:{i:064x}"


async def opened(url: str) -> MetadataStore:
    store = create_store(url)
    await store.open()
    return store


async def timed_ingest(
    store: MetadataStore, raw: bytes, project: str, ref: str
) -> tuple[float, float]:
    """Wall and CPU seconds of one ingest."""
    service = IngestService(store)
    start, cpu = time.perf_counter(), time.process_time()
    result = await service.ingest(f"projects/{project}", raw, resource_uri=ref)
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert result.created, result
    return elapsed


async def _stored(store: MetadataStore, project: str) -> tuple[list[Any], list[Any]]:
    notes: list[Any] = []
    occurrences: list[Any] = []
    async with store.session(readonly=True) as s:
        after = None
        while page := await s.notes.page(project, None, after, 1000):
            notes += page
            after = page[-1].note_id
        after = None
        while page := await s.occurrences.page(project, None, after, 1000):
            occurrences += page
            after = page[-1].occurrence_id
    return notes, occurrences


async def floor_seconds(store: MetadataStore, raw: bytes, source: str, target: str) -> float:
    """orjson.loads(raw) + the raw batch write of what ingest stored in ``source``, re-keyed
    into ``target`` (built before the clock starts; the collector paused as ingest pauses it)."""
    notes, occurrences = await _stored(store, source)
    note_records = [
        replace(n, project=target, document=to_json(n.note) | {"name": f"x/{n.note_id}"})
        for n in notes
    ]
    ids = new_occurrence_ids(len(occurrences))
    occurrence_records = [
        replace(
            o, project=target, occurrence_id=i, note_project=target, document=to_json(o.occurrence)
        )
        for o, i in zip(occurrences, ids, strict=True)
    ]
    with cyclic_gc_paused():
        start = time.perf_counter()
        orjson.loads(raw)
        async with store.session() as s:
            assert not await s.notes.insert(note_records)
            await s.occurrences.insert(occurrence_records)
        return time.perf_counter() - start


async def measure(
    store: MetadataStore, raw: bytes, label: str, repeat: int
) -> tuple[float, float, float]:
    """Median wall, median CPU and median floor seconds over ``repeat`` fresh projects."""
    walls, cpus, floors = [], [], []
    for r in range(repeat):
        wall, cpu = await timed_ingest(store, raw, f"{label}{r}", image(r))
        walls.append(wall)
        cpus.append(cpu)
        floors.append(await floor_seconds(store, raw, f"{label}{r}", f"{label}floor{r}"))
    return statistics.median(walls), statistics.median(cpus), statistics.median(floors)


async def raw_batch_rate(store: MetadataStore, total: int) -> float:
    """Occurrences per second through GrafeasService.batch_create_occurrences (1,000 each)."""
    grafeas = GrafeasService(store, PageTokenCodec(b"b" * 32))
    project = f"raw{uuid.uuid4().hex[:8]}"
    await grafeas.create_note(
        f"projects/{project}", "cve", note_from_json({"vulnerability": {"severity": "HIGH"}})
    )
    batches = []
    for b in range(total // 1000):
        batches.append(
            [
                occurrence_from_json(
                    {
                        "resourceUri": image(b),
                        "noteName": f"projects/{project}/notes/cve",
                        "vulnerability": {
                            "packageIssue": [
                                {
                                    "affectedCpeUri": f"pkg:apk/alpine/p{i}",
                                    "affectedPackage": f"p{i}",
                                }
                            ]
                        },
                    }
                )
                for i in range(1000)
            ]
        )
    start = time.perf_counter()
    for batch in batches:
        await grafeas.batch_create_occurrences(f"projects/{project}", batch)
    return total / (time.perf_counter() - start)


async def stream_rate(store: MetadataStore, reports: int, findings: int) -> float:
    docs = [trivy(findings, f"r{i}") for i in range(reports)]
    service = IngestService(store)
    start = time.perf_counter()
    stored = 0
    for i, raw in enumerate(docs):
        result = await service.ingest("projects/stream", raw, resource_uri=image(10_000 + i))
        stored += sum(result.created.values())
    return stored / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=1_000)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print("figures are noisy: the machine is shared")
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/bench.db")):
            store = await opened(url)
            try:
                documents = (
                    (f"SBOM {args.components:,} components", sbom(args.components), 1.0),
                    (f"Trivy {args.findings:,} findings", trivy(args.findings, "x"), 0.5),
                )
                for i, (what, raw, budget) in enumerate(documents):
                    wall, cpu, floor = await measure(store, raw, f"d{i}-", args.repeat)
                    print(
                        f"{label:7} {what}: {wall:.3f} s wall, {cpu:.3f} s CPU (budget "
                        f"{budget} s); floor (loads + raw batch write) {floor:.3f} s; "
                        f"ingest/floor = {wall / floor:.2f}x"
                    )
            finally:
                await store.close()
    if args.skip_postgres:
        return
    import psycopg

    name = f"chainproof_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        store = await opened(f"postgresql://postgres@127.0.0.1:5432/{name}")
        try:
            floor = await raw_batch_rate(store, args.reports * args.findings)
            rate = await stream_rate(store, args.reports, args.findings)
        finally:
            await store.close()
        print(
            f"postgres stream of {args.reports} Trivy reports x {args.findings:,} findings: "
            f"{rate:,.0f} occ/s; raw batchCreate {floor:,.0f} occ/s; ratio {rate / floor:.2f}"
        )
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
