"""Benchmark: the scanner *service* on SQLite — advisories stored, findings written.

    .venv/bin/python bench/bench_scan_service.py [--images 100] [--advisories 2000]

Unlike bench_scan.py (the pure matcher), this goes through ScanService and the Grafeas
service on an SQLite file: SBOMs are stored as PACKAGE occurrences (120 Debian + 180
application packages per image, drawn as in bench_scan.py), advisories are imported (document
+ VULNERABILITY note each), every image is matched and its findings and DISCOVERY written;
then 100 new advisories are imported and only the images they touch are re-matched.

Floor, same run: one read of each re-matched image's chainproof occurrences — the least a
reconciliation must do per image. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_scan import ECOSYSTEMS, _name, _purl, _record, _version

from chainproof.domain.filters import And, Compare, FilterColumn
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.services.scribe.scanning import ScanService
from chainproof.store.factory import create_store
from chainproof.vuln.osv import parse_record
from unit.services.judge_fixtures import System


async def run(images: int, advisories: int) -> None:
    rng = random.Random(20261201)
    store = create_store(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    await store.open()
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    await system.grafeas.create_note(
        "projects/prod", "pkgs", note_from_json({"package": {"name": "sbom"}})
    )
    debian = [("Debian", _name("Debian", i)) for i in range(2_000)]
    apps = [(ECOSYSTEMS[1 + i % 4], _name(ECOSYSTEMS[1 + i % 4], i)) for i in range(12_000)]
    versioned = {k: [_version(rng, k[0]) for _ in range(3)] for k in debian + apps}
    bases = [
        [(e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(debian, 120)]
        for _ in range(20)
    ]
    t0 = time.perf_counter()
    for i in range(images):
        chosen = rng.choice(bases) + [
            (e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(apps, 180)
        ]
        image = f"reg.example/app{i}@sha256:{i:064x}"
        body = [
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": "projects/prod/notes/pkgs",
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
    t0 = time.perf_counter()
    again = await scanner.import_advisories(new)
    t_rematch = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(again.images_rematched):
        async with store.session(readonly=True) as s:
            await s.occurrences.page(
                "prod",
                And(
                    (
                        Compare(FilterColumn.RESOURCE, f"reg.example/app{i}@sha256:{i:064x}"),
                        Compare(FilterColumn.NOTE_PROJECT, "osv"),
                    )
                ),
                None,
                1_000,
            )
    t_floor = time.perf_counter() - t0
    await store.close()

    n = max(again.images_rematched, 1)
    print(f"scanner service on SQLite: {images} images x 300 packages, {advisories:,} advisories")
    print(f"  store SBOMs            {t_sboms:7.2f} s")
    print(
        f"  import + first match   {t_import:7.2f} s   ({first.images_rematched} images, "
        f"{first.findings_opened:,} findings written)"
    )
    print(
        f"  re-match after 100 new {t_rematch:7.2f} s   ({again.images_rematched} images, "
        f"{again.findings_opened} opened) = {t_rematch / n * 1000:.1f} s per 1,000 images"
    )
    ratio = t_rematch / t_floor
    print(f"  floor (1 read/image)   {t_floor:7.3f} s   -> re-match/floor = {ratio:.0f}x")
    print("(shared 2-core machine: figures are noisy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--advisories", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(run(args.images, args.advisories))


if __name__ == "__main__":
    main()
