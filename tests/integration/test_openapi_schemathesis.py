"""Schemathesis against the published OpenAPI document (issue 9 item 19): no 5xx, and every
answer conforms to the document — its status is declared, its content type is the declared
one, its body matches the declared schema (the Grafeas messages' schemas included).

The server is ``chainproof serve`` on loopback (tests/live.py) with a SQLite database seeded
with a project, notes, occurrences, an attestor and a policy, so that generated requests reach
real resources as well as missing ones. Every operation is run with positive and negative
examples, bounded (``SCHEMATHESIS_EXAMPLES``, default 12 per operation) and seeded, so the run
is the same each time and fits in ``make test``.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance, and for methods a path does not
serve unsupported_method and allow_header_conformance (405 with Allow). Not run: positive_data_acceptance
and negative_data_rejection, because the document describes the canonical form while the
server deliberately accepts more (snake_case names, enum numbers, v1alpha1 shapes) and refuses
more (cross-field rules a schema cannot say, such as a note that must exist).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from apps import unopened_app
from chainproof.config import load_settings
from live import LiveServer, live_server

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
#: SCHEMATHESIS_COVERAGE=1 adds schemathesis's coverage phase (boundary values of every
#: schema; thousands of cases: for a longer campaign, not for ``make test``).
COVERAGE = os.environ.get("SCHEMATHESIS_COVERAGE") == "1"
IMAGE = "gcr.io/acme/app@sha256:" + "a" * 64
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.unsupported_method,
    checks.allow_header_conformance,
]
#: What the run saw, for the figures (printed at the end with -s, and asserted on).
SEEN: Counter[str] = Counter()
#: Path parameters naming the seeded resources: each case is also sent with these, so that
#: generated bodies and queries reach real notes, occurrences and attestors, not only 404s.
PINNED: dict[str, str] = {"project": "p", "note_id": "qa", "attestor_id": "qa"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database: Path = tmp_path_factory.mktemp("schemathesis") / "chainproof.db"
    # No notifier: generated subscriptions name arbitrary URLs, which must not be called.
    with live_server(
        grpc_enabled=False,
        database_url=f"sqlite:///{database}",
        notifications={"enabled": False},
    ) as srv:
        _seed(srv.base_url)
        yield srv


def _seed(base: str) -> None:
    with httpx.Client(base_url=base + "/v1", timeout=30) as http:
        http.post("/projects", json={"name": "projects/p"}).raise_for_status()
        note = {"attestation": {"hint": {"humanReadableName": "qa"}}}
        http.post("/projects/p/notes?noteId=qa", json=note).raise_for_status()
        http.post(
            "/projects/p/notes?noteId=openssl", json={"package": {"name": "openssl"}}
        ).raise_for_status()
        occurrence = {
            "noteName": "projects/p/notes/openssl",
            "resourceUri": "https://" + IMAGE,
            "package": {"name": "openssl"},
        }
        created = http.post("/projects/p/occurrences", json=occurrence)
        created.raise_for_status()
        PINNED["occurrence_id"] = created.json()["name"].rsplit("/", 1)[1]
        attestor = {"userOwnedGrafeasNote": {"noteReference": "projects/p/notes/qa"}}
        http.post("/projects/p/attestors?attestorId=qa", json=attestor).raise_for_status()
        policy = {
            "defaultAdmissionRule": {
                "evaluationMode": "REQUIRE_ATTESTATION",
                "requireAttestationsBy": ["projects/p/attestors/qa"],
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        }
        http.put("/projects/p/policy", json=policy).raise_for_status()
        subscription = {"kinds": ["occurrence"], "nats": {"subject": "chainproof.p"}}
        http.post(
            "/projects/p/subscriptions?subscriptionId=qa", json=subscription
        ).raise_for_status()
        PINNED["subscription_id"] = "qa"


def _document() -> dict[str, Any]:
    # The document the server publishes, built from the same app code (no server needed to
    # collect one test per operation); the test itself calls the live server.
    app = unopened_app(load_settings(database_url="memory://", grpc_enabled=False))
    document: dict[str, Any] = app.openapi()
    return document


schema = schemathesis.openapi.from_dict(
    _document(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": 20261202,
            "generation": {"max-examples": EXAMPLES, "mode": "all"},
            "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
        }
    ),
)


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any, server: LiveServer) -> None:
    _send(case, server)
    pinned = {k: PINNED[k] for k in case.path_parameters or {} if k in PINNED}
    if pinned:
        case.path_parameters = {**case.path_parameters, **pinned}
        _send(case, server)


def _send(case: Any, server: LiveServer) -> None:
    response = case.call(base_url=server.base_url, timeout=30)
    SEEN["cases"] += 1
    SEEN[f"status {response.status_code // 100}xx"] += 1
    SEEN[f"{case.method} {response.status_code}"] += 1
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/projects/{project}/images/vulnerabilities", {"image": IMAGE}),
        ("/v1/projects/{project}/images:vulnerabilities", {"image": IMAGE}),
        ("/v1/projects/{project}/images/packages", {"image": IMAGE}),
        ("/v1/projects/{project}/packages/images", {"purl": "pkg:deb/debian/openssl@3.0"}),
        ("/v1/projects/{project}/registryEvidence", {"image": IMAGE}),
        ("/v1/projects/{project}/decisions", {}),
        ("/v1/projects/{project}/attestors", {}),
        ("/v1/projects/{project}/policy", {}),
        ("/v1/projects/{project}/occurrences", {}),
        ("/v1/projects/{project}/subscriptions", {}),
    ],
)
def test_seeded_resources_answer_as_documented(
    server: LiveServer, path: str, query: dict[str, str]
) -> None:
    # Queries generated at random rarely name the seeded image; these do.
    case = schema[path]["GET"].Case(path_parameters={"project": "p"}, query=query)
    response = case.call(base_url=server.base_url, timeout=30)
    assert response.status_code == 200, response.text
    case.validate_response(response, checks=CHECKS)


def test_the_document_served_is_the_one_tested(server: LiveServer) -> None:
    assert httpx.get(server.base_url + "/openapi.json").json() == _document()


def test_figures_of_the_run() -> None:
    # Runs after the parametrized test in this module (pytest keeps file order).
    print(f"\nschemathesis: {dict(SEEN)}")
    assert SEEN["cases"] > 0
    assert SEEN["status 5xx"] == 0
