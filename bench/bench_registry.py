"""Benchmark: admission with registry evidence against scribe-only, and cold registry reviews.

Runs in one process on loopback: a real registry (Debian's docker-registry, started here; see
tests/oci_registry.py), the judge and admission services over a memory store.

1. **Cached**: two projects judge 3-image pods at a fixed rate (open loop, latency from the
   scheduled time): ``scribe`` with a scribe-only attestor and simple-signing occurrences,
   ``registry`` with a REGISTRY attestor and cosign ``.sig`` manifests in the registry. After a
   warm-up the registry answers come from the registry cache. The two run in interleaved
   one-second slices (scribe, registry, registry, scribe, …) so that both see the same machine
   load and the same heap (the memory store keeps every decision; running one after the other
   gave the second a larger heap and longer GC pauses). Reported: p50/p99 of each, the ratio
   registry/scribe (target: ≤ 1.10 at 500/s), and the CPU each review costs, closed loop.
2. **Cold**: each review with empty judge and registry caches (first sight: every manifest,
   tag and blob fetched), 3 images; reported p50/p99 (target: p99 ≤ 50 ms). Floor, measured
   in the same run and interleaved with the reviews: the fewest registry requests a cold
   review needs (per image, in one round ``.sig``, ``.att`` and the referrers fallback tag —
   docker-registry has no referrers API, which chainproof learns on the first review; the
   image's own manifest is not needed when no rule asks for every platform of an index —,
   then the signature layer), sent raw with one httpx client, the 3 images concurrently,
   nothing parsed or verified. Reported: the ratio of the two.
3. **The registry alone**: the same two rounds sent by curl (a C client: one process per
   round, 9 transfers in parallel, then 3), each round's time its slowest transfer as curl
   measured it, and one request at a time: what docker-registry on this machine answers in,
   without Python.

    .venv/bin/python bench/bench_registry.py [--rate 500] [--duration 10] [--cold 200]
        [--profile cold.html]   # pyinstrument profile of the cold reviews (pip install it)
        [--port 18710]          # the registry's port

Figures on this shared 2-core machine are noisy; the ratio is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import httpx

from chainproof.api.render import judge_document_json
from chainproof.config import AdmissionSettings
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.sources.registry.cache import RegistryCache
from chainproof.sources.registry.client import RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import sign_image
from oci_registry import ensure_tools, start_registry
from unit.services.judge_fixtures import System

REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pod(images: list[str]) -> Workload:
    return Workload(
        kind="Pod",
        name="",
        namespace="default",
        service_account="default",
        images=tuple(ContainerImage(f"containers[{i}]", img) for i, img in enumerate(images)),
    )


async def make_system(host: str, source: str, cache_ttl: float) -> tuple[System, object]:
    system = System(cache_ttl=timedelta(seconds=cache_ttl))
    signer = await system.attestor("sec", "qa")
    doc = judge_document_json(await system.resources.get_attestor("projects/sec/attestors/qa"))
    doc["evidenceSource"] = source
    await system.resources.update_attestor("projects/sec/attestors/qa", doc)
    await system.policy("app", {**REQUIRE, "requireAttestationsBy": ["projects/sec/attestors/qa"]})
    return system, signer


def attach(system: System, host: str) -> RegistryReader:
    client = RegistryClient(RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}))
    reader = RegistryReader(client, RegistryCache())
    system.gatherer.registry = RegistryEvidence(reader)
    return reader


def admission(system: System) -> AdmissionService:
    return AdmissionService(
        system.judge, system.decisions, system.grafeas, AdmissionSettings(project="app")
    )


async def open_loop(
    service: AdmissionService, workload: Workload, rate: float, seconds: float
) -> list[float]:
    latencies: list[float] = []
    denied = 0
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    async def one(at: float) -> None:
        nonlocal denied
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        result = await service.review(workload, uid="b")
        latencies.append((time.perf_counter() - at) * 1000)
        if not result.allowed:
            denied += 1

    await asyncio.gather(*(one(start + i / rate) for i in range(total)))
    if denied:
        raise SystemExit(f"{denied} reviews were denied: the benchmark setup is wrong")
    return latencies


MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


async def raw_fetch(http: httpx.AsyncClient, host: str, repository: str, digest: str) -> None:
    """What a cold review asks the registry for one image, raw: the floor."""
    base = f"http://{host}/v2/{repository}"
    tag = digest.replace(":", "-")
    headers = {"Accept": MANIFEST_ACCEPT}

    async def get(path: str) -> httpx.Response:
        return await http.get(base + path, headers=headers)

    first = await asyncio.gather(
        get(f"/manifests/{tag}.sig"),
        get(f"/manifests/{tag}.att"),
        get(f"/manifests/{tag}"),  # the referrers fallback tag (docker-registry has no API)
    )
    layer = first[0].json()["layers"][0]["digest"]
    await get(f"/blobs/{layer}")


def curl_rounds(host: str, rounds: list[list[str]], times: int) -> tuple[list[float], list[float]]:
    """(per cold review: the sum of its rounds' slowest transfers; one request at a time), in
    ms, as curl measures them (time_total: connect, request, whole answer)."""
    curl = shutil.which("curl")
    if curl is None:
        return [], []
    work = Path(tempfile.mkdtemp(prefix="bench-curl-"))
    configs = []
    for i, paths in enumerate(rounds):
        cfg = work / f"round{i}.cfg"
        cfg.write_text(
            "".join(
                f'url = "http://{host}{path}"\noutput = "/dev/null"\n'
                f'header = "Accept: {MANIFEST_ACCEPT}"\n'
                for path in paths
            )
        )
        configs.append(cfg)

    def run(cfg: Path, parallel: bool) -> list[float]:
        args = [curl, "-s", "-K", str(cfg), "-w", "%{time_total}\\n"]
        if parallel:
            args[1:1] = ["--parallel", "--parallel-immediate", "--parallel-max", "64"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return [float(x) * 1000 for x in out.split()]

    reviews = [sum(max(run(cfg, True)) for cfg in configs) for _ in range(times)]
    sequential: list[float] = []
    for _ in range(max(1, times // 10)):
        sequential.extend(run(configs[0], False))
    shutil.rmtree(work, ignore_errors=True)
    return reviews, sequential


def cold_rounds(digests: list[str], layers: list[str]) -> list[list[str]]:
    """The paths of a cold review's two rounds for the benchmark's 3 images."""
    first, second = [], []
    for i, (digest, layer) in enumerate(zip(digests, layers, strict=True)):
        base = f"/v2/bench/app{i}"
        tag = digest.replace(":", "-")
        first += [
            f"{base}/manifests/{tag}.sig",
            f"{base}/manifests/{tag}.att",
            f"{base}/manifests/{tag}",
        ]
        second.append(f"{base}/blobs/{layer}")
    return [first, second]


async def main(
    rate: float, duration: float, cold: int, profile: str | None, port: int | None
) -> None:
    problem = ensure_tools()
    if problem:
        raise SystemExit(problem)
    registry = start_registry(port=port)
    try:
        digests = [
            registry.push_umoci_image(f"bench/app{i}", "v1", label=f"bench{i}") for i in range(3)
        ]
        images = [f"{registry.host}/bench/app{i}@{d}" for i, d in enumerate(digests)]

        scribe, s_signer = await make_system(registry.host, "SCRIBE", 5.0)
        for image in images:
            await scribe.sign(s_signer, image)
        reg, r_signer = await make_system(registry.host, "REGISTRY", 5.0)
        reader = attach(reg, registry.host)
        for i, d in enumerate(digests):
            sign_image(registry, f"bench/app{i}", d, r_signer.signer)
        workload = pod(images)
        s_service, r_service = admission(scribe), admission(reg)
        for service in (s_service, r_service):  # warm-up
            await open_loop(service, workload, rate, 1.0)
        s_lat, r_lat = [], []
        for second in range(max(1, round(duration))):
            pair = [(s_service, s_lat), (r_service, r_lat)]
            for service, into in pair if second % 2 == 0 else pair[::-1]:
                into.extend(await open_loop(service, workload, rate, 1.0))
        s_cpu, r_cpu = [], []
        for _ in range(6):  # CPU per review, closed loop, interleaved: best of six
            for service, into in ((s_service, s_cpu), (r_service, r_cpu)):
                t0 = time.process_time()
                for _ in range(200):
                    await service.review(workload, uid="b")
                into.append((time.process_time() - t0) / 200 * 1e6)
        await s_service.close()
        await r_service.close()
        await reader.client.aclose()

        cold_lat: list[float] = []
        floor_lat: list[float] = []
        raw = httpx.AsyncClient(timeout=10)
        # Judge cache off, the same attestor (the signatures above), a new registry cache
        # for every review: each one is a first sight (the process's client and connections stay).
        cold_system, _ = await make_system(registry.host, "REGISTRY", 0.0)
        doc = judge_document_json(await reg.resources.get_attestor("projects/sec/attestors/qa"))
        doc["etag"] = (await cold_system.resources.get_attestor("projects/sec/attestors/qa")).etag
        await cold_system.resources.update_attestor("projects/sec/attestors/qa", doc)
        service = admission(cold_system)
        cold_reader = attach(cold_system, registry.host)  # one client, as in a server process
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
        cold_cpu = floor_cpu = 0.0
        for _ in range(cold):
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(
                *(raw_fetch(raw, registry.host, f"bench/app{i}", d) for i, d in enumerate(digests))
            )
            floor_lat.append((time.perf_counter() - t0) * 1000)
            floor_cpu += time.process_time() - c0
            cold_reader.cache = RegistryCache()
            if profiler is not None:
                profiler.start()
            t0, c0 = time.perf_counter(), time.process_time()
            result = await service.review(workload, uid="c")
            cold_lat.append((time.perf_counter() - t0) * 1000)
            cold_cpu += time.process_time() - c0
            if profiler is not None:
                profiler.stop()
            assert result.allowed, result.message
        layers = []
        for i, d in enumerate(digests):
            sig = await raw.get(
                f"http://{registry.host}/v2/bench/app{i}/manifests/{d.replace(':', '-')}.sig",
                headers={"Accept": MANIFEST_ACCEPT},
            )
            layers.append(sig.json()["layers"][0]["digest"])
        await raw.aclose()
        await cold_reader.client.aclose()
        curl_lat, single_lat = curl_rounds(registry.host, cold_rounds(digests, layers), cold)
        if profiler is not None and profile:
            Path(profile).write_text(profiler.output_html())  # noqa: ASYNC240 (after timing)
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        await service.close()
    finally:
        registry.stop()

    s99, r99 = pct(s_lat, 0.99), pct(r_lat, 0.99)
    print(f"cached, {rate:.0f}/s for {duration:.0f}s, 3-image pods (noisy shared machine):")
    print(f"  scribe-only    p50 {statistics.median(s_lat):6.2f} ms  p99 {s99:6.2f} ms  (floor)")
    print(f"  registry       p50 {statistics.median(r_lat):6.2f} ms  p99 {r99:6.2f} ms")
    print(
        f"  ratio registry/scribe p99: {r99 / s99:.2f} (target <= 1.10), "
        f"p50: {statistics.median(r_lat) / statistics.median(s_lat):.2f}"
    )
    print(
        f"  CPU per review, closed loop: scribe {min(s_cpu):.0f} us, registry "
        f"{min(r_cpu):.0f} us (ratio {min(r_cpu) / min(s_cpu):.2f})"
    )
    print(f"cold, {cold} reviews, 3 images, first sight, registry on loopback:")
    cold_p50, cold_p99 = statistics.median(cold_lat), pct(cold_lat, 0.99)
    floor_p50, floor_p99 = statistics.median(floor_lat), pct(floor_lat, 0.99)
    print(f"  chainproof     p50 {cold_p50:6.2f} ms  p99 {cold_p99:6.2f} ms  (target p99 <= 50 ms)")
    print(f"  raw httpx      p50 {floor_p50:6.2f} ms  p99 {floor_p99:6.2f} ms  (floor)")
    print(
        f"  ratio chainproof/floor: p50 {cold_p50 / floor_p50:.2f}, p99 {cold_p99 / floor_p99:.2f}"
    )
    print(
        f"  CPU per cold review (this process): chainproof {cold_cpu / cold * 1000:.1f} ms, "
        f"raw httpx {floor_cpu / cold * 1000:.1f} ms"
    )
    if curl_lat:
        c50, c99 = statistics.median(curl_lat), pct(curl_lat, 0.99)
        print(f"  curl (C)       p50 {c50:6.2f} ms  p99 {c99:6.2f} ms  (the registry alone)")
        print(
            f"  ratio chainproof/curl: p50 {cold_p50 / c50:.2f}, p99 {cold_p99 / c99:.2f}; "
            f"one request at a time: p50 {statistics.median(single_lat):.2f} ms, "
            f"p99 {pct(single_lat, 0.99):.2f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--cold", type=int, default=200)
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the cold phase")
    parser.add_argument("--port", type=int, default=18710, help="the registry's port")
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.duration, args.cold, args.profile, args.port))
