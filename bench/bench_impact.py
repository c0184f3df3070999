"""Benchmark: reverse impact and policy replay on PostgreSQL (issue 15), each beside a floor
measured in the same run.

    .venv/bin/python bench/bench_impact.py                          # the issue's sizes
    .venv/bin/python bench/bench_impact.py --images 2000 --containers 5000 --admissions 10000

Build. A fresh database (created here, dropped at the end unless ``--keep``) is migrated by
chainproof itself. With ``COPY … FROM STDIN`` into the store's own tables and indexes:
``--containers`` running containers (one per pod, 50 namespaces, a Deployment per 4 pods) over
``--images`` images in the inventory of cluster ``prod``; two findings per image (CVEs from a
pool of 5,000), and for ``--affected`` images one more, filed as the scanner files it under a
GHSA that names the target CVE among its aliases; ``--admissions`` recorded admissions of the
last 7 days, each of one image as the decision log writes them (request fields, the explained
decision). The policy (REQUIRE_ATTESTATION with a vulnerability threshold) goes in through the
service.

Figures (in this process, through the services ``chainproof serve`` wires, judge cache off so
every query reads the store):

* **impact by CVE**: ``ImpactService.impact`` of the target CVE, first page (20 affected
  images with their workloads, each judged by the judge under the stored policy). Floor: the
  bare SELECTs it needs on psycopg, interleaved with ours: the indexed finding lookup (IDs and
  aliases; as many as the service's first read, twice the page) and the inventory rows of
  those images. ``--page-size`` (default 20, the API's
  default) sets how many affected images a page judges.
* **replay**: ``PolicyReplay.replay`` of every recorded admission under a proposed policy
  (admissions only, then with the running pods too). Floor: evaluating those admissions
  under the proposed policy with their evidence preloaded (the pure evaluator alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from scratch_db import scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chainproof.bootstrap import build_services
from chainproof.config import load_settings
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import occurrence_from_json, to_json
from chainproof.domain.pagination import PageTokenCodec
from chainproof.policy import AdmissionRequest, Evidence, evaluate, parse_policy
from chainproof.services.judge.impact import ImpactQuery
from chainproof.services.scribe.grafeas import new_occurrence_id
from chainproof.store.sql.store import SqlStore

PROJECT = "prod"
TARGET_CVE = "CVE-2099-0001"
TARGET_GHSA = "GHSA-bench-0000-0001"
OCC_COLUMNS = (
    "project, occurrence_id, kind, note_project, note_id, resource, data, create_time, update_time"
)
INV_COLUMNS = (
    "cluster, namespace, pod, container, pod_uid, workload_kind, workload_name, "
    "service_account, image_spec, image_id, digest, image, since, until, source"
)
POLICY = {
    "defaultAdmissionRule": {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": {
            "vulnerabilities": {"maximumUnfixableSeverity": "HIGH", "requireScan": False}
        },
    },
    "kubernetesNamespaceAdmissionRules": {
        "ns0": {"evaluationMode": "ALWAYS_ALLOW", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
    },
}
PROPOSED = {
    "defaultAdmissionRule": {
        "evaluationMode": "REQUIRE_ATTESTATION",
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        "chainproofChecks": {
            "vulnerabilities": {"maximumUnfixableSeverity": "CRITICAL", "requireScan": False}
        },
    },
    "admissionWhitelistPatterns": [{"namePattern": "registry.example.com/team1/**"}],
}


def image(i: int) -> str:
    return f"registry.example.com/team{i % 50}/app{i}@sha256:{i:064x}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] * 1000


def finding_doc(img: str, note: str, severity: str, extra: str, now: datetime) -> dict[str, object]:
    occ = occurrence_from_json(
        {
            "resourceUri": img,
            "noteName": f"projects/osv/notes/{note}",
            "vulnerability": {
                "severity": severity,
                "effectiveSeverity": severity,
                "packageIssue": [
                    {"affectedCpeUri": "pkg:npm/left-pad@1.0.0", "affectedPackage": "left-pad"}
                ],
                "extraDetails": extra,
            },
        }
    )
    occ.create_time.FromDatetime(now)
    occ.update_time.FromDatetime(now)
    return dict(to_json(occ))


def build(pg: str, args: argparse.Namespace, now: datetime) -> set[int]:
    rng = random.Random(15)
    affected = set(rng.sample(range(args.images), min(args.affected, args.images)))
    stamp = now.isoformat()
    with psycopg.connect(pg) as conn:
        with conn.cursor().copy(f"COPY occurrences ({OCC_COLUMNS}) FROM STDIN") as copy:
            for i in range(args.images):
                img = image(i)
                notes = [(f"CVE-2024-{rng.randrange(5000):05d}", "HIGH", "")]
                notes.append((f"CVE-2023-{rng.randrange(5000):05d}", "MEDIUM", ""))
                if i in affected:
                    notes.append(
                        (TARGET_GHSA, "CRITICAL", f"osv={TARGET_GHSA};aliases={TARGET_CVE}")
                    )
                for note, severity, extra in notes:
                    oid = new_occurrence_id()
                    doc = finding_doc(img, note, severity, extra, now)
                    doc["name"] = f"projects/{PROJECT}/occurrences/{oid}"
                    copy.write_row(
                        (
                            PROJECT,
                            oid,
                            "VULNERABILITY",
                            "osv",
                            note,
                            img,
                            json.dumps(doc),
                            stamp,
                            stamp,
                        )
                    )
        with conn.cursor().copy(f"COPY inventory ({INV_COLUMNS}) FROM STDIN") as copy:
            for c in range(args.containers):
                img = image(c % args.images)
                ns = f"ns{c % 50}"
                since = (now - timedelta(seconds=rng.randrange(86400 * 30))).isoformat()
                copy.write_row(
                    ("prod", ns, f"pod-{c}", "app", f"uid-{c}", "Deployment", f"web-{c // 4}",
                     f"sa{c % 7}", img, img, img.rsplit("@", 1)[1], img, since, None, "watcher")
                )  # fmt: skip
        decision = {
            "outcome": "denied",
            "allowed": False,
            "evaluatedAt": stamp,
            "policy": "",
            "policyEtag": "e" * 32,
            "images": [
                {
                    "image": "",
                    "reference": "",
                    "outcome": "denied",
                    "rule": {
                        "scope": "default",
                        "key": None,
                        "evaluationMode": "REQUIRE_ATTESTATION",
                        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                        "why": "defaultAdmissionRule (no service-account, namespace or cluster "
                        "rule applies)",
                        "evidenceFrom": [],
                    },
                    "requirements": [
                        {
                            "kind": "vulnerabilities",
                            "name": "vulnerability thresholds",
                            "passed": False,
                            "reason": "1 vulnerabilities exceed the policy" + " …" * 40,
                            "occurrences": [f"projects/prod/occurrences/{uuid.uuid4()}"],
                            "keyIds": [],
                        }
                    ],
                }
            ],
        }
        with conn.cursor().copy(
            "COPY decisions (decision_id, project, time, outcome, namespace, images, data) "
            "FROM STDIN"
        ) as copy:
            ids: list[tuple[str, str]] = []
            for d in range(args.admissions):
                img = image(rng.randrange(args.images))
                when = now - timedelta(seconds=rng.randrange(7 * 86400 - 60))
                did = f"{int(when.timestamp() * 1_000_000):016x}-{d:016x}"
                ns = f"ns{d % 50}"
                decision["images"][0]["image"] = img  # type: ignore[index]
                decision["images"][0]["reference"] = img  # type: ignore[index]
                data = {
                    "requestUid": str(uuid.UUID(int=d)),
                    "cluster": "prod",
                    "namespace": ns,
                    "workload": f"Deployment/web-{d % 5000}",
                    "serviceAccount": f"sa{d % 7}",
                    "operation": "CREATE",
                    "outcome": "denied",
                    "breakglass": False,
                    "dryRun": False,
                    "message": "",
                    "requestImages": [img],
                    "decision": decision,
                }
                copy.write_row(
                    (
                        did,
                        PROJECT,
                        when.isoformat(),
                        "denied",
                        ns,
                        json.dumps([img]),
                        json.dumps(data),
                    )
                )
                ids.append((did, img))
        with conn.cursor().copy("COPY decision_images (decision_id, image) FROM STDIN") as copy:
            for did, img in ids:
                copy.write_row((did, img))
        conn.commit()
        for table in ("occurrences", "inventory", "decisions", "decision_images"):
            conn.execute(f"ANALYZE {table}")
    return affected


_FLOOR_FINDINGS = (
    "SELECT DISTINCT resource FROM occurrences WHERE project = %s AND kind = 'VULNERABILITY' "
    "AND (upper(note_id) = ANY(%s) OR string_to_array(upper(substring(data->'vulnerability'"
    "->>'extraDetails' from 'aliases=([^;]*)')), ',') && %s::text[]) ORDER BY resource LIMIT %s"
)
_FLOOR_ROWS = "SELECT * FROM inventory WHERE until IS NULL AND cluster = 'prod' AND image = ANY(%s)"


async def main_async(args: argparse.Namespace, pg: str) -> None:
    store = SqlStore.from_url(pg)
    await store.open()
    settings = load_settings(
        database_url=pg,
        grpc_enabled=False,
        admission={"project": PROJECT, "cluster": "prod", "cache_ttl_seconds": 0},
    )
    services = build_services(store, settings=settings, tokens=PageTokenCodec(b"b" * 32))
    try:
        now = datetime.now(UTC)
        began = time.perf_counter()
        affected = build(pg, args, now)
        print(
            f"built {args.images:,} images, {args.containers:,} running containers, "
            f"{args.affected:,} images with {TARGET_CVE} (as {TARGET_GHSA}), "
            f"{args.admissions:,} recorded admissions in {time.perf_counter() - began:.0f} s"
        )
        await services.judge_resources.put_policy(f"projects/{PROJECT}", POLICY)

        # --------------------------------------------------------------- impact by CVE
        query = ImpactQuery("cve", TARGET_CVE)
        first = await services.impact.impact(PROJECT, query, args.page_size)
        shown = len(first.images)
        workloads = sum(len(i.workloads) for i in first.images)
        assert shown == min(args.page_size, len(affected)), shown
        ours: list[float] = []
        floor: list[float] = []
        with psycopg.connect(pg) as conn:
            for _ in range(args.queries):
                t = time.perf_counter()
                await services.impact.impact(PROJECT, query, args.page_size)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                ids = [TARGET_CVE]
                found = [
                    r[0]
                    for r in conn.execute(
                        _FLOOR_FINDINGS, (PROJECT, ids, ids, max(2 * args.page_size, 10))
                    ).fetchall()
                ]
                conn.execute(_FLOOR_ROWS, (found,)).fetchall()
                floor.append(time.perf_counter() - t)
        p50, p99, f50, f99 = pct(ours, 0.5), pct(ours, 0.99), pct(floor, 0.5), pct(floor, 0.99)
        print(
            f"impact --cve      p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   floor (bare SELECTs) "
            f"p50 {f50:6.2f} ms p99 {f99:6.2f} ms   × floor p99 {p99 / f99:5.1f}   "
            f"(first page: {shown} images, {workloads} workloads judged; target p99 ≤ 50 ms)"
        )

        if args.skip_replay:
            return
        # --------------------------------------------------------------- replay
        proposed = parse_policy(PROPOSED)
        since = now - timedelta(days=7, minutes=1)
        t = time.perf_counter()
        report = await services.replay.replay(PROJECT, proposed, since, running=False)
        replay_s = time.perf_counter() - t
        t = time.perf_counter()
        with_running = await services.replay.replay(PROJECT, proposed, since, running=True)
        running_s = time.perf_counter() - t
        # Floor: the proposed policy over every admission, evidence already in memory.
        cases: list[AdmissionRequest] = []
        async with store.session(readonly=True) as s:
            from chainproof.store.port import DecisionQuery

            after = None
            while True:
                batch = await s.decisions.admissions(
                    DecisionQuery(project=PROJECT, since=since), after, 1000
                )
                cases += [
                    AdmissionRequest(a.images, a.cluster, a.namespace, a.service_account)
                    for a in batch
                ]
                if len(batch) < 1000:
                    break
                after = batch[-1].decision_id
        refs = list(dict.fromkeys(parse_image_reference(i) for c in cases for i in c.images))
        gathered = await services.replay._gather(refs, {}, PROJECT, now)
        evidence = Evidence(images=gathered)
        t = time.perf_counter()
        for c in cases:
            evaluate(proposed, c, evidence, now)
        floor_s = time.perf_counter() - t
        print(
            f"policy replay     {report.admissions:,} admissions over {report.images:,} images: "
            f"{replay_s:6.1f} s   floor (evaluate, evidence preloaded) {floor_s:5.1f} s   "
            f"× floor {replay_s / floor_s:5.1f}   ({report.changed:,} change; target ≤ 60 s)"
        )
        print(
            f"                  with the {with_running.running:,} running pods too: "
            f"{running_s:6.1f} s ({with_running.changed:,} change)"
        )
    finally:
        await services.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--containers", type=int, default=50_000)
    ap.add_argument("--affected", type=int, default=1_000, help="images carrying the target CVE")
    ap.add_argument("--admissions", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200, help="impact queries timed")
    ap.add_argument("--page-size", type=int, default=20, help="affected images per page")
    ap.add_argument("--skip-replay", action="store_true", help="time impact only")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = ap.parse_args()
    with scratch_database("chainproof_impact", keep=args.keep) as pg:
        asyncio.run(main_async(args, pg))


if __name__ == "__main__":
    main()
