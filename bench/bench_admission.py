"""Benchmark: admission reviews on loopback, open loop at a fixed rate, then closed loop.

Starts ``chainproof serve`` in its own process (``--workers N``: N processes sharing the
ports; gRPC on unless ``--no-grpc``; SQLite in a temporary directory, or with ``--postgres`` a
throwaway database on 127.0.0.1:5432; optionally TLS with a certificate from ``chainproof
webhook certs``' code), and sets up over REST what a production judge would see:

* two attestors (PKIX ECDSA P-256 keys) and a policy requiring both, plus a vulnerability
  check (nothing fixable above HIGH, nothing unfixable above CRITICAL, a scan required);
* three images, each with both simple-signing attestations, a DISCOVERY scan and three
  VULNERABILITY findings.

Then it sends AdmissionReviews for 3-container pods (the three images; created by a
ReplicaSet, so generateName and no name, as the API server sends them):

1. warm-up (caches filled, connections open);
2. open loop: requests *scheduled* at a fixed rate for a fixed time, each on its own task,
   latency measured from its scheduled time (so a stalled server cannot hide queueing:
   no coordinated omission); error = any non-200 answer or a denial;
3. closed loop: N workers sending back to back, for the maximum throughput.

    .venv/bin/python bench/bench_admission.py                  # 500/s for 20 s, plain HTTP
    .venv/bin/python bench/bench_admission.py --tls --rate 500 --duration 20
    .venv/bin/python bench/bench_admission.py --profile        # cProfile the server
    .venv/bin/python bench/bench_admission.py --floor          # and the do-nothing floor
    .venv/bin/python bench/bench_admission.py --floor --workers 2 --rate 2000 --postgres

With ``--floor``, the same load then goes to ``bench/floor_app.py`` (a do-nothing ASGI app that
parses the review and answers allowed, under the same uvicorn settings) in the same run, and
chainproof's p50/p99 print as ratios to the floor's; ``--workers`` applies to both.
    .venv/bin/python bench/bench_admission.py --compare-auth   # without, then with auth

With ``--auth`` the server runs as on a public listener (``auth.anonymous: none``): an OIDC
issuer (a JWKS file), a bootstrap administrator who sets the bench up, and the webhook's
caller a JWT-authenticated principal granted ``roles/chainproof.admissionCaller`` on the
project — so every review pays for authentication (cached until the token expires) and an
IAM decision. ``--compare-auth`` measures both in one run and prints the p99 ratio (issue 10:
within 10 %).

Target (issue 6): p99 ≤ 10 ms at 500 reviews/s with a warm cache, no errors, on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from chainproof.attest.simple_signing import build_simple_signing
from chainproof.crypto.certificates import issue_certificates
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference

PROJECT = "bench"
IMAGES = tuple(
    f"gcr.io/acme/{name}@sha256:{char * 64}"
    for name, char in (("payment", "1"), ("proxy", "2"), ("logger", "3"))
)
FINDINGS = {"CVE-2024-0001": "LOW", "CVE-2024-0002": "MEDIUM", "CVE-2024-0003": "HIGH"}


#: Ports are taken from here up (``--port-base``); 0: any free port the kernel gives.
PORT_BASE = [0]


def free_port() -> int:
    """A port free on loopback now: the next free one from ``--port-base``, or any."""
    start = PORT_BASE[0]
    for port in range(start, start + 100) if start else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            if start:
                PORT_BASE[0] = port + 1
            return int(s.getsockname()[1])
    raise SystemExit(f"no free port in {start}–{start + 99}")


def wait_ready(proc: subprocess.Popen[bytes], base: str, verify: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(verify=verify) as c:
        while True:
            try:
                if c.get(f"{base}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start")
            time.sleep(0.1)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway database on 127.0.0.1:5432, dropped afterwards."""
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"chainproof_bench_admission_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def floor_server(workdir: Path, tls: bool, workers: int = 1) -> Iterator[str]:
    """The do-nothing app of floor_app.py, on the certificate chainproof was given, in as many
    processes as chainproof's."""
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).with_name("floor_app.py")), "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if tls:
        cmd += ["--cert", str(workdir / "tls.crt"), "--key", str(workdir / "tls.key")]
    proc = subprocess.Popen(cmd)
    SERVING[0] = proc.pid
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify: Any = ssl.create_default_context(cafile=str(workdir / "ca.crt")) if tls else False
    try:
        wait_ready(proc, base, verify, "the floor app")
        yield base
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


