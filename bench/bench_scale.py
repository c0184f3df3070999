"""Benchmark: a store at Shopify's scale (seed 004) on PostgreSQL — list p99, cold admission
p99 and bytes on disk per occurrence, each beside a floor measured in the same run.

Seed 004: Shopify keeps 330,000 images in its registry; at 50 occurrences each that is
16.5 M occurrences. ``--images`` runs a smaller store with the same shape.

    .venv/bin/python bench/bench_scale.py                       # 330,000 images, 16.5 M rows
    .venv/bin/python bench/bench_scale.py --images 20000        # 1 M occurrences
    .venv/bin/python bench/bench_scale.py --images 20000,100000,330000  # one store grown in
                                                  # stages: 1 M, 5 M, 16.5 M, measured after each
    .venv/bin/python bench/bench_scale.py --images 1000 --keep  # keep the database afterwards
    .venv/bin/python bench/bench_scale.py --images 1000 --reuse DB  # measure it again, drop it

Build. A fresh database (created here, dropped at the end unless ``--keep``) is migrated by
chainproof itself. One template image gets its 50 occurrences through ``GrafeasService``
(1 signed attestation, 1 discovery, 48 vulnerabilities, all in ``projects/prod``); every other
image gets copies of those stored rows — new UUIDv7 ids, its own resource — written with
PostgreSQL's ``COPY … FROM STDIN`` into the store's own table and indexes. A copied
attestation signs the template's digest, so it would not verify for the image it is filed
about: the images admission is measured on (``--samples`` of them, picked at random before
the build) get no copy but a real attestation of their own digest, created through the
service after the build, i.e. into the full table. Staged (``--images a,b,c``), the store
grows by COPY to each size in turn and is measured after each; the samples of every stage
are drawn over all of its images. An image's 50 rows are written together, so they share
heap pages: a store filled over months spreads them wider, and its lists read more pages.
A failed run drops its database even with ``--keep``.

Figures (all in this process, no HTTP):

* **list**: ``resourceUrl="…"`` of a random image, pageSize 50 (all of the image's
  occurrences), on both paths: REST's (``GrafeasService.list_occurrences_json`` and the
  response body made of the stored JSON) and gRPC's (``list_occurrences``: each document
  decoded into protobuf). Floor: the bare indexed ``SELECT data FROM occurrences WHERE
  project = … AND resource = …`` on psycopg, interleaved with ours, on images drawn from its
  own random stream.
* **cold admission**: ``Judge.evaluate`` of one random sampled image (REQUIRE_ATTESTATION by
  one attestor + a vulnerability check), judge cache off and verification cache cleared
  before each review: every review reads the store and verifies. Floor: the crypto alone,
  one ECDSA P-256 verification of a same-sized payload with ``cryptography``.
  The admission p50 is also printed as a multiple of the bare SELECT's p50 (one round trip
  to PostgreSQL in this run), because on a shared machine round trips, not crypto, dominate.
* **size**: ``pg_total_relation_size('occurrences')`` (heap, TOAST, every index) divided by
  the rows. Floor: the same for a table holding only the occurrence JSON (``jsonb``) —
  what the documents alone take.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chainproof.api.rest.grafeas import list_response
from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.domain.images import canonical_resource, parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest
from chainproof.services.scribe.grafeas import new_occurrence_ids
from chainproof.store.sql.store import SqlStore
from unit.services.judge_fixtures import Signer, System

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PER_IMAGE = 50
TEMPLATE = "registry.example.com/template/app@sha256:" + "f" * 64
COLUMNS = (
    "project, occurrence_id, kind, note_project, note_id, resource, data, create_time, update_time"
)


def image(i: int) -> str:
    return f"registry.example.com/team{i % 50}/app{i}@sha256:{i:064x}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] * 1000


async def sign(system: System, signer: Signer, img: str) -> None:
    signed = attestation_occurrence(
        parse_image_reference(img),
        PayloadFormat.SIMPLE_SIGNING,
        signer.signer,
        note_name=signer.note,
        resource_uri=f"https://{img}",
    )
    await system.grafeas.create_occurrence("projects/prod", occurrence_from_json(signed))


async def template(system: System) -> Signer:
    """The policy, attestor and notes, and the template image's 50 occurrences."""
    qa = await system.attestor("sec", "qa")
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [qa.attestor],
            "chainproofChecks": {
                "vulnerabilities": {
                    "maximumFixableSeverity": "CRITICAL",
                    "maximumUnfixableSeverity": "CRITICAL",
                }
            },
        },
    )
    g = system.grafeas
    await g.create_note(
        "projects/prod", "scanner", note_from_json({"discovery": {"analysisKind": "VULNERABILITY"}})
    )
    await g.create_note("projects/prod", "cve", note_from_json({"vulnerability": {}}))
    uri = f"https://{TEMPLATE}"
    await sign(system, qa, TEMPLATE)
    await g.create_occurrence(
        "projects/prod",
        occurrence_from_json(
            {
                "resourceUri": uri,
                "noteName": "projects/prod/notes/scanner",
                "discovery": {"analysisStatus": "FINISHED_SUCCESS"},
            }
        ),
    )
    for n in range(PER_IMAGE - 2):
        await g.create_occurrence(
            "projects/prod",
            occurrence_from_json(
                {
                    "resourceUri": uri,
                    "noteName": "projects/prod/notes/cve",
                    "vulnerability": {
                        "effectiveSeverity": "HIGH",
                        "fixAvailable": True,
                        "packageIssue": [
                            {
                                "affectedCpeUri": "cpe:/o:debian:debian_linux:12",
                                "affectedPackage": f"lib{n}",
                                "affectedVersion": {"kind": "NORMAL", "name": f"1.{n}"},
                            }
                        ],
                    },
                }
            ),
        )
    return qa


