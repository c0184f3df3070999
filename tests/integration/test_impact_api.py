"""Reverse impact over REST (``GET /v1/projects/{p}/impact``) on a served app: running
workloads affected by a CVE (through aliases, minus what VEX resolves), a purl (with and
without version), a key, an attestor and an image; each judged by the current policy; pages
with tokens that finish; bad questions refused with a 400 that names them; and the attacks:
another project's member gets 403, another project's admin sees none of this project's
workloads, and a project without clusters sees nothing rather than everyone's. Then policy
replay, diff and coverage on the same data (tests/impact_samples.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from impact_samples import (
    POLICY,
    PROPOSED,
    REG,
    A,
    B,
    C,
    D,
    E,
    P,
    Q,
    Writer,
    ok,
    record_admissions,
    seed,
)


@pytest.fixture(params=["memory", "sqlite"])
def served(
    request: pytest.FixtureRequest, tmp_path: Any
) -> Iterator[tuple[TestClient, MetadataStore]]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/cp.db"
    store = create_store(url)
    settings = load_settings(
        database_url=url, grpc_enabled=False, admission={"project": P, "cluster": "prod"}
    )
    with TestClient(build_app(settings, store), raise_server_exceptions=False) as client:
        yield client, store


def portal_writer(client: TestClient, store: MetadataStore) -> Writer:
    def write(work: Any) -> None:
        assert client.portal is not None
        client.portal.call(work, store)

    return write


@pytest.fixture
def seeded(served: tuple[TestClient, MetadataStore]) -> TestClient:
    client, store = served
    seed(client, portal_writer(client, store), ec.generate_private_key(ec.SECP256R1()))
    return client


def impact(
    client: TestClient, project: str = P, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    return client.get(f"/v1/projects/{project}/impact", params=params, headers=headers or {})


def test_a_cve_names_the_running_workloads_and_their_verdicts(seeded: TestClient) -> None:
    page = ok(impact(seeded, cve="cve-2026-1111"))
    assert page["clusters"] == ["prod"]
    assert [i["image"] for i in page["images"]] == [A, E]
    api, edge = page["images"]
    (web,) = api["workloads"]
    assert (web["cluster"], web["namespace"], web["workload"], web["container"]) == (
        "prod",
        "shop",
        "Deployment/api",
        "app",
    )
    assert web["pods"] == 2 and web["since"] == "2026-11-01T12:05:00Z"
    assert web["verdict"] == "denied" and web["denied"]
    assert any("GHSA-AAAA-BBBB-CCCC" in r.upper() for r in web["reasons"]), web["reasons"]
    assert edge["workloads"][0]["verdict"] == "allowed"  # ALWAYS_ALLOW in namespace edge
    # B's finding is resolved by VEX; C runs nowhere.
    assert [v["image"] for v in page["resolvedByVex"]] == [B]
    assert page["notRunning"] == 1
    assert page["complete"] and page["nextPageToken"] == ""
    assert page["deniedWorkloads"] == 1 and page["affectedWorkloads"] == 2
    # The GHSA finds the same finding of A (filed under it).
    assert [i["image"] for i in ok(impact(seeded, cve="GHSA-aaaa-bbbb-cccc"))["images"]] == [A]


def test_pages_follow_tokens_to_the_end(seeded: TestClient) -> None:
    first = ok(impact(seeded, cve="CVE-2026-1111", pageSize=1))
    assert [i["image"] for i in first["images"]] == [A] and not first["complete"]
    second = ok(impact(seeded, cve="CVE-2026-1111", pageSize=1, pageToken=first["nextPageToken"]))
    assert [i["image"] for i in second["images"]] == [E]
    rest = second
    while not rest["complete"]:
        rest = ok(impact(seeded, cve="CVE-2026-1111", pageSize=1, pageToken=rest["nextPageToken"]))
        assert rest["images"] == []
    # A token belongs to its question: moved to another, it is refused.
    r = impact(seeded, cve="CVE-2026-9999", pageToken=first["nextPageToken"])
    assert r.status_code == 400


def test_purl_key_attestor_and_image(seeded: TestClient) -> None:
    any_version = ok(impact(seeded, purl="pkg:npm/left-pad"))
    assert [i["image"] for i in any_version["images"]] == [A, D]
    exact = ok(impact(seeded, purl="pkg:npm/left-pad@2.0.0"))
    assert [i["image"] for i in exact["images"]] == [D]
    assert exact["images"][0]["because"] == ["pkg:npm/left-pad@2.0.0"]
    by_key = ok(impact(seeded, key="release-key"))
    assert [i["image"] for i in by_key["images"]] == [D]
    assert "key release-key" in by_key["images"][0]["because"][0]
    by_attestor = ok(impact(seeded, attestor=f"projects/{P}/attestors/release"))
    assert [i["image"] for i in by_attestor["images"]] == [D]
    by_image = ok(impact(seeded, image=B))
    assert [w["workload"] for w in by_image["images"][0]["workloads"]] == ["Deployment/batch"]
    assert ok(impact(seeded, image=C))["images"] == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "exactly one of"),
        ({"cve": "CVE-1", "purl": "pkg:npm/x"}, "exactly one of"),
        ({"cve": "'; drop table--"}, "not a vulnerability ID"),
        ({"purl": "npm/left-pad"}, "purl"),
        ({"image": f"{REG}/api:1"}, "names no digest"),
        ({"attestor": "projects/other/attestors/x"}, "ask in its own project"),
        ({"attestor": "release"}, "projects/"),
        ({"cve": "CVE-2026-1111", "pageSize": "-1"}, "pageSize"),
        ({"cve": "CVE-2026-1111", "pageToken": "garbage"}, "pageToken"),
    ],
)
def test_bad_questions_are_400_naming_them(
    seeded: TestClient, params: dict[str, str], says: str
) -> None:
    r = impact(seeded, **params)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"]


def test_unknown_key_or_attestor_is_404(seeded: TestClient) -> None:
    assert impact(seeded, key="nobody").status_code == 404
    assert impact(seeded, attestor=f"projects/{P}/attestors/ghost").status_code == 404


def token(client: TestClient, project: str, name: str, role: str) -> dict[str, str]:
    made = ok(client.post(f"/v1/projects/{project}/tokens", json={"name": name, "role": role}))
    return {"Authorization": f"Bearer {made['secret']}"}


def test_other_projects_see_nothing_of_this_one(seeded: TestClient) -> None:
    outsider = token(seeded, Q, "q-admin", "roles/chainproof.admin")
    # Asking in this project: refused, naming the missing permission.
    r = impact(seeded, P, outsider, cve="CVE-2026-1111")
    assert r.status_code == 403 and "chainproof.workloads.list" in r.text
    # Asking in its own project, where the same CVE is recorded about an image that runs in
    # this project's cluster: no cluster is Q's, so nothing runs there.
    page = ok(impact(seeded, Q, outsider, cve="CVE-2026-1111"))
    assert page["clusters"] == [] and page["images"] == []
    assert "api" not in str(page["images"]) and "shop" not in str(page)


def test_each_read_needs_its_permission(seeded: TestClient) -> None:
    viewer = token(seeded, P, "viewer", "roles/chainproof.viewer")
    assert [i["image"] for i in ok(impact(seeded, P, viewer, cve="CVE-2026-1111"))["images"]] == [
        A,
        E,
    ]
    workloads_only = token(seeded, P, "wl", "roles/chainproof.workloadsViewer")
    r = impact(seeded, P, workloads_only, cve="CVE-2026-1111")
    assert r.status_code == 403 and "containeranalysis.occurrences.list" in r.text
    no_attestors = token(seeded, P, "occ", "roles/containeranalysis.occurrences.viewer")
    r = impact(seeded, P, no_attestors, key="release-key")
    assert r.status_code == 403


@pytest.fixture
def replayable(served: tuple[TestClient, MetadataStore]) -> TestClient:
    client, store = served
    seed(client, portal_writer(client, store), ec.generate_private_key(ec.SECP256R1()))
    record_admissions(portal_writer(client, store))
    return client


def test_replay_names_what_changes_and_why(replayable: TestClient) -> None:
    report = ok(
        replayable.post(f"/v1/projects/{P}/policy:replay", json={"policy": PROPOSED, "since": "7d"})
    )
    # 3 admissions in the window (the stale one is older) and 5 running pods.
    assert (report["admissions"], report["running"], report["judged"]) == (3, 5, 8)
    changed = {
        (c["source"], c["ref"] if c["source"] == "running" else c["workload"]): c
        for c in report["changes"]
    }
    assert set(changed) == {
        ("admission", "Deployment/edge-app"),
        ("admission", "Pod/old"),
        ("admission", "Deployment/shop-app"),
        ("running", "prod/edge/edge-1"),
        ("running", "prod/shop/api-1"),
        ("running", "prod/shop/api-2"),
    }, report["changes"]
    edge = changed[("running", "prod/edge/edge-1")]
    assert (edge["before"], edge["after"]) == ("allowed", "denied")
    (why,) = edge["images"]
    assert why["ruleBefore"] == "namespace[edge]" and why["ruleAfter"] == "default"
    assert any("CVE-2026-1111" in r for r in why["nowFailing"])
    assert changed[("admission", "Deployment/edge-app")]["recorded"] == "allowed"
    api = changed[("running", "prod/shop/api-1")]
    assert (api["before"], api["after"]) == ("denied", "allowed")
    assert api["images"][0]["ruleAfter"].startswith("allowlist")
    assert any("GHSA-" in r.upper() for r in api["images"][0]["nowPassing"])
    assert report["byTransition"] == {"allowed->denied": 3, "denied->allowed": 3}
    assert report["changed"] == 6 and not report["changesTruncated"]
    # Nothing was enforced or stored: the stored policy is the one it was.
    assert "kubernetesNamespaceAdmissionRules" in ok(replayable.get(f"/v1/projects/{P}/policy"))
    # Without the running pods, only the admissions.
    admissions_only = ok(
        replayable.post(
            f"/v1/projects/{P}/policy:replay", json={"policy": PROPOSED, "running": False}
        )
    )
    assert (admissions_only["running"], admissions_only["changed"]) == (0, 3)


def test_diff_and_coverage(replayable: TestClient) -> None:
    report = ok(replayable.post(f"/v1/projects/{P}/policy:diff", json={"a": POLICY, "b": PROPOSED}))
    rules = {(r["rule"], r["change"]) for r in report["ruleChanges"]}
    assert ("kubernetesNamespaceAdmissionRules[edge]", "removed") in rules
    assert ("admissionWhitelistPatterns", "changed") in rules
    shifts = {(s["kind"], s["name"]): s for s in report["coverageShifts"]}
    assert shifts[("namespace", "edge")]["ruleAfter"] == "defaultAdmissionRule"
    assert shifts[("image", A)]["ruleAfter"].startswith("admissionWhitelistPatterns")
    assert report["changed"] == 6
    same = ok(replayable.post(f"/v1/projects/{P}/policy:diff", json={"a": POLICY, "b": POLICY}))
    assert same["changed"] == 0 and same["ruleChanges"] == [] and same["coverageShifts"] == []

    coverage = ok(replayable.get(f"/v1/projects/{P}/policy:coverage"))
    uncovered = {(i["kind"], i["name"]): i for i in coverage["items"]}
    assert ("namespace", "shop") in uncovered and ("namespace", "edge") not in uncovered
    assert uncovered[("service-account", "shop:runner")]["rule"] == "defaultAdmissionRule"
    assert ("image", A) in uncovered and ("image", E) not in uncovered
    everything = ok(replayable.get(f"/v1/projects/{P}/policy:coverage", params={"all": "true"}))
    assert everything["total"] == len(everything["items"]) > coverage["uncovered"]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("policy:replay", {}, "policy must be a policy object"),
        ("policy:replay", {"policy": PROPOSED, "since": "forever"}, "neither an age"),
        ("policy:replay", {"policy": PROPOSED, "since": "999d"}, "more than 366 days"),
        ("policy:replay", {"policy": PROPOSED, "running": "yes"}, "running must be"),
        (
            "policy:replay",
            {"policy": {"defaultAdmissionRule": {"evaluationMode": "MAYBE"}}},
            "policy",
        ),
        ("policy:replay", {"policy": PROPOSED, "extra": 1}, "unknown fields extra"),
        ("policy:diff", {"a": POLICY}, "b must be a policy object"),
    ],
)
def test_bad_replay_input_is_400(replayable: TestClient, path: str, body: Any, says: str) -> None:
    r = replayable.post(f"/v1/projects/{P}/{path}", json=body)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"]


def test_replay_needs_the_reads_it_makes(replayable: TestClient) -> None:
    evaluator = token(replayable, P, "evaluator", "roles/binaryauthorization.policyEvaluator")
    r = replayable.post(
        f"/v1/projects/{P}/policy:replay", json={"policy": PROPOSED}, headers=evaluator
    )
    assert r.status_code == 403 and "chainproof.decisions.list" in r.text
    outsider = token(replayable, Q, "q-admin", "roles/chainproof.admin")
    r = replayable.post(
        f"/v1/projects/{P}/policy:replay", json={"policy": PROPOSED}, headers=outsider
    )
    assert r.status_code == 403
    # In its own project Q replays nothing of P's: no admissions, no clusters.
    mine = ok(
        replayable.post(
            f"/v1/projects/{Q}/policy:replay", json={"policy": PROPOSED}, headers=outsider
        )
    )
    assert (mine["admissions"], mine["running"], mine["changes"]) == (0, 0, [])
