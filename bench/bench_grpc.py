"""Benchmark: the same work over gRPC and REST, from one server, printed side by side.

Starts ``chainproof serve`` in its own process (so the client does not share its CPU and GIL)
for each store (memory, and a fresh SQLite file), then measures on each transport:

* batch-create throughput: batches of 1,000 occurrences, sent one after another;
* GetOccurrence latency (p50/p99) on random occurrences;
* ListOccurrences latency (p50/p99): a resourceUrl filter, 100 a page.

gRPC is driven with raw protobuf messages on a plain channel and REST with httpx and
pre-encoded JSON, so that neither side pays for the proto-plus wrappers of the official client.

    .venv/bin/python bench/bench_grpc.py
    .venv/bin/python bench/bench_grpc.py --batches 20 --calls 2000 --stores sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grafeas.grafeas_v1.types import grafeas as g

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000
#: Each transport writes its own project, so both measure a store of the same size.
PROJECTS = {"gRPC": "projects/bench-grpc", "REST": "projects/bench-rest"}

Occurrence: Any = g.Occurrence.pb()
BatchRequest: Any = g.BatchCreateOccurrencesRequest.pb()
BatchResponse: Any = g.BatchCreateOccurrencesResponse.pb()
GetRequest: Any = g.GetOccurrenceRequest.pb()
ListRequest: Any = g.ListOccurrencesRequest.pb()
ListResponse: Any = g.ListOccurrencesResponse.pb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Endpoints:
    rest: str
    grpc: str


@contextmanager
def serve(database_url: str) -> Iterator[Endpoints]:
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "CHAINPROOF_DATABASE_URL": database_url,
        "CHAINPROOF_PORT": str(port),
        "CHAINPROOF_GRPC_PORT": str(grpc_port),
        "CHAINPROOF_GRPC_ENABLED": "true",
        "CHAINPROOF_LOG_LEVEL": "warning",
        # Large enough for a batch of 1,000 over either transport.
        "CHAINPROOF_MAX_BODY_BYTES": str(16 * 1024 * 1024),
    }
    proc = subprocess.Popen([str(ROOT / ".venv/bin/chainproof"), "serve"], env=env, cwd=ROOT)
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
                raise RuntimeError("chainproof serve did not start")
            time.sleep(0.2)
        yield Endpoints(base, f"127.0.0.1:{grpc_port}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def image(i: int) -> str:
    return f"registry.example.com/team/app{i % 200}@sha256:{i % 200:064x}"


def occurrence_json(note: str, i: int) -> dict[str, Any]:
    return {
        "noteName": note,
        "resourceUri": "https://" + image(i),
        "package": {"name": f"lib{i}", "location": [{"cpeUri": "cpe:/o:debian:debian_linux:12"}]},
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


def timed(n: int, call: Callable[[int], object]) -> list[float]:
    out: list[float] = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
    return out


@dataclass
class Figures:
    occurrences_per_s: float
    get_ms: tuple[float, float]
    list_ms: tuple[float, float]


def bench_grpc(target: str, project: str, batches: int, calls: int) -> Figures:
    with grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as ch:

        def rpc(name: str, response: Any) -> Any:
            return ch.unary_unary(
                f"/grafeas.v1.Grafeas/{name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )

        batch_create = rpc("BatchCreateOccurrences", BatchResponse)
        get = rpc("GetOccurrence", Occurrence)
        listing = rpc("ListOccurrences", ListResponse)

        requests = []
        for b in range(batches):
            req = BatchRequest(parent=project)
            for i in range(b * BATCH, (b + 1) * BATCH):
                occ = req.occurrences.add()
                occ.note_name = f"{project}/notes/pkg"
                occ.resource_uri = "https://" + image(i)
                occ.package.name = f"lib{i}"
                occ.package.location.add().cpe_uri = "cpe:/o:debian:debian_linux:12"
            requests.append(req)
        names: list[str] = []
        start = time.perf_counter()
        for req in requests:
            names += [o.name for o in batch_create(req).occurrences]
        rate = batches * BATCH / (time.perf_counter() - start)

        picks = [random.choice(names) for _ in range(calls)]
        gets = timed(calls, lambda i: get(GetRequest(name=picks[i])))
        filters = [f'resourceUrl="{image(random.randrange(200))}"' for _ in range(calls)]
        lists = timed(
            calls, lambda i: listing(ListRequest(parent=project, filter=filters[i], page_size=100))
        )
    return Figures(rate, percentiles(gets), percentiles(lists))


def bench_rest(base: str, project: str, batches: int, calls: int) -> Figures:
    with httpx.Client(base_url=base, timeout=120) as http:
        bodies = [
            json.dumps(
                {
                    "occurrences": [
                        occurrence_json(f"{project}/notes/pkg", i)
                        for i in range(b * BATCH, (b + 1) * BATCH)
                    ]
                }
            ).encode()
            for b in range(batches)
        ]
        headers = {"content-type": "application/json"}
        names: list[str] = []
        start = time.perf_counter()
        for body in bodies:
            reply = http.post(
                f"/v1/{project}/occurrences:batchCreate", content=body, headers=headers
            )
            reply.raise_for_status()
            names += [o["name"] for o in reply.json()["occurrences"]]
        rate = batches * BATCH / (time.perf_counter() - start)

        picks = [random.choice(names) for _ in range(calls)]
        gets = timed(calls, lambda i: http.get(f"/v1/{picks[i]}").raise_for_status())
        filters = [f'resourceUrl="{image(random.randrange(200))}"' for _ in range(calls)]
        lists = timed(
            calls,
            lambda i: http.get(
                f"/v1/{project}/occurrences", params={"filter": filters[i], "pageSize": 100}
            ).raise_for_status(),
        )
    return Figures(rate, percentiles(gets), percentiles(lists))


def prepare(base: str) -> None:
    with httpx.Client(base_url=base) as http:
        for project in PROJECTS.values():
            reply = http.post(
                f"/v1/{project}/notes", params={"noteId": "pkg"}, json={"package": {"name": "lib"}}
            )
            reply.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10, help="batches of 1,000 per transport")
    parser.add_argument("--calls", type=int, default=1000, help="get and list calls per transport")
    parser.add_argument("--stores", default="memory,sqlite", help="comma-separated")
    args = parser.parse_args()
    random.seed(7)
    rows: list[tuple[str, str, Figures]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.stores.split(","):
            url = "memory://" if store == "memory" else f"sqlite:///{tmp}/bench.db"
            with serve(url) as ep:
                prepare(ep.rest)
                # gRPC first; REST then writes as many rows again, so its reads see a store
                # twice the size gRPC's reads saw (a bias against REST, if any, on SQLite).
                grpc_fig = bench_grpc(ep.grpc, PROJECTS["gRPC"], args.batches, args.calls)
                rest_fig = bench_rest(ep.rest, PROJECTS["REST"], args.batches, args.calls)
                rows += [(store, "gRPC", grpc_fig), (store, "REST", rest_fig)]
    print(
        f"\n{args.batches} batches of {BATCH} occurrences, {args.calls} gets and lists "
        "per transport; latencies in ms (p50 / p99)\n"
    )
    print(f"{'store':<8}{'transport':<11}{'batch create occ/s':>20}{'get':>18}{'list(100)':>18}")
    for store, transport, f in rows:
        print(
            f"{store:<8}{transport:<11}{f.occurrences_per_s:>20,.0f}"
            f"{f.get_ms[0]:>9.2f} /{f.get_ms[1]:>6.2f}"
            f"{f.list_ms[0]:>10.2f} /{f.list_ms[1]:>6.2f}"
        )


if __name__ == "__main__":
    main()
