"""How many SQL statements a cold review costs on SQLite (issue 17 item 4's baseline).

A cold review (no judge cache, verification cache cleared) reads the policy and attestors,
then the evidence of every image. The counts are pinned as upper bounds so that a change
adding round trips per image or per attestor fails here; the work of item 4 (one batched read
per review) lowers them and should lower these bounds with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest
from chainproof.store.sql.store import SqlStore

from .judge_fixtures import System


async def _setup(system: System, images: tuple[str, ...]) -> None:
    qa = await system.attestor("sec", "qa")
    build = await system.attestor("sec", "build")
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [qa.attestor, build.attestor],
            "chainproofChecks": {"vulnerabilities": {"maximumFixableSeverity": "HIGH"}},
        },
    )
    g = system.grafeas
    await g.create_note("projects/prod", "cve", note_from_json({"vulnerability": {}}))
    await g.create_note(
        "projects/prod", "scanner", note_from_json({"discovery": {"analysisKind": "VULNERABILITY"}})
    )
    for image in images:
        await system.sign(qa, image)
        await system.sign(build, image)
        await g.create_occurrence(
            "projects/prod",
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": "projects/prod/notes/scanner",
                    "discovery": {"analysisStatus": "FINISHED_SUCCESS"},
                }
            ),
        )
        await g.create_occurrence(
            "projects/prod",
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": "projects/prod/notes/cve",
                    "vulnerability": {
                        "effectiveSeverity": "LOW",
                        "packageIssue": [
                            {"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "p"}
                        ],
                    },
                }
            ),
        )


async def _cold_review_statements(tmp_path: Path, count: int) -> tuple[int, int]:
    """(statements, transactions) of one cold review of ``count`` images."""
    images = tuple(f"gcr.io/acme/svc{i}@sha256:{i:064x}" for i in range(count))
    store = SqlStore.from_url(f"sqlite:///{tmp_path}/first-sight-{count}.db")
    await store.open()
    try:
        system = System(store=store)  # type: ignore[arg-type]
        system.clock.now = datetime.now(UTC)
        await _setup(system, images)
        request = AdmissionRequest(images=images, namespace="web")
        first = await system.judge.evaluate("prod", request)
        assert first.allowed, first.explain()
        system.gatherer.cache.clear()
        seen = {"statements": 0, "transactions": 0}

        def statement(*_: Any) -> None:
            seen["statements"] += 1

        def begin(*_: Any) -> None:
            seen["transactions"] += 1

        engine = store._engine.sync_engine  # the store's own engine: every statement it sends
        sa.event.listen(engine, "before_cursor_execute", statement)
        sa.event.listen(engine, "begin", begin)
        try:
            decision = await system.judge.evaluate("prod", request)
        finally:
            sa.event.remove(engine, "before_cursor_execute", statement)
            sa.event.remove(engine, "begin", begin)
        assert decision.allowed, decision.explain()
        return seen["statements"], seen["transactions"]
    finally:
        await store.close()


async def test_a_cold_three_image_review_stays_within_its_statement_budget(
    tmp_path: Path,
) -> None:
    statements, transactions = await _cold_review_statements(tmp_path, 3)
    print(f"cold 3-image review: {statements} statements in {transactions} transactions")
    assert statements <= 23
    assert transactions <= 2


async def test_statements_per_extra_image_are_bounded(tmp_path: Path) -> None:
    one, _ = await _cold_review_statements(tmp_path, 1)
    print(f"cold 1-image review: {one} statements")
    three, _ = await _cold_review_statements(tmp_path, 3)
    # Today every image costs its own reads (one per attestor, one per evidence project and
    # the inventory: 6 on SQLite); a batched read per review would make this 0.
    assert three - one <= 2 * 6