ISSUER = "https://issuer.bench.invalid"
ADMIN = "admin@bench.invalid"
CALLER = "kube-apiserver@bench.invalid"


@dataclass
class Credentials:
    """Tokens minted by the bench's own OIDC issuer (its key in a JWKS file)."""

    jwks_file: Path
    admin: str
    caller: str


def issue_tokens(workdir: Path) -> Credentials:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="bench", use="sig")
    path = workdir / "jwks.json"
    path.write_bytes(orjson.dumps({"keys": [jwk]}))
    now = int(time.time())

    def mint(email: str) -> str:
        claims = {"iss": ISSUER, "aud": "chainproof", "sub": email, "email": email,
                  "email_verified": True, "iat": now, "exp": now + 3600}  # fmt: skip
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bench"})

    return Credentials(path, mint(ADMIN), mint(CALLER))


@contextmanager
def server(
    workdir: Path,
    tls: bool,
    profile: Path | None,
    creds: Credentials | None = None,
    *,
    workers: int = 1,
    grpc: bool = True,
    database_url: str | None = None,
) -> Iterator[tuple[str, Any]]:
    port = free_port()
    env = {
        **os.environ,
        "CHAINPROOF_DATABASE_URL": database_url or f"sqlite:///{workdir / 'chainproof.db'}",
        "CHAINPROOF_LOG_LEVEL": "warning",
        "CHAINPROOF_ADMISSION__PROJECT": PROJECT,
    }
    if creds is not None:
        env["CHAINPROOF_AUTH__ANONYMOUS"] = "none"
        env["CHAINPROOF_AUTH__BOOTSTRAP_ADMINS"] = orjson.dumps([f"user:{ADMIN}"]).decode()
        env["CHAINPROOF_AUTH__OIDC_ISSUERS"] = orjson.dumps(
            [{"issuer": ISSUER, "audiences": ["chainproof"], "jwks_file": str(creds.jwks_file)}]
        ).decode()
    verify: Any = False
    if tls:
        issued = issue_certificates(
            "chainproof", "chainproof", extra_sans=("127.0.0.1",), now=datetime.now(UTC)
        )
        (workdir / "ca.crt").write_bytes(issued.ca_cert_pem)
        (workdir / "tls.crt").write_bytes(issued.cert_pem)
        (workdir / "tls.key").write_bytes(issued.key_pem)
        env["CHAINPROOF_TLS__CERT_FILE"] = str(workdir / "tls.crt")
        env["CHAINPROOF_TLS__KEY_FILE"] = str(workdir / "tls.key")
        verify = ssl.create_default_context(cafile=str(workdir / "ca.crt"))
    chainproof = shutil.which("chainproof", path=str(Path(sys.executable).parent)) or "chainproof"
    cmd = [chainproof, "serve", "--port", str(port), "--workers", str(workers)]
    cmd += ["--grpc", "--grpc-port", str(free_port())] if grpc else ["--no-grpc"]
    if profile is not None and profile.suffix in (".txt", ".html"):
        # pyinstrument: sampled wall time, with the time spent awaiting shown where it is.
        renderer = "text" if profile.suffix == ".txt" else "html"
        cmd = [sys.executable, "-m", "pyinstrument", "-r", renderer, "-o", str(profile), *cmd]
    elif profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    proc = subprocess.Popen(cmd, env=env)
    SERVING[0] = proc.pid
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, verify, "chainproof serve")
        yield base, verify
    finally:
        proc.send_signal(2)  # SIGINT: a clean shutdown, so cProfile writes its file
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def ok(r: httpx.Response) -> Any:
    if r.status_code != 200:
        raise SystemExit(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
    return r.json()


def set_up(client: httpx.Client, creds: Credentials | None = None) -> None:
    p = PROJECT
    if creds is not None:
        client.headers["Authorization"] = f"Bearer {creds.admin}"
        binding = {"role": "roles/chainproof.admissionCaller", "members": [f"user:{CALLER}"]}
        ok(client.post(f"/v1/projects/{p}:setIamPolicy", json={"policy": {"bindings": [binding]}}))
    attestors = []
    for name in ("build", "qa"):
        ok(
            client.post(
                f"/v1/projects/{p}/notes", params={"noteId": name}, json={"attestation": {}}
            )
        )
        key = generate_pkix_key()
        signer = PkixSigner.from_pem(key.private_pem)
        ok(
            client.post(
                f"/v1/projects/{p}/attestors",
                params={"attestorId": name},
                json={
                    "userOwnedGrafeasNote": {
                        "noteReference": f"projects/{p}/notes/{name}",
                        "publicKeys": [
                            {
                                "id": signer.key_id,
                                "pkixPublicKey": {
                                    "publicKeyPem": key.public_pem.decode(),
                                    "signatureAlgorithm": "ECDSA_P256_SHA256",
                                },
                            }
                        ],
                    }
                },
            )
        )
        attestors.append((name, signer))
    ok(
        client.post(
            f"/v1/projects/{p}/notes",
            params={"noteId": "scanner"},
            json={"discovery": {"analysisKind": "VULNERABILITY"}},
        )
    )
    for cve, severity in FINDINGS.items():
        ok(
            client.post(
                f"/v1/projects/{p}/notes",
                params={"noteId": cve},
                json={"vulnerability": {"severity": severity}},
            )
        )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for image in IMAGES:
        ref = parse_image_reference(image)
        payload = build_simple_signing(ref)
        occurrences: list[dict[str, Any]] = [
            {
                "resourceUri": ref.canonical,
                "noteName": f"projects/{p}/notes/{name}",
                "attestation": {
                    "serializedPayload": base64.b64encode(payload).decode(),
                    "signatures": [
                        {
                            "signature": base64.b64encode(signer.sign(payload)).decode(),
                            "publicKeyId": signer.key_id,
                        }
                    ],
                },
            }
            for name, signer in attestors
        ]
        occurrences.append(
            {
                "resourceUri": ref.canonical,
                "noteName": f"projects/{p}/notes/scanner",
                "discovery": {"analysisStatus": "FINISHED_SUCCESS", "lastScanTime": now},
            }
        )
        occurrences += [
            {
                "resourceUri": ref.canonical,
                "noteName": f"projects/{p}/notes/{cve}",
                "vulnerability": {
                    "severity": severity,
                    "effectiveSeverity": severity,
                    "fixAvailable": True,
                    "packageIssue": [
                        {
                            "affectedCpeUri": "cpe:/o:debian:debian_linux:12",
                            "affectedPackage": "openssl",
                            "affectedVersion": {"kind": "NORMAL", "name": "3.0.11"},
                            "fixedVersion": {"kind": "NORMAL", "name": "3.0.13"},
                        }
                    ],
                },
            }
            for cve, severity in FINDINGS.items()
        ]
        ok(
            client.post(
                f"/v1/projects/{p}/occurrences:batchCreate", json={"occurrences": occurrences}
            )
        )
    ok(
        client.put(
            f"/v1/projects/{p}/policy",
            json={
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationsBy": [f"projects/{p}/attestors/{n}" for n, _ in attestors],
                    "chainproofChecks": {
                        "vulnerabilities": {
                            "maximumFixableSeverity": "HIGH",
                            "maximumUnfixableSeverity": "CRITICAL",
                            "requireScan": True,
                        }
                    },
                }
            },
        )
    )


