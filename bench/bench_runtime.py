"""Benchmark: continuous validation on PostgreSQL — after a new finding set touching N of the
running images, how long until the violations are up to date, beside a floor measured in
the same run.

Issue 15: an inventory of 50,000 running containers over 20,000 images; a new advisory
touching 1,000 of those images; violations up to date in ≤ 5 s.

    .venv/bin/python bench/bench_runtime.py                                  # the issue's size
    .venv/bin/python bench/bench_runtime.py --containers 5000 --images 2000 --touched 100

Build. A fresh database (created here, dropped at the end unless ``--keep``) is migrated by
chainproof itself. The policy of ``projects/prod`` allows fixable findings up to HIGH. Every
image carries three HIGH findings: the template image's are written through
``GrafeasService``, every other image gets copies of those stored rows (new IDs, its own
resource) by PostgreSQL's ``COPY … FROM STDIN``; so is the inventory (two containers per pod,
container ``j`` running image ``j mod images``). Every outbox event of the build is marked
judged, so the worker starts with nothing to do.

Measured. One batch of CRITICAL findings, one per touched image, is created through
``GrafeasService.batch_create_occurrences`` (one transaction, one outbox event each; its time
is printed apart). Then the clock runs from that commit until the re-judging worker
(``ContinuousValidation.process_outbox``, the leader's loop without its idle wait) has read
the events, found the running pods of those images, judged every pod again (evidence read
once per image, then each pod judged as admission would) and written the violations with
their outbox events. The run checks that exactly the pods running a touched image violate.

Floor, in the same run, on the same data: the work no implementation can skip —
the bare SELECTs on psycopg (the inventory rows of the touched images, the open rows of their
pods, the findings of their images) and one multi-row INSERT of as many violation rows, plus
the pure evaluation (``policy.evaluate``) of every pod with its evidence already in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from scratch_db import scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chainproof.domain.images import canonical_resource, parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest, evaluate
from chainproof.policy.evidence import Evidence
from chainproof.services.judge.continuous import ContinuousValidation
from chainproof.services.scribe.grafeas import new_occurrence_id
from chainproof.store.runtime_port import ViolationQuery
from chainproof.store.sql.store import SqlStore
from unit.services.judge_fixtures import System

TEMPLATE = "registry.example.com/template/app@sha256:" + "f" * 64
BACKGROUND = 3
OCC_COLUMNS = (
    "project, occurrence_id, kind, note_project, note_id, resource, data, create_time, update_time"
)
INV_COLUMNS = (
    "cluster, namespace, pod, container, pod_uid, workload_kind, workload_name, "
    "service_account, image_spec, image_id, digest, image, since, source"
)
POLICY = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
    "chainproofChecks": {
        "vulnerabilities": {"maximumFixableSeverity": "HIGH", "requireScan": False}
    },
}


def image(i: int) -> str:
    return f"registry.example.com/team{i % 50}/app{i}@sha256:{i:064x}"


def finding(uri: str, severity: str, package: str) -> object:
    return occurrence_from_json(
        {
            "resourceUri": uri,
            "noteName": "projects/prod/notes/cve",
            "vulnerability": {
                "effectiveSeverity": severity,
                "fixAvailable": True,
                "packageIssue": [
                    {
                        "affectedCpeUri": "cpe:/o:debian:debian_linux:12",
                        "affectedPackage": package,
                        "affectedVersion": {"kind": "NORMAL", "name": "1.0"},
                    }
                ],
            },
        }
    )


async def template(system: System) -> None:
    await system.policy("prod", POLICY)
    await system.grafeas.create_note("projects/prod", "cve", note_from_json({"vulnerability": {}}))
    for n in range(BACKGROUND):
        await system.grafeas.create_occurrence(
            "projects/prod", finding(f"https://{TEMPLATE}", "HIGH", f"lib{n}")
        )


def build(pg: str, images: int, containers: int, since: datetime) -> float:
    """Occurrences and inventory by COPY; returns rows/s."""
    written, began = 0, time.perf_counter()
    with psycopg.connect(pg) as conn:
        rows = conn.execute(
            "SELECT project, occurrence_id, kind, note_project, note_id, resource, data::text, "
            "create_time, update_time FROM occurrences WHERE resource LIKE %s",
            (f"%{TEMPLATE}",),
        ).fetchall()
        assert len(rows) == BACKGROUND, f"template has {len(rows)} rows"
        with conn.cursor().copy(f"COPY occurrences ({OCC_COLUMNS}) FROM STDIN") as copy:
            for i in range(images):
                img = image(i)
                res = canonical_resource(img)
                for project, oid, kind, nproj, nid, _res, data, ct, ut in rows:
                    new = new_occurrence_id()
                    doc = data.replace(TEMPLATE, img).replace(oid, new)
                    copy.write_row((project, new, kind, nproj, nid, res, doc, ct, ut))
                    written += 1
        with conn.cursor().copy(f"COPY inventory ({INV_COLUMNS}) FROM STDIN") as copy:
            for j in range(containers):
                img = image(j % images)
                canonical = parse_image_reference(img).canonical
                pod = f"pod-{j // 2}"
                copy.write_row(
                    (
                        "prod",
                        f"ns{(j // 2) % 50}",
                        pod,
                        f"c{j % 2}",
                        f"uid-{pod}",
                        "Deployment",
                        f"web{(j // 2) % 500}",
                        "default",
                        img,
                        f"docker-pullable://{img}",
                        img.rsplit("@", 1)[1],
                        canonical,
                        since,
                        "watcher",
                    )
                )
                written += 1
        conn.execute("UPDATE outbox SET judged = true, routed = true")
        conn.commit()
        conn.execute("ANALYZE")
    return written / (time.perf_counter() - began)


def sql_floor(pg: str, touched: list[str], violations: int) -> tuple[float, int]:
    """The bare reads and one INSERT a batch needs, on psycopg; seconds and pods found."""
    began = time.perf_counter()
    with psycopg.connect(pg) as conn:
        pods = conn.execute(
            "SELECT DISTINCT cluster, namespace, pod FROM inventory "
            "WHERE until IS NULL AND image = ANY(%s)",
            (touched,),
        ).fetchall()
        conn.execute(
            "SELECT * FROM inventory WHERE until IS NULL AND (cluster, namespace, pod) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
            ([p[0] for p in pods], [p[1] for p in pods], [p[2] for p in pods]),
        ).fetchall()
        conn.execute(
            "SELECT data FROM occurrences WHERE project = 'prod' AND resource = ANY(%s) "
            "AND kind IN ('VULNERABILITY', 'DISCOVERY')",
            ([canonical_resource(t) for t in touched],),
        ).fetchall()
        conn.execute("CREATE TEMP TABLE floor_v (LIKE violations INCLUDING DEFAULTS)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO floor_v (violation_id, project, cluster, namespace, pod, "
                "workload_kind, workload_name, images, explanation, cause, opened, close_reason) "
                "VALUES (%s, 'prod', 'prod', 'ns', %s, 'Deployment', 'web', %s, 'x', 'y', "
                "now(), '')",
                [
                    (str(uuid.uuid4()), f"p{n}", json.dumps([{"image": "x"}]))
                    for n in range(violations)
                ],
            )
        conn.rollback()
    return time.perf_counter() - began, len(pods)


async def evaluation_floor(
    system: System, requests: list[AdmissionRequest], now: datetime
) -> float:
    """Pure evaluation of every pod, its evidence gathered beforehand (not timed)."""
    config = await system.resources.load_config("prod")
    assert config.policy is not None
    images = sorted({i for r in requests for i in r.images})
    refs = [parse_image_reference(i) for i in images]
    gathered = await system.gatherer.gather(refs, config.attestors, ("prod",), now)
    evidence = Evidence(images=dict(gathered.images), attestors=dict(config.attestors))
    began = time.perf_counter()
    for request in requests:
        evaluate(config.policy, request, evidence, now)
    return time.perf_counter() - began


async def run(args: argparse.Namespace, pg: str) -> None:
    store = SqlStore.from_url(pg)
    await store.open()
    try:
        system = System(store=store)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        system.clock.now = now
        await template(system)
        rate = build(pg, args.images, args.containers, now - timedelta(hours=1))
        print(
            f"{args.containers:,} running containers over {args.images:,} images, "
            f"{args.images * BACKGROUND:,} findings (COPY build {rate:,.0f} rows/s)"
        )
        wired = system.services.runtime.continuous
        assert wired is not None
        worker = ContinuousValidation(
            store,  # type: ignore[arg-type]
            system.resources,
            wired.new_judge,
            system.clock,
            cluster_projects={"prod": "prod"},
            default_project="prod",
        )
        step = max(args.images // args.touched, 1)
        touched = [image(i) for i in range(0, args.images, step)][: args.touched]
        began = time.perf_counter()
        for start in range(0, len(touched), 1000):
            await system.grafeas.batch_create_occurrences(
                "projects/prod",
                [
                    finding(f"https://{t}", "CRITICAL", "openssl")
                    for t in touched[start : start + 1000]
                ],
            )
        wrote = time.perf_counter() - began

        began = time.perf_counter()
        batches = 0
        while await worker.process_outbox():
            batches += 1
        took = time.perf_counter() - began

        async with store.session(readonly=True) as s:
            opened = await s.violations.list_rows(ViolationQuery("prod"), 10_000_000)
        floor_sql, expected = sql_floor(
            pg, [parse_image_reference(t).canonical for t in touched], len(opened)
        )
        assert len(opened) == expected, f"{len(opened)} violations for {expected} pods"
        assert all("CRITICAL" in v.explanation for v in opened)
        requests = []
        pods = {(v.cluster, v.namespace, v.pod) for v in opened}
        async with store.session(readonly=True) as s:
            rows = await s.inventory.open_rows_of_pods(sorted(pods))
        by_pod: dict[tuple[str, str, str], list[str]] = {}
        for r in rows:
            by_pod.setdefault((r.cluster, r.namespace, r.pod), []).append(r.image)
        for (cluster, namespace, _pod), imgs in sorted(by_pod.items()):
            requests.append(
                AdmissionRequest(
                    images=tuple(imgs),
                    cluster=cluster,
                    namespace=namespace,
                    service_account="default",
                )
            )
        floor_eval = await evaluation_floor(system, requests, now)
        floor = floor_sql + floor_eval
        print(
            f"findings written  {len(touched):,} CRITICAL findings in {wrote:.2f} s "
            "(one transaction per 1,000, outbox events with them)"
        )
        print(
            f"violations up to date {took:6.2f} s after the commit ({batches} batch(es); "
            f"{len(opened):,} pods opened)   floor {floor:5.2f} s (bare SQL {floor_sql:.2f} s + "
            f"pure evaluation {floor_eval:.2f} s)   × floor {took / floor:4.1f}   (target ≤ 5 s)"
        )
        median_pod = statistics.median([took / max(len(opened), 1)]) * 1000
        print(f"                  {median_pod:.2f} ms per re-judged pod")
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--containers", type=int, default=50_000, help="running containers")
    ap.add_argument("--images", type=int, default=20_000, help="distinct running images")
    ap.add_argument("--touched", type=int, default=1_000, help="images the new findings touch")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = ap.parse_args()
    with scratch_database("chainproof_runtime", keep=args.keep) as pg:
        asyncio.run(run(args, pg))


if __name__ == "__main__":
    main()
