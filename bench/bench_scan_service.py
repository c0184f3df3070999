"""Benchmark: the scanner *service* on SQLite — advisories stored, findings written.

    .venv/bin/python bench/bench_scan_service.py [--images 1000] [--advisories 2000]

Unlike bench_scan.py (the pure matcher), this goes through ScanService and the Grafeas
service on an SQLite file. SBOMs are stored as PACKAGE occurrences the way ingestion stores
them — one PACKAGE note per package identity (versionless purl), the purl in
``location[0].cpeUri`` — 120 Debian + 180 application packages per image, drawn as in
bench_scan.py. Advisories are imported (document + VULNERABILITY note each), every image is
matched and its findings and DISCOVERY written; then 100 new advisories are imported and only
the images they touch are re-matched.

Printed: the whole second import and, within it, the re-match (the figure the budget of 1 s
per 1,000 affected images is about), per 1,000 images.

Floor, same run: what the store itself must do for that re-match, done directly on the store —
the same two indexed reads per batch of images (their packages under the touched notes, their
chainproof occurrences of the changed advisories) and one raw batch write of as many
occurrences as the re-match wrote. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_scan import ECOSYSTEMS, _name, _purl, _record, _version

from chainproof.domain.filters import And, Compare, FilterColumn, Or
from chainproof.domain.messages import note_from_json, occurrence_from_json, to_json
from chainproof.ingest.purls import note_id_for, versionless
from chainproof.services.scribe import scanning
from chainproof.services.scribe.grafeas import new_occurrence_ids
from chainproof.services.scribe.scanning import ScanService
from chainproof.store.factory import create_store
from chainproof.store.port import OccurrenceRecord
from chainproof.vuln.osv import parse_record
from unit.services.judge_fixtures import System


def _image(i: int) -> str:
    return f"reg.example/app{i}@sha256:{i:064x}"


async def run(images: int, advisories: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await _run(images, advisories, f"sqlite:///{tmp}/bench.db")


async def _run(images: int, advisories: int, url: str) -> None:
    rng = random.Random(20261201)
    store = create_store(url)
    await store.open()
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    debian = [("Debian", _name("Debian", i)) for i in range(2_000)]
    apps = [(ECOSYSTEMS[1 + i % 4], _name(ECOSYSTEMS[1 + i % 4], i)) for i in range(12_000)]
    versioned = {k: [_version(rng, k[0]) for _ in range(3)] for k in debian + apps}
    # One PACKAGE note per package identity, as ingestion names them.
    note_of = {k: note_id_for("pkg-", versionless(_purl(*k, "1"))) for k in debian + apps}
    notes = list(note_of.items())
    for i in range(0, len(notes), 1_000):
        await system.grafeas.batch_create_notes(
            "projects/prod",
            {n: note_from_json({"package": {"name": k[1]}}) for k, n in notes[i : i + 1_000]},
        )
    bases = [
        [(e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(debian, 120)]
        for _ in range(20)
    ]
    t0 = time.perf_counter()
    for i in range(images):
        chosen = rng.choice(bases) + [
            (e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(apps, 180)
        ]
        body = [
            occurrence_from_json(
                {
                    "resourceUri": _image(i),
                    "noteName": f"projects/prod/notes/{note_of[(e, n)]}",
                    "package": {
                        "name": n,
                        "version": {"name": v, "kind": "NORMAL", "fullName": v},
                        "location": [{"cpeUri": _purl(e, n, v)}],
                    },
                }
            )
            for e, n, v in chosen
        ]
        await system.grafeas.batch_create_occurrences("projects/prod", body)
    t_sboms = time.perf_counter() - t0

    records = [parse_record(_record(rng, i, *rng.choice(debian + apps))) for i in range(advisories)]
    t0 = time.perf_counter()
    first = await scanner.import_advisories(records)
    t_import = time.perf_counter() - t0

    held = sorted(scanner._images)  # the (ecosystem, name) keys some image holds
    new = [parse_record(_record(rng, advisories + i, *rng.choice(held))) for i in range(100)]
    spent: dict[str, Any] = {"rematch": 0.0, "batches": []}
    rematch_batch = ScanService._rematch_batch

    async def timed(self: ScanService, project: str, resources: Any, touched: Any, changed: Any):
        spent["batches"].append((project, list(resources), set(touched), set(changed)))
        start = time.perf_counter()
        try:
            return await rematch_batch(self, project, resources, touched, changed)
        finally:
            spent["rematch"] += time.perf_counter() - start

    ScanService._rematch_batch = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    again = await scanner.import_advisories(new)
    t_second = time.perf_counter() - t0
    ScanService._rematch_batch = rematch_batch  # type: ignore[method-assign]

    t_floor = await floor(store, scanner, spent["batches"], again.findings_opened)
    await store.close()

    n = max(again.images_rematched, 1)
    t_rematch = spent["rematch"]
    print(f"scanner service on SQLite: {images} images x 300 packages, {advisories:,} advisories")
    print(f"  store SBOMs              {t_sboms:7.2f} s")
    print(
        f"  import + first match     {t_import:7.2f} s   ({first.images_rematched} images, "
        f"{first.findings_opened:,} findings written)"
    )
    print(
        f"  import of 100 new        {t_second:7.2f} s   ({again.images_rematched} images "
        f"re-matched, {again.findings_opened} opened, {again.findings_closed} closed)"
    )
    print(
        f"  of which the re-match    {t_rematch:7.3f} s   = {t_rematch / n * 1000:.2f} s per "
        "1,000 images (budget 1 s)"
    )
    print(
        f"  floor (store reads + raw write) {t_floor:.3f} s -> re-match/floor = "
        f"{t_rematch / t_floor:.1f}x"
    )
    print("(shared 2-core machine: figures are noisy)")


async def floor(store: Any, scanner: ScanService, batches: list[Any], written: int) -> float:
    """The re-match's own store work, done directly: its reads, and a raw write of as many
    occurrences as it created (plus one DISCOVERY per image)."""
    reads = []
    for project, resources, touched, changed in batches:
        notes = sorted({n for k in touched for n in scanner._package_notes.get(k, ())})
        on = Or(tuple(Compare(FilterColumn.RESOURCE, r) for r in resources))
        packages = And(
            (
                Compare(FilterColumn.NOTE_PROJECT, project),
                on,
                Or(tuple(Compare(FilterColumn.NOTE_ID, n) for _, n in notes)),
            )
        )
        ids = [*sorted(changed), "chainproof-scanner"]
        ours = And(
            (
                on,
                Compare(FilterColumn.NOTE_PROJECT, "osv"),
                Or(tuple(Compare(FilterColumn.NOTE_ID, i) for i in ids)),
            )
        )
        reads.append((project, packages, ours, len(resources)))
    async with store.session(readonly=True) as s:
        sample = (
            await s.occurrences.page("prod", Compare(FilterColumn.KIND, "DISCOVERY"), None, 1)
        )[0]
    count = written + sum(r[3] for r in reads)
    ids = new_occurrence_ids(count)
    rows = [
        OccurrenceRecord(
            "floor",
            i,
            sample.kind,
            sample.note_project,
            sample.note_id,
            sample.resource,
            sample.occurrence,
            to_json(sample.occurrence),
        )
        for i in ids
    ]
    start = time.perf_counter()
    for project, packages, ours, _ in reads:
        for where in (packages, ours):
            after = None
            while True:
                async with store.session(readonly=True) as s:
                    page = await s.occurrences.page(project, where, after, 1_000)
                if len(page) < 1_000:
                    break
                after = page[-1].occurrence_id
    async with store.session() as s:
        await s.occurrences.insert(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--advisories", type=int, default=2_000)
    args = parser.parse_args()
    assert scanning.REMATCH_BATCH > 0
    asyncio.run(run(args.images, args.advisories))


if __name__ == "__main__":
    main()