def review_body() -> bytes:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "payment-7d4b9c-",
            "namespace": "shop",
            "labels": {"app": "payment"},
        },
        "spec": {
            "serviceAccountName": "payment",
            "containers": [
                {"name": f"c{i}", "image": image, "resources": {}} for i, image in enumerate(IMAGES)
            ],
        },
    }
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": pod,
                "oldObject": None,
                "dryRun": False,
            },
        }
    )


@dataclass
class Result:
    latencies: list[float]
    errors: int
    elapsed: float
    first_error: str = ""
    #: CPU seconds the server's processes (every worker, the supervisor) spent meanwhile.
    server_cpu: float = 0.0


#: The process (and its children) serving the current run, for its CPU time.
SERVING = [0]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants, from /proc (0 without)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: the load generator shares the
    machine's two cores with the server, and httpx costs more CPU per request than the
    server's own work, which would measure the client instead of chainproof."""

    def __init__(self, base: str, verify: Any, token: str | None = None) -> None:
        self.auth = f"Authorization: Bearer {token}\r\n" if token else ""
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 443
        self.ssl = verify if url.scheme == "https" else None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)

    async def post(self, body: bytes) -> str:
        """'' when admitted; otherwise what went wrong."""
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        head = (
            "POST /webhook/admission?timeout=10s HTTP/1.1\r\nHost: chainproof\r\n"
            f"{self.auth}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + body)
            status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = next(
                int(line.split(":", 1)[1])
                for line in lines[1:]
                if line.lower().startswith("content-length:")
            )
            answer = await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError) as exc:
            self.writer = self.reader = None
            return f"{type(exc).__name__}: {exc}"
        if status != 200:
            return f"HTTP {status}: {answer[:200]!r}"
        if b'"allowed":true' in answer:
            return ""
        response = orjson.loads(answer)["response"]
        return "denied: " + str(response.get("status", {}).get("message", ""))[:300]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


