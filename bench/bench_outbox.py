"""Benchmark: what the transactional outbox costs writers, and how fast the notifier delivers.

Two figures, each beside a floor measured in the same run (the machine is shared: compare
the ratios):

1. **writes**: ``batchCreate`` of 1,000 occurrences at a time through the Grafeas service,
   with the outbox (one event per occurrence, same transaction) against the same calls with
   the outbox append switched off (the floor), on SQLite and on PostgreSQL (127.0.0.1:5432,
   a fresh database);
2. **delivery**: events already in the outbox routed and delivered by the notifier to a
   webhook receiver on loopback (HMAC-signed, 16 at a time), in events per second, against
   the same sink posting the same number of events directly with the same concurrency (the
   floor: signing and HTTP without the store).

    .venv/bin/python bench/bench_outbox.py
    .venv/bin/python bench/bench_outbox.py --batches 3 --events 500 --skip-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from aiohttp import web  # noqa: E402

from chainproof.domain.events import ChangeEvent, EventType  # noqa: E402
from chainproof.domain.messages import note_from_json, occurrence_from_json  # noqa: E402
from chainproof.domain.pagination import PageTokenCodec  # noqa: E402
from chainproof.domain.webhook_signature import new_secret  # noqa: E402
from chainproof.services import outbox  # noqa: E402
from chainproof.services.judge.notifier import Notifier  # noqa: E402
from chainproof.services.scribe.grafeas import GrafeasService  # noqa: E402
from chainproof.sinks.http_webhook import HttpWebhookSink  # noqa: E402
from chainproof.sinks.port import OutgoingEvent  # noqa: E402
from chainproof.store.factory import create_store  # noqa: E402
from chainproof.store.port import MetadataStore  # noqa: E402
from chainproof.store.runtime_port import SubscriptionRecord, runtime_sessions  # noqa: E402

#: The receiver's port (this benchmark's own range).
RECEIVER_PORT = 18250
BATCH = 1000


def occurrence(i: int) -> object:
    return occurrence_from_json(
        {
            "resourceUri": f"registry.example/app{i % 50}@sha256:" + f"{i:064x}"[-64:],
            "noteName": "projects/bench/notes/cve",
            "vulnerability": {
                "severity": "HIGH",
                "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "zlib"}],
            },
        }
    )


async def write_rates(store: MetadataStore, batches: int) -> dict[bool, float]:
    """Occurrences per second through batchCreate, with and without the outbox: batches of
    the two kinds alternate on one store, so both meet the same table sizes and noise."""
    svc = GrafeasService(store, PageTokenCodec(b"b" * 32))
    await svc.create_note("projects/bench", "cve", note_from_json({"vulnerability": {}}))
    real = outbox.append

    async def skip(session: object, events: object) -> None:
        return None

    batch = [occurrence(i) for i in range(BATCH)]
    spent = {True: 0.0, False: 0.0}
    try:
        await svc.batch_create_occurrences("projects/bench", batch)  # warm up
        for i in range(2 * batches):
            with_outbox = i % 2 == 0
            outbox.append = real if with_outbox else skip  # type: ignore[assignment]
            start = time.perf_counter()
            await svc.batch_create_occurrences("projects/bench", batch)
            spent[with_outbox] += time.perf_counter() - start
    finally:
        outbox.append = real  # type: ignore[assignment]
    return {k: batches * BATCH / v for k, v in spent.items()}


async def fresh(url: str) -> MetadataStore:
    store = create_store(url)
    await store.open()
    return store


async def writes(label: str, url: str, batches: int) -> None:
    store = await fresh(url)
    try:
        rates = await write_rates(store, batches)
    finally:
        await store.close()
    ratio = rates[True] / rates[False]
    print(
        f"writes  {label:10s} with outbox {rates[True]:8.0f} occ/s   floor (no outbox) "
        f"{rates[False]:8.0f} occ/s   ratio {ratio:.2f}"
    )


async def receiver() -> tuple[web.AppRunner, list[int]]:
    got: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        got.append(1)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", RECEIVER_PORT).start()
    return runner, got


async def delivery(url: str, events: int) -> None:
    secret = new_secret()
    hook = f"http://127.0.0.1:{RECEIVER_PORT}/hook"
    runner, got = await receiver()
    store = await fresh(url)
    try:
        now = datetime.now(UTC)
        sessions = runtime_sessions(store)
        async with sessions() as repos:
            await repos.subscriptions.put(
                SubscriptionRecord(
                    "bench", "hook", (), (), {"http": {"url": hook, "secret": secret}}, now
                )
            )
            await repos.outbox.append(
                [
                    ChangeEvent(
                        str(uuid.uuid4()),
                        "bench",
                        EventType.OCCURRENCE_CREATED,
                        f"projects/bench/occurrences/{i}",
                        now,
                        {"name": f"projects/bench/occurrences/{i}", "kind": "VULNERABILITY"},
                    )
                    for i in range(events)
                ]
            )
        sink = HttpWebhookSink(hook, secret)
        notifier = Notifier(sessions, lambda _s: sink, lambda: datetime.now(UTC), source="//bench")
        start = time.perf_counter()
        while len(got) < events:
            await notifier.route()
            await notifier.deliver_due()
        notified = events / (time.perf_counter() - start)
        got.clear()

        body = b'{"specversion": "1.0"}'
        gate = asyncio.Semaphore(16)

        async def post(i: int) -> None:
            async with gate:
                await sink.deliver(OutgoingEvent(str(i), f"s{i}", "t", body))

        start = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(events)))
        floor = events / (time.perf_counter() - start)
        await sink.close()
        label = url.split(":", 1)[0]
        print(
            f"deliver {label:10s} notifier    {notified:8.0f} ev/s    floor (sink alone)  "
            f"{floor:8.0f} ev/s    ratio {notified / floor:.2f}"
        )
    finally:
        await store.close()
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    await writes("sqlite", f"sqlite:///{tmp}/w.db", args.batches)
    await delivery(f"sqlite:///{tmp}/d.db", args.events)
    if not args.skip_postgres:
        import pg

        server = pg.find_or_start_server()
        names: list[str] = []

        def pg_url() -> str:
            names.append(pg.create_database(server, prefix="chainproof_bench"))
            return server.url(names[-1])

        try:
            await writes("postgresql", pg_url(), args.batches)
            await delivery(pg_url(), args.events)
        finally:
            for name in names:
                pg.drop_database(server, name)
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
