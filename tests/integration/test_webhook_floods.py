"""A signature flood against a running server, as an outsider would send it (issue 9, item 10):
the write bound answers 400 over REST, a flood within it spends the review's verification
budget and is denied with the reason, and the server keeps answering /healthz meanwhile."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from chainproof.store.memory import MemoryStore
from integration.test_webhook_support import (
    GOOD,
    admission_review,
    load_fixture,
    review,
    setup_standard_judge,
    with_images,
)
from live import live_server

PROJECT = "prod"


@contextmanager
def _server(**admission: object) -> Iterator[tuple[httpx.Client, object]]:
    with (
        live_server(
            MemoryStore(),
            grpc_enabled=False,
            page_token_secret="a-fixed-page-token-secret",
            admission={"project": PROJECT, "cache_ttl_seconds": 0, **admission},
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as client,
    ):
        yield client, setup_standard_judge(client, PROJECT)


def _flood(judge: object, count: int) -> dict[str, object]:
    signer = judge.signers["qa"]  # type: ignore[attr-defined]
    return {
        "resourceUri": GOOD,
        "noteName": f"projects/{PROJECT}/notes/qa",
        "attestation": {
            "serializedPayload": base64.b64encode(b'{"critical": {}}').decode(),
            "signatures": [
                {
                    "signature": base64.b64encode(signer.sign(b"other %d" % i)).decode(),
                    "publicKeyId": signer.key_id,
                }
                for i in range(count)
            ],
        },
    }


def test_a_flood_is_bounded_on_write_and_by_the_review_budget() -> None:
    with _server(max_signature_checks=200) as (client, judge):
        pod = admission_review(with_images(load_fixture("pod.json"), GOOD))
        assert review(client, pod)["allowed"] is True
        refused = client.post(f"/v1/projects/{PROJECT}/occurrences", json=_flood(judge, 1000))
        assert refused.status_code == 400
        assert "at most 32 signatures" in refused.text
        batch = {"occurrences": [_flood(judge, 32) for _ in range(20)]}
        created = client.post(f"/v1/projects/{PROJECT}/occurrences:batchCreate", json=batch)
        assert created.status_code == 200, created.text

        health: list[int] = []

        def probe() -> None:
            with httpx.Client(base_url=str(client.base_url), timeout=30) as other:
                health.append(other.get("/healthz").status_code)

        prober = threading.Thread(target=probe)
        prober.start()
        response = review(client, pod)
        prober.join()
        assert health == [200]
        assert response["allowed"] is False
        assert "verification budget of 200 signature checks" in response["status"]["message"]


@pytest.mark.parametrize("failure_mode", ["closed", "open"])
def test_a_review_past_its_deadline_is_denied_whatever_the_failure_mode(
    failure_mode: str,
) -> None:
    with _server(deadline_seconds=0.05, failure_mode=failure_mode) as (client, judge):
        batch = {"occurrences": [_flood(judge, 32) for _ in range(60)]}
        created = client.post(f"/v1/projects/{PROJECT}/occurrences:batchCreate", json=batch)
        assert created.status_code == 200, created.text
        response = review(client, admission_review(with_images(load_fixture("pod.json"), GOOD)))
        assert response["allowed"] is False
        assert "deadline" in response["status"]["message"]