#: The webhook caller's bearer token (None: anonymous), set by main() for each server run.
CALLER_TOKEN: list[str | None] = [None]


async def connections(base: str, verify: Any, n: int) -> list[Connection]:
    conns = [Connection(base, verify, CALLER_TOKEN[0]) for _ in range(n)]
    await asyncio.gather(*(c.open() for c in conns))
    return conns


async def open_loop(base: str, verify: Any, rate: float, duration: float, pool: int = 64) -> Result:
    """Requests scheduled at ``rate``; latency counts from the scheduled time."""
    total = int(rate * duration)
    bodies = [review_body() for _ in range(total)]
    conns = await connections(base, verify, pool)
    jobs: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: list[str] = []

    async def worker(conn: Connection) -> None:
        while (job := await jobs.get()) is not None:
            scheduled, body = job
            problem = await conn.post(body)
            latencies.append(time.perf_counter() - scheduled)
            if problem:
                errors.append(problem)

    workers = [asyncio.create_task(worker(c)) for c in conns]
    start = time.perf_counter() + 0.05
    for i, body in enumerate(bodies):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        jobs.put_nowait((scheduled, body))
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    for c in conns:
        await c.close()
    return Result(latencies, len(errors), elapsed, errors[0] if errors else "")


async def closed_loop(base: str, verify: Any, workers: int, duration: float) -> Result:
    bodies = [review_body() for _ in range(2000)]
    conns = await connections(base, verify, workers)
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.perf_counter() + duration

    async def worker(conn: Connection, offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            problem = await conn.post(bodies[i % len(bodies)])
            latencies.append(time.perf_counter() - t0)
            i += workers
            if problem:
                errors.append(problem)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c, n) for n, c in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for c in conns:
        await c.close()
    return Result(latencies, len(errors), elapsed, errors[0] if errors else "")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(title: str, result: Result) -> None:
    ms = [v * 1000 for v in result.latencies]
    print(f"{title}")
    print(f"  reviews      {len(ms)} in {result.elapsed:.1f} s = {len(ms) / result.elapsed:.0f}/s")
    print(
        f"  latency ms   p50 {quantile(ms, 0.50):.2f}  p90 {quantile(ms, 0.90):.2f}  "
        f"p99 {quantile(ms, 0.99):.2f}  max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}"
    )
    print(
        f"  errors       {result.errors}"
        + (f" (first: {result.first_error})" if result.errors else "")
    )
    if result.latencies:
        print(
            f"  server CPU   {result.server_cpu * 1000 / len(result.latencies):.3f} ms per review"
        )


def run_load(base: str, verify: Any, args: argparse.Namespace) -> tuple[Result, Result]:
    """Warm-up, then the open loop and the closed loop; their results, each printed."""

    async def warm() -> None:
        [conn] = await connections(base, verify, 1)
        for _ in range(args.warmup):
            problem = await conn.post(review_body())
            if problem:
                raise SystemExit(f"warm-up review failed: {problem}")
        await conn.close()

    asyncio.run(warm())
    before = tree_cpu_seconds(SERVING[0])
    opened = asyncio.run(open_loop(base, verify, args.rate, args.duration))
    opened.server_cpu = tree_cpu_seconds(SERVING[0]) - before
    report(f"open loop: {args.rate:g}/s for {args.duration:g} s", opened)
    before = tree_cpu_seconds(SERVING[0])
    closed = asyncio.run(closed_loop(base, verify, args.concurrency, args.closed_duration))
    closed.server_cpu = tree_cpu_seconds(SERVING[0]) - before
    report(f"closed loop: {args.concurrency} connections for {args.closed_duration:g} s", closed)
    return opened, closed


