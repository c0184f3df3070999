"""The sources of registry evidence recorded in the scribe, over REST:
``GET /v1/projects/{p}/registryEvidence/{occurrence_id}`` and ``…/registryEvidence?image=``.

The documents are written here as the recorder writes them (same collection and fields; the
recorder itself, against a real registry, is tests/integration/test_registry_recording.py,
which reads its documents back through the same service). Who may read them is the
authorization matrix's (tests/integration/test_authorization_matrix.py, generated from the
route table).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.services.scribe.registry_recording import RECORDS
from chainproof.store.judge import DocumentRecord
from chainproof.store.memory import MemoryStore

IMAGE = "registry.example/team/app@sha256:" + "c" * 64
OTHER = "registry.example/team/other@sha256:" + "d" * 64
SIG = "registry.example/team/app@sha256:" + "5" * 64
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _occurrence(client: TestClient, image: str) -> str:
    body = {
        "noteName": "projects/sec/notes/release",
        "resourceUri": image,
        "attestation": {
            "serializedPayload": "e30=",
            "signatures": [{"publicKeyId": "k", "signature": "c2ln"}],
        },
    }
    r = client.post("/v1/projects/app/occurrences", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["name"]).rsplit("/", 1)[1]


@pytest.fixture
def served() -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = MemoryStore()
    app = build_app(load_settings(grpc_enabled=False), store)
    with TestClient(app, raise_server_exceptions=False) as client:
        note = {"attestation": {"hint": {"humanReadableName": "release"}}}
        assert client.post("/v1/projects/sec/notes?noteId=release", json=note).status_code == 200
        ids = {
            "recorded": _occurrence(client, IMAGE),
            "by-hand": _occurrence(client, IMAGE),  # filed by someone: no registry source
            "other": _occurrence(client, OTHER),
        }

        async def record() -> None:
            async with store.session() as s:
                for key, image in (("recorded", IMAGE), ("other", OTHER)):
                    data = {
                        "occurrence": f"projects/app/occurrences/{ids[key]}",
                        "resource": image,
                        "attestor": "projects/sec/attestors/release",
                        "source": SIG,
                        "layer": "sha256:" + "1" * 64,
                        "recordedAt": "2026-12-02T06:00:00Z",
                    }
                    await s.documents.put(
                        DocumentRecord("app", RECORDS, ids[key], data, "", NOW, NOW)
                    )

        assert client.portal is not None
        client.portal.call(record)
        yield client, ids


def test_one_occurrences_source_by_its_id(served):
    client, ids = served
    r = client.get(f"/v1/projects/app/registryEvidence/{ids['recorded']}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": f"projects/app/registryEvidence/{ids['recorded']}",
        "occurrence": f"projects/app/occurrences/{ids['recorded']}",
        "resource": IMAGE,
        "attestor": "projects/sec/attestors/release",
        "source": SIG,
        "layer": "sha256:" + "1" * 64,
        "recordedAt": "2026-12-02T06:00:00Z",
    }
    missing = client.get(f"/v1/projects/app/registryEvidence/{ids['by-hand']}")
    assert missing.status_code == 404
    assert "was not recorded from a registry" in missing.json()["message"]
    # Another project's document is not this project's.
    assert (
        client.get(f"/v1/projects/elsewhere/registryEvidence/{ids['recorded']}").status_code == 404
    )


def test_every_source_of_an_image_by_digest(served):
    client, ids = served
    r = client.get("/v1/projects/app/registryEvidence", params={"image": IMAGE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == IMAGE
    assert [d["occurrence"] for d in body["registryEvidence"]] == [
        f"projects/app/occurrences/{ids['recorded']}"
    ]
    # The same image spelled with https:// and a tag beside the digest is the same image.
    spelled = client.get(
        "/v1/projects/app/registryEvidence",
        params={"image": "https://registry.example/team/app:1.0@sha256:" + "c" * 64},
    )
    assert (
        spelled.status_code == 200
        and spelled.json()["registryEvidence"] == body["registryEvidence"]
    )
    none = client.get("/v1/projects/elsewhere/registryEvidence", params={"image": IMAGE})
    assert none.status_code == 200 and none.json()["registryEvidence"] == []


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        (
            "/v1/projects/app/registryEvidence",
            {"image": "registry.example/team/app:1.0"},
            "names no digest",
        ),
        ("/v1/projects/app/registryEvidence", {}, "image is required"),
        ("/v1/projects/app/registryEvidence", {"image": "::not an image::"}, "image"),
        ("/v1/projects/app/registryEvidence/a%20b", {}, "occurrence ID"),
        ("/v1/projects/-bad-/registryEvidence/x", {}, "project"),
    ],
)
def test_bad_requests_are_400s_that_say_what_was_wrong(served, path, params, says):
    client, _ids = served
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert says in r.json()["message"], r.text
