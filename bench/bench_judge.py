"""Benchmark: Judge.evaluate for a 3-image request needing 2 attestors and a vulnerability
check, on the in-memory store and on SQLite, with the caches cold and warm.

    .venv/bin/python bench/bench_judge.py [--seconds 3]

Cold: every decision reads the store and verifies every signature. Warm verification cache:
the store is still read, signatures are not verified again. Warm judge cache: nothing changed
since the last decision, so neither the store nor the verifier is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest
from chainproof.store.factory import create_store
from unit.services.judge_fixtures import System

IMAGES = tuple(f"gcr.io/acme/svc{i}@sha256:{i:064x}" for i in range(3))


async def setup(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    build = await system.attestor("sec", "build")
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [qa.attestor, build.attestor],
            "chainproofChecks": {
                "vulnerabilities": {
                    "maximumFixableSeverity": "HIGH",
                    "maximumUnfixableSeverity": "CRITICAL",
                },
                "freshness": {"maximumScanAgeHours": 24},
            },
        },
    )
    await system.grafeas.create_note(
        "projects/prod", "scanner", note_from_json({"discovery": {"analysisKind": "VULNERABILITY"}})
    )
    for n in range(5):
        await system.grafeas.create_note(
            "projects/prod", f"CVE-2026-{n}", note_from_json({"vulnerability": {}})
        )
    scanned = (system.clock.now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for image in IMAGES:
        await system.sign(qa, image)
        await system.sign(build, image)
        await system.grafeas.create_occurrence(
            "projects/prod",
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": "projects/prod/notes/scanner",
                    "discovery": {"analysisStatus": "FINISHED_SUCCESS", "lastScanTime": scanned},
                }
            ),
        )
        for n in range(5):
            await system.grafeas.create_occurrence(
                "projects/prod",
                occurrence_from_json(
                    {
                        "resourceUri": image,
                        "noteName": f"projects/prod/notes/CVE-2026-{n}",
                        "vulnerability": {
                            "effectiveSeverity": "MEDIUM",
                            "fixAvailable": True,
                            "packageIssue": [
                                {"affectedCpeUri": "cpe:/o:debian", "affectedPackage": f"p{n}"}
                            ],
                        },
                    }
                ),
            )


async def rate(system: System, seconds: float, cold: bool) -> float:
    request = AdmissionRequest(images=IMAGES, namespace="web")
    decision = await system.judge.evaluate("prod", request)
    assert decision.allowed, decision.explain()
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        if cold:
            system.gatherer.cache.clear()
        await system.judge.evaluate("prod", request)
        count += 1
    return count / (time.perf_counter() - began)


async def main(seconds: float) -> None:
    print(f"{'store':<8} {'cache':<28} {'decisions/s':>12} {'ms each':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for store_name, base in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/j")):
            for n, (label, ttl, cold) in enumerate(
                (
                    ("cold (verify every time)", 0, True),
                    ("warm verification cache", 0, False),
                    ("warm judge cache", 60, False),
                )
            ):
                # A fresh database for each case (SQLite: one file each).
                store = create_store(base if store_name == "memory" else f"{base}{n}.db")
                await store.open()
                system = System(store=store, cache_ttl=timedelta(seconds=ttl))  # type: ignore[arg-type]
                system.clock.now = datetime.now(UTC)
                try:
                    await setup(system)
                    r = await rate(system, seconds, cold)
                finally:
                    await store.close()
                print(f"{store_name:<8} {label:<28} {r:>12,.0f} {1000 / r:>8.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per case")
    asyncio.run(main(parser.parse_args().seconds))
