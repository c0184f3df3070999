"""List pages are bounded by size as well as by count, on REST and gRPC (issue 9 item 17).

Twelve occurrences of about 700 KB each (and notes, attestors-sized judge resources and
decisions of the same order) would make a page of 8 MB: over the 4 MiB a gRPC client accepts
by default, so the official grafeas client failed with RESOURCE_EXHAUSTED. Every page must now
stay under 4 MiB encoded on both transports, end early with a next page token, and together
the pages must give every item exactly once. An item larger than a whole page is an error that
names it, never skipped.

The server is ``chainproof serve`` on loopback (tests/live.py) with a 16 MiB body limit, so
that items this large can be written; the gRPC client is the grafeas package's, unchanged.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
from google.api_core import exceptions as gexc
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import grafeas as g

from chainproof.store.port import DecisionRecord
from chainproof.store.sql import SqlStore
from live import LiveServer, live_server

MiB = 1024 * 1024
P = "projects/big"
IMAGE = "https://gcr.io/acme/app@sha256:" + "a" * 64
COUNT = 12
PAYLOAD = 520_000  # bytes; about 700 KB once base64 in JSON


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages") / "chainproof.db"


@pytest.fixture(scope="module")
def server(database: Path) -> Iterator[LiveServer]:
    with live_server(
        grpc_enabled=True, database_url=f"sqlite:///{database}", max_body_bytes=16 * MiB
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url + "/v1", timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def grafeas(server: LiveServer) -> Iterator[GrafeasClient]:
    channel = grpc.insecure_channel(server.grpc_target)  # default 4 MiB receive limit
    yield GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
    channel.close()


def big_occurrence(i: int, size: int = PAYLOAD) -> dict[str, object]:
    return {
        "noteName": f"{P}/notes/signer",
        "resourceUri": IMAGE,
        "attestation": {
            "serializedPayload": base64.b64encode(bytes([i % 256]) * size).decode(),
            "signatures": [{"publicKeyId": f"key-{i}", "signature": "c2ln"}],
        },
    }


@pytest.fixture(scope="module")
def written(http: httpx.Client, database: Path) -> dict[str, set[str]]:
    assert http.post("/projects", json={"name": P}).status_code == 200
    r = http.post(
        f"/{P}/notes?noteId=signer", json={"attestation": {"hint": {"humanReadableName": "signer"}}}
    )
    assert r.status_code == 200, r.text
    occurrences = set()
    for i in range(COUNT):
        r = http.post(f"/{P}/occurrences", json=big_occurrence(i))
        assert r.status_code == 200, r.text
        occurrences.add(r.json()["name"])
    notes = set()
    for i in range(COUNT):
        body = {"longDescription": "n" * PAYLOAD, "package": {"name": f"pkg{i}"}}
        r = http.post(f"/{P}/notes?noteId=big-{i}", json=body)
        assert r.status_code == 200, r.text
        notes.add(r.json()["name"])
    notes.add(f"{P}/notes/signer")
    decisions = asyncio.run(_write_decisions(database))
    return {"occurrences": occurrences, "notes": notes, "decisions": decisions}


async def _write_decisions(database: Path) -> set[str]:
    # Straight into the server's database (its own process would only write small ones).
    store = SqlStore.from_url(f"sqlite:///{database}")
    await store.open()
    now = datetime.now(UTC)
    records = [
        DecisionRecord(
            f"{int(now.timestamp() * 1e6) + i:016x}-{i:016x}",
            "big",
            now,
            "denied",
            "web",
            (),
            {"requestUid": f"u{i}", "message": "m" * PAYLOAD},
        )
        for i in range(COUNT)
    ]
    try:
        async with store.session() as s:
            await s.decisions.insert(records)
    finally:
        await store.close()
    return {f"{P}/decisions/{r.decision_id}" for r in records}


def rest_pages(http: httpx.Client, path: str, key: str) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    for _ in range(100):
        r = http.get(path, params={"pageSize": 1000, "pageToken": token})
        assert r.status_code == 200, r.text
        assert len(r.content) < 4 * MiB
        body = r.json()
        pages.append([item["name"] for item in body.get(key, [])])
        token = body.get("nextPageToken", "")
        if not token:
            return pages
    pytest.fail("the list never ended")


def names(pages: list[list[str]]) -> list[str]:
    return [n for page in pages for n in page]


@pytest.mark.parametrize(
    ("path", "key", "kind"),
    [
        (f"/{P}/occurrences", "occurrences", "occurrences"),
        (f"/{P}/notes/signer/occurrences", "occurrences", "occurrences"),
        (f"/{P}/notes", "notes", "notes"),
        (f"/{P}/decisions", "decisions", "decisions"),
    ],
)
def test_rest_pages_stay_under_4_mib_and_lose_nothing(
    http: httpx.Client, written: dict[str, set[str]], path: str, key: str, kind: str
) -> None:
    pages = rest_pages(http, path, key)
    assert len(pages) > 1
    assert sorted(names(pages)) == sorted(written[kind])


def test_grpc_list_occurrences_pages_fit_the_default_client(
    grafeas: GrafeasClient, written: dict[str, set[str]]
) -> None:
    pager = grafeas.list_occurrences(request=g.ListOccurrencesRequest(parent=P, page_size=1000))
    pages = [[o.name for o in page.occurrences] for page in pager.pages]
    assert len(pages) > 1
    assert sorted(names(pages)) == sorted(written["occurrences"])


def test_grpc_list_note_occurrences_and_notes_fit_the_default_client(
    grafeas: GrafeasClient, written: dict[str, set[str]]
) -> None:
    by_note = grafeas.list_note_occurrences(
        request=g.ListNoteOccurrencesRequest(name=f"{P}/notes/signer", page_size=1000)
    )
    pages = [[o.name for o in page.occurrences] for page in by_note.pages]
    assert len(pages) > 1
    assert sorted(names(pages)) == sorted(written["occurrences"])
    notes = grafeas.list_notes(request=g.ListNotesRequest(parent=P, page_size=1000))
    note_pages = [[n.name for n in page.notes] for page in notes.pages]
    assert len(note_pages) > 1
    assert sorted(names(note_pages)) == sorted(written["notes"])


def test_an_item_larger_than_a_page_is_named_not_skipped(
    http: httpx.Client, grafeas: GrafeasClient, written: dict[str, set[str]]
) -> None:
    project = "projects/huge"
    assert http.post("/projects", json={"name": project}).status_code == 200
    r = http.post(
        f"/{project}/notes?noteId=signer",
        json={"attestation": {"hint": {"humanReadableName": "signer"}}},
    )
    assert r.status_code == 200
    body = big_occurrence(0, size=4 * MiB)
    body["noteName"] = f"{project}/notes/signer"
    r = http.post(f"/{project}/occurrences", json=body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]

    r = http.get(f"/{project}/occurrences")
    assert r.status_code == 413
    message = r.json()["error"]["message"]
    assert name in message and "more than one list page may carry" in message
    with pytest.raises(gexc.ResourceExhausted, match="more than one list page may carry"):
        list(grafeas.list_occurrences(parent=project))
    # It can still be read on its own.
    assert http.get(f"/{name}").status_code == 200
