"""How many SQL statements a first sight costs on SQLite (issue 17 item 4).

A review of images the judge has not seen (no cached evidence, verification cache cleared)
reads the evidence of every image, every attestor and every evidence project in one batched
statement (``occurrences.read_slices``), in one read-only transaction; with the judge cache
off it also reads the policy and its attestors first. The counts are exact, so that a change
adding a round trip per image, per attestor or per project fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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


async def _cold_review_statements(
    tmp_path: Path, count: int, *, config_cached: bool = True, url: str = ""
) -> tuple[int, int]:
    """(statements, transactions) of one first sight of ``count`` images; ``config_cached``:
    the judge cache is on and holds the policy and attestors (as a serving judge does).
    ``url``: another (empty) database than a new SQLite file."""
    images = tuple(f"gcr.io/acme/svc{i}@sha256:{i:064x}" for i in range(count))
    store = SqlStore.from_url(url or f"sqlite:///{tmp_path}/first-sight-{count}-{config_cached}.db")
    await store.open()
    try:
        ttl = timedelta(minutes=5) if config_cached else timedelta(0)
        system = System(store=store, cache_ttl=ttl)  # type: ignore[arg-type]
        system.clock.now = datetime.now(UTC)
        await _setup(system, images)
        request = AdmissionRequest(images=images, namespace="web")
        first = await system.judge.evaluate("prod", request)
        assert first.allowed, first.explain()
        system.gatherer.cache.clear()
        system.judge._evidence.clear()  # the images are new to it; the config is not
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


async def test_a_first_sight_of_three_images_is_one_statement(tmp_path: Path) -> None:
    statements, transactions = await _cold_review_statements(tmp_path, 3)
    print(f"first sight of 3 images: {statements} statements in {transactions} transactions")
    # BEGIN (a read-only WAL snapshot) and the batched read.
    assert (statements, transactions) == (2, 1)


async def test_without_the_judge_cache_the_config_adds_its_own_reads(tmp_path: Path) -> None:
    statements, transactions = await _cold_review_statements(tmp_path, 3, config_cached=False)
    # BEGIN, the policy, its two attestors; BEGIN, the batched read.
    assert (statements, transactions) == (6, 2)


async def test_an_extra_image_costs_no_statement(tmp_path: Path) -> None:
    one, _ = await _cold_review_statements(tmp_path, 1)
    three, _ = await _cold_review_statements(tmp_path, 3)
    assert one == three == 2


@pytest.mark.postgres
async def test_a_first_sight_on_postgresql_is_one_statement(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    statements, transactions = await _cold_review_statements(tmp_path, 3, url=fresh_pg_url)
    print(f"first sight of 3 images on PostgreSQL: {statements} statements in {transactions}")
    assert (statements, transactions) == (1, 1)  # asyncpg begins without a statement
