"""Bad input is a 400 that says what was wrong, on every backend alike (issue 9 items 9, 12, 18).

Each request here was a 500 before (a RecursionError, an encoding error, a KeyError on an
unknown enum number, a PostgreSQL refusal of NUL or an out-of-range time) or was accepted and
stored as something no later step could handle (``severity: 999``, note ID ``..``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings

P = "/v1/projects/p"
HINT = {"attestation": {"hint": {"humanReadableName": "qa"}}}
IMAGE = "https://gcr.io/x/app@sha256:" + "0" * 64


@pytest.fixture(scope="module")
def client(backend_url: str) -> Iterator[TestClient]:
    app = build_app(load_settings(database_url=backend_url, grpc_enabled=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post(f"{P}/notes?noteId=edges-qa", json=HINT)
        c.post(f"{P}/notes?noteId=edges-vuln", json={"vulnerability": {"severity": "HIGH"}})
        yield c


def _bad(response: Any, fragment: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert fragment in body["message"], body["message"]


DEEP = b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        (f"{P}/notes?noteId=deep", DEEP, "too deeply"),
        (f"{P}/notes?noteId=deep2", b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", "64 levels"),
        ("/webhook/admission", DEEP, "too deeply"),
        (f"{P}/policy:evaluate", DEEP, "too deeply"),
        (
            f"{P}/notes?noteId=surrogate",
            b'{"shortDescription":"\\ud800","attestation":{"hint":{"humanReadableName":"x"}}}',
            "lone UTF-16 surrogate",
        ),
        (f"{P}/notes?noteId=nan", b'{"shortDescription": NaN}', "NaN is not a JSON value"),
        (f"{P}/notes?noteId=huge", b'{"x": 1e999}', "beyond the range"),
        (f"{P}/notes?noteId=digits", b'{"x": ' + b"9" * 5000 + b"}", "too long"),
    ],
)
def test_bodies_that_are_not_plain_json(
    client: TestClient, path: str, body: bytes, fragment: str
) -> None:
    method = client.put if path.endswith("/policy") else client.post
    _bad(method(path, content=body, headers={"content-type": "application/json"}), fragment)


def test_unknown_kind_number(client: TestClient) -> None:
    _bad(client.post(f"{P}/notes?noteId=k999", json={"kind": 999, **HINT}), "kind 999")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"vulnerability": {"severity": 999}}, "vulnerability.severity is 999"),
        ({"vulnerability": {"cvssVersion": -3}}, "vulnerability.cvssVersion is -3"),
    ],
)
def test_enum_numbers_outside_the_proto_are_refused_on_notes(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    _bad(client.post(f"{P}/notes?noteId=e999", json=body), fragment)


def test_enum_numbers_outside_the_proto_are_refused_on_occurrences(client: TestClient) -> None:
    occ = {
        "noteName": "projects/p/notes/edges-vuln",
        "resourceUri": IMAGE,
        "vulnerability": {
            "effectiveSeverity": 999,
            "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "zlib"}],
        },
    }
    _bad(client.post(f"{P}/occurrences", json=occ), "effectiveSeverity is 999")
    _bad(client.post(f"{P}/occurrences:batchCreate", json={"occurrences": [occ]}), "999")
    good = {**occ, "vulnerability": {**occ["vulnerability"], "effectiveSeverity": "LOW"}}
    created = client.post(f"{P}/occurrences", json=good)
    assert created.status_code == 200, created.text
    # An update cannot bring the number in either.
    name = created.json()["name"].rsplit("/", 1)[1]
    patched = client.patch(
        f"{P}/occurrences/{name}?updateMask=vulnerability.effectiveSeverity",
        json={"vulnerability": {"effectiveSeverity": 42}},
    )
    _bad(patched, "effectiveSeverity is 42")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"filter": 'resourceUrl="a\x00b"'}, "U+0000"),
        ({"filter": 'noteId="a\x00b"'}, "U+0000"),
        ({"filter": 'noteId="' + "x" * 3000 + '"'}, "at most 2048 bytes"),
    ],
)
def test_filter_values_are_bounded(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    _bad(client.get(f"{P}/occurrences", params=params), fragment)
    _bad(client.get(f"{P}/notes/edges-qa/occurrences", params=params), fragment)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"namespace": "a\x00b"}, "U+0000"),
        ({"image": "gcr.io/a\x00b"}, "U+0000"),
        ({"outcome": "x" * 3000}, "at most 2048 bytes"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "out of range"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "out of range"),
        ({"since": "yesterday"}, "not a time"),
    ],
)
def test_decision_queries_are_bounded(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    _bad(client.get(f"{P}/decisions", params=params), fragment)


def test_nul_in_judge_documents(client: TestClient) -> None:
    policy = {
        "description": "a\x00b",
        "defaultAdmissionRule": {
            "evaluationMode": "ALWAYS_DENY",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        },
    }
    _bad(client.put(f"{P}/policy", json=policy), "U+0000")
    attestor = {
        "description": "a\x00b",
        "userOwnedGrafeasNote": {"noteReference": "projects/p/notes/edges-qa"},
    }
    _bad(client.post(f"{P}/attestors?attestorId=nul", json=attestor), "U+0000")


def test_a_resource_uri_over_the_index_limit(client: TestClient) -> None:
    # Random-looking text does not compress, so PostgreSQL's B-tree refused it (a 500).
    import hashlib

    path = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(60))
    occ = {
        "noteName": "projects/p/notes/edges-qa",
        "resourceUri": f"https://gcr.io/x/{path}@sha256:" + "0" * 64,
        "attestation": {
            "serializedPayload": "eA==",
            "signatures": [{"signature": "eA==", "publicKeyId": "k"}],
        },
    }
    _bad(client.post(f"{P}/occurrences", json=occ), "at most 2048 bytes")


@pytest.mark.parametrize("note_id", [".", ".."])
def test_dot_ids_are_refused(client: TestClient, note_id: str) -> None:
    _bad(client.post(f"{P}/notes?noteId={note_id}", json=HINT), "path segments")
    _bad(
        client.post(f"{P}/notes:batchCreate", json={"notes": {note_id: HINT}}),
        "path segments",
    )