def copy_escape(text: str) -> str:
    """``text`` as one field of COPY's text format."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def copy_images(pg: str, start: int, stop: int, sampled: set[int]) -> tuple[int, float]:
    """Copies of the template's rows for images ``start`` … ``stop - 1``; rows written and
    rows/s. The rows go out in COPY's text format, formatted here once per template row (ids,
    image and resource substituted as strings), 100 images per write."""
    written, began = 0, time.perf_counter()
    with psycopg.connect(pg) as conn:
        # The column list is this module's constant, not input.
        template_rows = "SELECT " + ", ".join(f"{c}::text" for c in COLUMNS.split(", "))
        rows = conn.execute(
            template_rows + " FROM occurrences WHERE project = 'prod' AND resource = %s",
            (canonical_resource(TEMPLATE),),
        ).fetchall()
        assert len(rows) == PER_IMAGE, f"template has {len(rows)} rows"
        lines = []
        for row in rows:
            fields = [r"\N" if v is None else copy_escape(v) for v in row]
            # Placeholders the image, its resource and the new id replace below.
            fields[1] = "\x00ID\x00"
            fields[6] = fields[6].replace(row[1], "\x00ID\x00")
            lines.append((row[2], "\t".join(fields) + "\n"))
        assert TEMPLATE in rows[0][5], rows[0][5]
        with conn.cursor().copy(f"COPY occurrences ({COLUMNS}) FROM STDIN") as copy:
            chunk: list[str] = []
            for i in range(start, stop):
                img = image(i)
                ids = iter(new_occurrence_ids(PER_IMAGE))
                for kind, line in lines:
                    if i in sampled and kind == "ATTESTATION":
                        continue  # it gets a real attestation of its own digest later
                    chunk.append(line.replace(TEMPLATE, img).replace("\x00ID\x00", next(ids)))
                    written += 1
                if len(chunk) >= 100 * PER_IMAGE:
                    copy.write("".join(chunk))
                    chunk.clear()
            if chunk:
                copy.write("".join(chunk))
        conn.commit()
        conn.execute("ANALYZE occurrences")
    return written, written / (time.perf_counter() - began)


async def list_figures(
    system: System, pg: str, images: int, samples: int
) -> dict[str, tuple[float, float]]:
    """Our two lists and the bare SELECT, interleaved in time (all see the same load), each on
    images of its own random stream (none finds the pages another just read in cache).

    * ``grpc``: ``GrafeasService.list_occurrences`` (what gRPC ListOccurrences serves:
      each stored document decoded into protobuf);
    * ``rest``: ``list_occurrences_json`` and the REST body made of it (what
      ``GET …/occurrences`` serves: the stored JSON as it is);
    * ``floor``: the bare indexed SELECT of the same rows on psycopg.

    Each value is (p50, p99) in ms."""
    rngs = {name: random.Random(seed) for name, seed in (("grpc", 11), ("floor", 12), ("rest", 14))}
    times: dict[str, list[float]] = {name: [] for name in rngs}
    select = (
        "SELECT data FROM occurrences WHERE project = %s AND resource = %s "
        "ORDER BY occurrence_id LIMIT %s"
    )
    g = system.grafeas
    with psycopg.connect(pg) as conn:
        for n in range(samples + 50):
            warm = n < 50  # warm-up excluded
            uri = f"https://{image(rngs['grpc'].randrange(images))}"
            began = time.perf_counter()
            page = await g.list_occurrences("projects/prod", f'resourceUrl="{uri}"', PER_IMAGE, "")
            took = time.perf_counter() - began
            assert len(page.items) == PER_IMAGE, f"listed {len(page.items)} for {uri}"
            if not warm:
                times["grpc"].append(took)
            uri = f"https://{image(rngs['rest'].randrange(images))}"
            began = time.perf_counter()
            raw = await g.list_occurrences_json(
                "projects/prod", f'resourceUrl="{uri}"', PER_IMAGE, ""
            )
            body = list_response("occurrences", (i.json for i in raw.items), raw.next_page_token)
            took = time.perf_counter() - began
            assert len(raw.items) == PER_IMAGE, f"listed {len(raw.items)} for {uri}"
            assert body.body
            if not warm:
                times["rest"].append(took)
            resource = canonical_resource(image(rngs["floor"].randrange(images)))
            began = time.perf_counter()
            found = conn.execute(select, ("prod", resource, PER_IMAGE + 1), prepare=True).fetchall()
            took = time.perf_counter() - began
            assert len(found) == PER_IMAGE, f"the floor found {len(found)} rows for {resource}"
            if not warm:
                times["floor"].append(took)
    return {
        name: (statistics.median(values) * 1000, pct(values, 0.99))
        for name, values in times.items()
    }


async def admission_figures(
    system: System, sampled: list[int], reviews: int
) -> tuple[float, float, float]:
    rng = random.Random(13)
    timings: list[float] = []
    for n in range(reviews + 20):
        request = AdmissionRequest(images=(image(rng.choice(sampled)),), namespace="web")
        system.gatherer.cache.clear()
        began = time.perf_counter()
        decision = await system.judge.evaluate("prod", request)
        took = time.perf_counter() - began
        assert decision.allowed, decision.explain()
        if n >= 20:
            timings.append(took)
    key = ec.generate_private_key(ec.SECP256R1())
    payload = (
        b'{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:'
        + b"0" * 64
        + b'"},"type":"atomic container signature"},"optional":{}}'
    )
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()
    crypto: list[float] = []
    for _ in range(2000):
        began = time.perf_counter()
        public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        crypto.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000, pct(timings, 0.99), statistics.median(crypto) * 1000


def size_figures(pg: str) -> tuple[int, float, float]:
    """Rows, bytes per row of the table with its TOAST and indexes, and of the documents
    alone — measured on a sample of up to ~200,000 rows (a copy of all 16.5 M documents would
    take tens of GB more)."""
    with psycopg.connect(pg) as conn:
        rows = conn.execute("SELECT count(*) FROM occurrences").fetchone()
        total = conn.execute("SELECT pg_total_relation_size('occurrences')").fetchone()
        assert rows is not None
        assert total is not None
        count = int(rows[0])
        percent = min(100.0, 100.0 * 200_000 / count)
        conn.execute(
            sql.SQL(
                "CREATE TABLE docs_floor AS SELECT data FROM occurrences "
                "TABLESAMPLE SYSTEM ({}) REPEATABLE (7)"
            ).format(sql.Literal(percent))
        )
        floor = conn.execute(
            "SELECT pg_total_relation_size('docs_floor'), (SELECT count(*) FROM docs_floor)"
        ).fetchone()
        conn.execute("DROP TABLE docs_floor")
        conn.commit()
    assert floor is not None
    return count, int(total[0]) / count, int(floor[0]) / max(1, int(floor[1]))


def signed_images(pg: str) -> list[int]:
    with psycopg.connect(pg) as conn:
        return [int(r[0]) for r in conn.execute("SELECT i FROM bench_signed ORDER BY i")]


async def measure(
    system: System, pg: str, images: int, sampled: list[int], args: argparse.Namespace
) -> None:
    count, per_row, doc_floor = size_figures(pg)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"== {datetime.now(UTC):%H:%M:%S} UTC: {images:,} images × {PER_IMAGE} = "
        f"{count:,} occurrences; load average {load}",
        flush=True,
    )
    lists = await list_figures(system, pg, images, args.samples)
    f50, f99 = lists["floor"]
    print(
        f"list floor        p50 {f50:7.2f} ms  p99 {f99:7.2f} ms   (bare indexed SELECT of the "
        f"image's {PER_IMAGE} rows on psycopg, interleaved)"
    )
    for name, what in (("rest", "REST path, stored JSON"), ("grpc", "gRPC path, protobuf")):
        l50, l99 = lists[name]
        print(
            f"list resourceUrl  p50 {l50:7.2f} ms  p99 {l99:7.2f} ms   × floor p50 "
            f"{l50 / f50:4.1f}  p99 {l99 / f99:4.1f}   ({what}; target p99 ≤ 10 ms)",
            flush=True,
        )
    a50, a99, c50 = await admission_figures(system, sampled, args.reviews)
    print(
        f"cold admission    p50 {a50:7.2f} ms  p99 {a99:7.2f} ms   floor (1 ECDSA verify) "
        f"{c50:6.3f} ms   × floor p99 {a99 / c50:5.0f}   (p99 − floor {a99 - c50:.2f} ms; "
        "target p99 ≤ 20 ms)"
    )
    print(
        f"                  cold admission p50 = {a50 / f50:4.1f}× the bare SELECT's p50: "
        "the store's round trips, not the crypto, set it"
    )
    print(
        f"size on disk      {per_row:7.0f} B/occurrence   floor (jsonb documents only) "
        f"{doc_floor:6.0f} B   × floor {per_row / doc_floor:4.2f}",
        flush=True,
    )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   (load average at the end {load})", flush=True)


async def run(args: argparse.Namespace, db: str, stages: list[int]) -> None:
    pg = f"postgresql://postgres@127.0.0.1:5432/{db}"
    store = SqlStore.from_url(pg)
    await store.open()
    try:
        system = System(store=store)  # type: ignore[arg-type]
        system.clock.now = datetime.now(UTC)
        if args.reuse:
            signed = signed_images(pg)
            rng = random.Random(5)
            sampled = rng.sample(signed, min(args.samples, len(signed)))
            await measure(system, pg, stages[-1], sampled, args)
            return
        qa = await template(system)
        with psycopg.connect(pg) as conn:
            conn.execute("CREATE TABLE bench_signed (i integer PRIMARY KEY)")
        # Each stage's admission samples are drawn at random from all of its images, before
        # the build: none of them gets a copied attestation.
        rng = random.Random(5)
        per_stage = {n: rng.sample(range(n), min(args.samples, n)) for n in stages}
        every = {i for picked in per_stage.values() for i in picked}
        done: set[int] = set()
        built = 0
        for n in stages:
            rows, rate = copy_images(pg, built, n, every)
            built = n
            began = time.perf_counter()
            todo = sorted(i for i in every if i < n and i not in done)
            for i in todo:
                await sign(system, qa, image(i))
            rate_signed = len(todo) / (time.perf_counter() - began)
            done.update(todo)
            with psycopg.connect(pg) as conn, conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_signed VALUES (%s)", [(i,) for i in todo])
            print(
                f"built {n:,} images: {rows:,} rows by COPY at {rate:,.0f} rows/s; "
                f"{len(todo)} attestations through the service at {rate_signed:,.0f}/s",
                flush=True,
            )
            await measure(system, pg, n, per_stage[n], args)
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--images",
        default="330000",
        help="images, 50 occurrences each; a comma-separated list grows one store in stages "
        "and measures after each (e.g. 20000,100000,330000)",
    )
    ap.add_argument("--samples", type=int, default=500, help="lists timed; images signed")
    ap.add_argument("--reviews", type=int, default=500, help="cold admissions timed")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    ap.add_argument(
        "--reuse",
        metavar="DB",
        help="measure a database a --keep run left (with the code as it is now); dropped "
        "at the end unless --keep",
    )
    args = ap.parse_args()
    stages = sorted({int(n) for n in args.images.split(",")})
    db = args.reuse or f"chainproof_scale_{uuid.uuid4().hex[:8]}"
    if not args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        print(f"database {db}", flush=True)
    finished = False
    try:
        asyncio.run(run(args, db, stages))
        finished = True
    finally:
        # A failed run drops its database even with --keep: a half-built store is no use.
        if args.keep and finished:
            print(f"kept database {db}")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            print(f"dropped database {db}")


if __name__ == "__main__":
    main()
