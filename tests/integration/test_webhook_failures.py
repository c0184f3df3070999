"""How the webhook behaves when the judge cannot decide, and its settings: a store that raises,
a store slower than the deadline, failure mode open, breakglass disabled; and the same reviews
on the SQLite store.

The broken stores are fakes implementing the port (a MemoryStore whose sessions fail or stall
once the test says so), not mocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from chainproof.errors import Unavailable
from chainproof.store.memory import MemoryStore
from chainproof.store.port import UnitOfWork
from integration.test_webhook_support import (
    GOOD,
    UNSIGNED,
    admission_review,
    load_fixture,
    poll,
    review,
    setup_standard_judge,
    with_images,
)
from live import live_server

PROJECT = "prod"
SECRET = "a-fixed-page-token-secret"  # so start-up needs no session


class TroubledStore(MemoryStore):
    """A memory store that, once told to, raises on every session or stalls before each one."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"  # ok | raise | raise-internal | slow
        self.stall_seconds = 5.0

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[UnitOfWork]:
        if self.mode == "raise":
            raise Unavailable("the database is unreachable (connection refused)")
        if self.mode == "raise-internal":
            raise RuntimeError("driver exploded")
        if self.mode == "slow":
            await asyncio.sleep(self.stall_seconds)
        async with super().session(readonly=readonly) as s:
            yield s


@pytest.fixture
def troubled() -> TroubledStore:
    return TroubledStore()


@contextmanager
def _server(store: TroubledStore, **admission: object) -> Iterator[httpx.Client]:
    with (
        live_server(
            store,
            grpc_enabled=False,
            page_token_secret=SECRET,
            # No evidence cache: every review must reach the (troubled) store.
            admission={"project": PROJECT, "cache_ttl_seconds": 0, **admission},
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as client,
    ):
        setup_standard_judge(client, PROJECT)
        yield client


def _pod(*images: str) -> dict[str, object]:
    return with_images(load_fixture("pod.json"), *images)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("raise", "chainproof could not decide: the database is unreachable"),
        ("raise-internal", "chainproof could not decide: internal error (RuntimeError"),
    ],
)
def test_store_errors_deny_when_failure_mode_is_closed(
    troubled: TroubledStore, mode: str, expected: str
) -> None:
    with _server(troubled) as client:
        assert review(client, admission_review(_pod(GOOD)))["allowed"] is True
        troubled.mode = mode
        response = review(client, admission_review(_pod(GOOD)))
        assert response["allowed"] is False
        assert response["auditAnnotations"]["outcome"] == "error"
        message = response["status"]["message"]
        assert expected in message
        assert "failure mode is closed, so the workload is denied" in message
        troubled.mode = "ok"  # the server recovers with its store
        assert review(client, admission_review(_pod(GOOD)))["allowed"] is True


def test_store_errors_admit_with_a_warning_when_failure_mode_is_open(
    troubled: TroubledStore,
) -> None:
    with _server(troubled, failure_mode="open") as client:
        troubled.mode = "raise"
        response = review(client, admission_review(_pod(UNSIGNED)))
        assert response["allowed"] is True
        assert response["auditAnnotations"]["outcome"] == "error"
        assert response["warnings"][0].startswith(
            "admitted without judgement because failure mode is open"
        )
        assert "database is unreachable" in response["warnings"][0]
        troubled.mode = "ok"
        # Once the store is back, the same image is judged (and refused) again.
        assert review(client, admission_review(_pod(UNSIGNED)))["allowed"] is False
        errors = poll(
            lambda: client.get(
                f"/v1/projects/{PROJECT}/decisions", params={"outcome": "error"}
            ).json()["decisions"],
            lambda items: len(items) == 1,
        )
        assert len(errors) == 1  # the error was recorded once the store was back


def test_a_store_slower_than_the_deadline_denies_in_time(troubled: TroubledStore) -> None:
    with _server(troubled, deadline_seconds=0.5) as client:
        troubled.mode = "slow"
        started = time.monotonic()
        response = review(client, admission_review(_pod(GOOD)))
        elapsed = time.monotonic() - started
        assert response["allowed"] is False
        assert "could not decide within its deadline of 0.5s" in response["status"]["message"]
        assert elapsed < 1.5, elapsed
        troubled.mode = "ok"


def test_the_api_server_timeout_shortens_the_deadline(troubled: TroubledStore) -> None:
    with _server(troubled, deadline_seconds=3.0) as client:
        troubled.mode = "slow"
        started = time.monotonic()
        r = client.post("/webhook/admission?timeout=1s", json=admission_review(_pod(GOOD)))
        elapsed = time.monotonic() - started
        assert r.json()["response"]["allowed"] is False
        assert "deadline of 0.5s" in r.json()["response"]["status"]["message"]
        assert elapsed < 1.0, elapsed
        troubled.mode = "ok"


def test_breakglass_disabled_denies_with_a_note(troubled: TroubledStore) -> None:
    with _server(troubled, breakglass_enabled=False) as client:
        pod = _pod(UNSIGNED)
        pod["metadata"]["annotations"] = {"kritis.grafeas.io/breakglass": "true"}
        response = review(client, admission_review(pod))
        assert response["allowed"] is False
        assert "breakglass is disabled on this server" in response["status"]["message"]
        assert any("breakglass is disabled" in w for w in response["warnings"])


def test_reviews_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chainproof.db'}"
    with (
        live_server(grpc_enabled=False, database_url=url, admission={"project": PROJECT}) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as client,
    ):
        judge = setup_standard_judge(client, PROJECT)
        deployment = with_images(load_fixture("deployment.json"), GOOD)
        assert review(client, admission_review(deployment))["allowed"] is True
        denied = review(client, admission_review(with_images(deployment, UNSIGNED)))
        assert denied["allowed"] is False
        entries = poll(lambda: judge.decisions(), lambda items: len(items) == 2)
        assert sorted(d["outcome"] for d in entries) == ["allowed", "denied"]
        assert [d["outcome"] for d in judge.decisions(image=UNSIGNED)] == ["denied"]
        deployed = poll(judge.deployments, lambda items: len(items) == 1)
        assert [o["resourceUri"] for o in deployed] == [GOOD]
