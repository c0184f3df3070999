"""Benchmark: a review of an image buried under a flood of stored signatures (issue 9, item 10),
against the floor of a review of a cleanly attested image, in the same run.

    .venv/bin/python bench/bench_flood.py

The flood is 100 occurrences × 32 signatures (the most an occurrence may carry) that all
claim the attestor's key and none verifies. Printed: review wall time, signature checks
spent (the per-review budget is 2,000), and the longest the event loop went without running
a 1 ms ticker meanwhile — the figure that says whether other reviews and /healthz were
stalled. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chainproof.domain.messages import occurrence_from_json
from chainproof.policy import AdmissionRequest
from unit.services.judge_fixtures import System

CLEAN = "gcr.io/acme/clean@sha256:" + "c" * 64
FLOODED = "gcr.io/acme/flooded@sha256:" + "f" * 64


async def setup() -> System:
    system = System()
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [release.attestor],
        },
    )
    await system.sign(release, CLEAN)
    await system.sign(release, FLOODED)
    payload = base64.b64encode(b'{"critical": {}}').decode()
    for batch in range(10):
        flood = []
        for i in range(10):
            sigs = [
                {
                    "signature": base64.b64encode(
                        release.signer.sign(b"x%d-%d-%d" % (batch, i, j))
                    ).decode(),
                    "publicKeyId": release.signer.key_id,
                }
                for j in range(32)
            ]
            flood.append(
                occurrence_from_json(
                    {
                        "resourceUri": FLOODED,
                        "noteName": release.note,
                        "attestation": {"serializedPayload": payload, "signatures": sigs},
                    }
                )
            )
        await system.grafeas.batch_create_occurrences("projects/app", flood)
    return system


async def review(system: System, image: str) -> tuple[float, float, str]:
    gaps: list[float] = []
    stop = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.get_running_loop().create_task(ticker())
    await asyncio.sleep(0.01)
    system.gatherer.cache.clear()
    start = time.perf_counter()
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(image,)))
    elapsed = time.perf_counter() - start
    stop = True
    await task
    return elapsed, max(gaps), decision.outcome.value


async def main() -> None:
    system = await setup()
    clean = [await review(system, CLEAN) for _ in range(5)]
    flooded = [await review(system, FLOODED) for _ in range(5)]
    floor = statistics.median(c[0] for c in clean)
    worst = statistics.median(f[0] for f in flooded)
    print(f"clean review (floor):   {floor * 1000:8.1f} ms  outcome {clean[0][2]}")
    print(
        f"flooded review:         {worst * 1000:8.1f} ms  outcome {flooded[0][2]}  "
        f"ratio to floor {worst / floor:.1f}x"
    )
    print(
        f"longest event-loop gap: {max(c[1] for c in clean) * 1000:8.1f} ms clean, "
        f"{max(f[1] for f in flooded) * 1000:.1f} ms flooded (1 ms ticker)"
    )
    print("(figures are noisy: the machine is shared)")


if __name__ == "__main__":
    asyncio.run(main())