def ratios(ours: tuple[Result, Result], floor: tuple[Result, Result]) -> None:
    print("chainproof ÷ floor (same load, same run; the machine is shared: figures are noisy)")
    for name, a, b in (("open loop", ours[0], floor[0]), ("closed loop", ours[1], floor[1])):
        p50 = quantile(a.latencies, 0.5) / quantile(b.latencies, 0.5)
        p99 = quantile(a.latencies, 0.99) / quantile(b.latencies, 0.99)
        rate = (len(a.latencies) / a.elapsed) / (len(b.latencies) / b.elapsed)
        cpu = (a.server_cpu / max(1, len(a.latencies))) / max(
            1e-9, b.server_cpu / max(1, len(b.latencies))
        )
        print(
            f"  {name:<12} p50 {p50:.2f}×  p99 {p99:.2f}×  throughput {rate:.2f}×  "
            f"server CPU per review {cpu:.2f}×"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500, help="open-loop reviews per second")
    parser.add_argument("--duration", type=float, default=20, help="open-loop seconds")
    parser.add_argument("--warmup", type=int, default=500, help="reviews before measuring")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop connections")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (chainproof and the floor)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="serve REST only")
    parser.add_argument(
        "--postgres", action="store_true", help="a throwaway PostgreSQL database, not SQLite"
    )
    parser.add_argument(
        "--port-base", type=int, default=0, help="take ports from here up (default: any free)"
    )
    parser.add_argument("--closed-duration", type=float, default=10, help="closed-loop seconds")
    parser.add_argument("--tls", action="store_true", help="serve and call over HTTPS")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="profile the server (one worker) into this file: pyinstrument for .txt/.html, "
        "else cProfile",
    )
    parser.add_argument(
        "--floor", action="store_true", help="also load the do-nothing app; print ratios to it"
    )
    parser.add_argument("--auth", action="store_true", help="authenticate and authorize calls")
    parser.add_argument(
        "--compare-auth", action="store_true", help="run without, then with --auth; p99 ratio"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per side with --compare-auth")
    args = parser.parse_args()
    PORT_BASE[0] = args.port_base
    if args.compare_auth:
        # Interleaved (without, with, without, with, …) so that a burst of load from the
        # machine's other users, or the first run's cold disk, does not land on one side only;
        # each side's best p99 is compared (the least disturbed run of each).
        floors: list[float] = []
        with_auth: list[float] = []
        for _ in range(args.repeat):
            floors.append(run(args, auth=False))
            with_auth.append(run(args, auth=True))
        print(
            f"p99 at {args.rate:g}/s, each run: without auth "
            f"{', '.join(f'{v:.2f}' for v in floors)} ms; "
            f"with auth {', '.join(f'{v:.2f}' for v in with_auth)} ms"
        )
        print(
            f"best p99: without auth {min(floors):.2f} ms, with auth {min(with_auth):.2f} ms, "
            f"ratio {min(with_auth) / min(floors):.2f} (target ≤ 1.10; the machine is shared: "
            "noisy)"
        )
        return
    run(args, auth=args.auth)


def run(args: argparse.Namespace, *, auth: bool) -> float:
    """One server, set up, warmed, measured; returns the open loop's p99 in ms."""
    with (
        tempfile.TemporaryDirectory(prefix="chainproof-bench-") as tmp,
        ExitStack() as stack,
    ):
        creds = issue_tokens(Path(tmp)) if auth else None
        CALLER_TOKEN[0] = creds.caller if creds else None
        database = stack.enter_context(postgres_database()) if args.postgres else None
        with server(
            Path(tmp),
            args.tls,
            args.profile,
            creds,
            workers=args.workers,
            grpc=not args.no_grpc,
            database_url=database,
        ) as (base, verify):
            with httpx.Client(base_url=base, verify=verify, timeout=30) as c:
                set_up(c, creds)
            print(
                f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
                f"chainproof admission bench: {base} "
                f"({'PostgreSQL' if database else 'SQLite'}, {args.workers} worker(s), "
                f"gRPC {'off' if args.no_grpc else 'on'}, {'TLS' if args.tls else 'plain'}, "
                f"{'auth: OIDC caller + IAM' if auth else 'auth: loopback anonymous'}), "
                f"3-container pods, 2 attestors + vulnerability check per image, "
                f"{os.cpu_count()} CPUs"
            )

            ours = run_load(base, verify, args)
            if args.floor:
                with floor_server(Path(tmp), args.tls, args.workers) as floor_base:
                    print(
                        f"floor: do-nothing ASGI app at {floor_base}, same uvicorn settings, "
                        f"{args.workers} worker(s)"
                    )
                    floor = run_load(floor_base, verify, args)
                ratios(ours, floor)
            print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            return quantile([v * 1000 for v in ours[0].latencies], 0.99)


if __name__ == "__main__":
    main()
