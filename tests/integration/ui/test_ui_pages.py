"""Every dashboard page over plain HTTP: status, security headers, escaping, CSRF, filters."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainproof.api.ui.security import CONTENT_SECURITY_POLICY, CSRF_COOKIE
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore
from integration.ui.story import (
    ATTESTOR,
    HOSTILE,
    IMAGE,
    KEY_ID,
    OTHER,
    POLICY_PROJECT,
    VEX_CVE,
    admission_review,
    attest,
    ok,
    run_workload,
    seed,
)

PAGES = [
    "/",
    "/images",
    "/images?image=payment&sort=severity&order=desc",
    f"/image?ref={IMAGE}",
    f"/image?ref={OTHER}",
    "/decisions",
    "/decisions?outcome=denied&namespace=default",
    "/policy",
    "/policy/rule?rule=default",
    "/impact?q=CVE-2019-1549",
    "/signin",
]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = load_settings(grpc_enabled=False, admission={"project": POLICY_PROJECT})
    with TestClient(build_app(settings, MemoryStore()), raise_server_exceptions=False) as c:
        signer = seed(c)
        ok(c.post("/webhook/admission", json=admission_review()))  # denied: recorded
        c.app.state.signer = signer  # type: ignore[attr-defined]
        _wait_for_decisions(c, 1)
        yield c


def _wait_for_decisions(c: TestClient, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(ok(c.get(f"/v1/projects/{POLICY_PROJECT}/decisions"))["decisions"]) < n:
        assert time.monotonic() < deadline, "decision log did not flush"
        time.sleep(0.05)


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_strict_headers(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    # No inline script or style anywhere: the CSP would block them, so none may be relied on.
    assert "<style" not in r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert not re.search(r"<[a-z][^>]*\sstyle=", r.text)
    assert not re.search(r"<[a-z][^>]*\son[a-z]+=", r.text)


def test_loopback_local_mode_needs_no_sign_in(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200  # no redirect to /signin
    assert ">local mode<" in page.text
    assert 'id="local-mode"' in client.get("/signin").text


def test_hostile_names_are_escaped(client: TestClient) -> None:
    r = client.get(f"/image?ref={OTHER}")
    assert HOSTILE not in r.text
    assert "&lt;script&gt;alert(" in r.text
    assert "<img src=x" not in r.text


def test_unattested_image_is_denied_naming_the_attestor(client: TestClient) -> None:
    page = client.get(f"/image?ref={IMAGE}").text
    assert 'id="verdict-outcome">denied<' in page
    assert f"no attestation by {ATTESTOR}" in page
    images = client.get("/images", params={"missing": ATTESTOR}).text
    assert IMAGE in images
    assert client.get("/images", params={"present": ATTESTOR}).text.count(IMAGE) == 0


def test_vulnerabilities_show_their_vex_state(client: TestClient) -> None:
    page = client.get(f"/image?ref={IMAGE}").text
    assert VEX_CVE in page and "NOT_AFFECTED" in page
    assert "payment never calls the affected code" in page
    assert "CVE-2019-1549" in page
    # Packages searchable by name and purl.
    pkgs = client.get("/image", params={"ref": IMAGE, "pkg": "libssl"}).text
    section = pkgs.split('id="packages"', 1)[1]
    assert "libssl1.1" in section and "libcrypto1.1" not in section
    # Reverse impact from a CVE and from a purl prefix.
    assert IMAGE in client.get("/impact", params={"q": "CVE-2019-1549"}).text
    assert IMAGE in client.get("/impact", params={"q": "pkg:apk/alpine/libssl1.1"}).text
    assert "No image is affected" in client.get("/impact", params={"q": "CVE-1999-0001"}).text


def test_filters_by_severity_and_decision(client: TestClient) -> None:
    medium = client.get("/images", params={"severity": "MEDIUM"}).text
    assert IMAGE in medium and OTHER not in medium
    assert IMAGE not in client.get("/images", params={"severity": "CRITICAL"}).text
    denied = client.get("/images", params={"decision": "denied"}).text
    assert IMAGE in denied and OTHER not in denied
    r = client.get("/images", params={"sort": "bogus"})
    assert r.status_code == 400 and "expected one of" in r.text


def test_decisions_log_filters_and_explanation(client: TestClient) -> None:
    page = client.get("/decisions", params={"outcome": "denied"}).text
    link = re.search(r'href="(/decisions/[0-9a-f]{16}-[0-9a-f]{16})"', page)
    assert link, page
    assert "No decision matches" in client.get("/decisions", params={"outcome": "allowed"}).text
    assert "No decision matches" in client.get("/decisions", params={"namespace": "kube"}).text
    detail = client.get(link.group(1)).text
    assert "DENIED" in detail and f"no attestation by {ATTESTOR}" in detail
    assert client.get("/decisions", params={"since": "yesterday"}).status_code == 400
    assert client.get("/decisions/not-an-id").status_code == 400
    assert client.get("/decisions/0000000000000001-0000000000000000").status_code == 404


def test_policy_save_needs_the_csrf_token(client: TestClient) -> None:
    page = client.get("/policy").text
    assert ATTESTOR in page and KEY_ID in page
    form = {
        "defaultAdmissionRule": '{"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}'
    }
    refused = client.post("/policy", data=form)
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = client.post("/policy", data={**form, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    # A token made for another browser's cookie does not fit this one.
    token = csrf_token(page)
    other = TestClient(client.app)
    other.cookies.set(CSRF_COOKIE, "a" * 64)
    assert other.post("/policy", data={**form, "csrf_token": token}).status_code == 403
    cross = client.post(
        "/policy", data={**form, "csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert (
        "REQUIRE_ATTESTATION"
        in ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))["defaultAdmissionRule"][
            "evaluationMode"
        ]
    )


def test_policy_errors_are_shown_at_the_field(client: TestClient) -> None:
    token = csrf_token(client.get("/policy").text)
    r = client.post(
        "/policy",
        data={
            "csrf_token": token,
            "defaultAdmissionRule": '{"evaluationMode": "REQUIRE", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}',
            "clusterAdmissionRules": "{not json",
        },
    )
    assert r.status_code == 400
    assert 'id="e-clusterAdmissionRules"' in r.text and "not JSON" in r.text
    r = client.post(
        "/policy",
        data={
            "csrf_token": token,
            "defaultAdmissionRule": '{"evaluationMode": "REQUIRE", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}',
        },
    )
    assert r.status_code == 400
    field = r.text.split('id="e-defaultAdmissionRule"', 1)[1].split("</ul>", 1)[0]
    assert "defaultAdmissionRule.evaluationMode" in field
    assert 'aria-invalid="true"' in r.text


def test_story_after_attestation_and_valid_save(client: TestClient) -> None:
    attest(client, client.app.state.signer)  # type: ignore[attr-defined]
    page = client.get(f"/image?ref={IMAGE}").text
    assert 'id="verdict-outcome">allowed<' in page
    assert KEY_ID in page
    assert IMAGE in client.get("/images", params={"present": ATTESTOR}).text
    token = csrf_token(client.get("/policy").text)
    current = ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))
    r = client.post(
        "/policy",
        data={
            "csrf_token": token,
            "etag": current["etag"],
            "defaultAdmissionRule": json.dumps(
                {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY",
                    "requireAttestationsBy": [ATTESTOR],
                }
            ),
        },
    )
    assert r.status_code == 200 and "Saved." in r.text, r.text
    saved = ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))
    assert saved["defaultAdmissionRule"]["enforcementMode"] == "DRYRUN_AUDIT_LOG_ONLY"
    # The old etag is stale now: a second save with it is refused, not silently applied.
    r = client.post(
        "/policy",
        data={"csrf_token": token, "etag": current["etag"], "description": "late"},
    )
    assert r.status_code == 400


def test_static_files_and_unknown_names(client: TestClient) -> None:
    assert client.get("/static/htmx.min.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../bootstrap.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


SBOM_FIXTURE = Path(__file__).parents[2] / "fixtures" / "ingest" / "sbom" / "small-spdx.json"


def test_sbom_download_is_the_stored_document(client: TestClient) -> None:
    raw = SBOM_FIXTURE.read_bytes()
    ok(
        client.post(
            "/v1/projects/scans:ingest",
            params={"resourceUri": IMAGE, "format": "spdx-json"},
            content=raw,
        )
    )
    page = client.get(f"/image?ref={IMAGE}").text
    link = re.search(r'href="(/sbom/scans/sha256:[0-9a-f]{64})" download', page)
    assert link, page.split('id="pkgs"', 1)[1][:2000]
    r = client.get(link.group(1))
    assert r.status_code == 200
    assert r.content == raw  # byte for byte what was ingested
    assert r.headers["content-type"] == "application/spdx+json"
    assert r.headers["content-disposition"].startswith('attachment; filename="sbom-')
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(raw).hexdigest() in link.group(1)


def test_sbom_download_refuses_what_is_not_a_stored_sbom(client: TestClient) -> None:
    assert client.get("/sbom/scans/sha256:" + "0" * 64).status_code == 404
    assert client.get("/sbom/scans/md5:abc").status_code == 400
    # A stored document that is not an SBOM (a VEX, a scan report) is not served here.
    vex = json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/1",
            "author": "qa",
            "timestamp": "2026-11-01T00:00:00Z",
            "version": 1,
            "statements": [
                {
                    "vulnerability": {"name": "CVE-2020-0001"},
                    "products": [{"@id": IMAGE}],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_present",
                }
            ],
        }
    ).encode()
    ok(client.post("/v1/projects/scans:ingest", params={"resourceUri": IMAGE}, content=vex))
    r = client.get(f"/sbom/scans/sha256:{hashlib.sha256(vex).hexdigest()}")
    assert r.status_code == 404 and "not an SBOM" in r.text


def test_rule_editor_shows_the_rule_field_by_field(client: TestClient) -> None:
    page = client.get("/policy", params={}).text
    assert 'href="/policy/rule?rule=default"' in page
    r = client.get("/policy/rule", params={"rule": "default"})
    assert r.status_code == 200
    assert '<option value="REQUIRE_ATTESTATION" selected>' in r.text
    assert f'value="{ATTESTOR}" checked' in r.text
    assert 'id="r-check-freshness"' in r.text and 'id="r-check-vulnerabilities"' in r.text
    bad = client.get("/policy/rule", params={"rule": "nowhere/x"})
    assert bad.status_code == 400 and "expected default or GROUP/KEY" in bad.text


def _rule_form(client: TestClient, **fields: Any) -> dict[str, Any]:
    page = client.get("/policy/rule", params={"rule": fields.get("rule", "default")}).text
    etag = re.search(r'name="etag" value="([^"]*)"', page)
    assert etag
    return {"csrf_token": csrf_token(page), "etag": etag.group(1), **fields}


def test_rule_editor_errors_land_at_their_check(client: TestClient) -> None:
    before = ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))
    form = _rule_form(
        client,
        evaluationMode="REQUIRE_ATTESTATION",
        enforcementMode="ENFORCED_BLOCK_AND_AUDIT_LOG",
        requireAttestationsBy=[ATTESTOR],
        **{
            "check-freshness": '{"maximumScanAgeHours": -3}',
            "check-vulnerabilities": "{oops",
        },
    )
    r = client.post("/policy/rule", data=form)
    assert r.status_code == 400
    # Not JSON: caught before the parser, at its box.
    assert "vulnerabilities: not JSON" in r.text.split('id="e-check-vulnerabilities"', 1)[1]
    form["check-vulnerabilities"] = ""
    r = client.post("/policy/rule", data=form)
    assert r.status_code == 400
    at_field = r.text.split('id="e-check-freshness"', 1)[1].split("</ul>", 1)[0]
    assert "chainproofChecks.freshness.maximumScanAgeHours" in at_field
    assert "must be greater than 0" in at_field
    assert 'id="r-check-freshness"' in r.text and 'aria-invalid="true"' in r.text
    # What was typed stays in the form.
    assert "maximumScanAgeHours&#34;: -3" in r.text or "maximumScanAgeHours&quot;: -3" in r.text
    # An attestor a rule may not name under ALWAYS_ALLOW: at the attestors field.
    form.update({"evaluationMode": "ALWAYS_ALLOW", "check-freshness": ""})
    r = client.post("/policy/rule", data=form)
    assert r.status_code == 400
    assert "only allowed with evaluationMode" in r.text.split('id="e-requireAttestationsBy"', 1)[1]
    assert ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))["etag"] == before["etag"]


def test_rule_editor_saves_a_new_namespace_rule(client: TestClient) -> None:
    rule = "kubernetesNamespaceAdmissionRules/payments"
    form = _rule_form(
        client,
        rule=rule,
        evaluationMode="REQUIRE_ATTESTATION",
        enforcementMode="ENFORCED_BLOCK_AND_AUDIT_LOG",
        requireAttestationsBy=[ATTESTOR],
        **{"check-freshness": '{"maximumScanAgeHours": 24}'},
    )
    assert client.post("/policy/rule", data={**form, "csrf_token": ""}).status_code == 403
    r = client.post("/policy/rule", data=form)
    assert r.status_code == 200 and "Saved." in r.text, r.text
    saved = ok(client.get(f"/v1/projects/{POLICY_PROJECT}/policy"))
    got = saved["kubernetesNamespaceAdmissionRules"]["payments"]
    assert got["chainproofChecks"] == {"freshness": {"maximumScanAgeHours": 24}}
    assert got["requireAttestationsBy"] == [ATTESTOR]
    assert "defaultAdmissionRule" in saved  # the rest of the policy is kept
    # The form's etag is stale now: saving it again is refused, not applied over.
    assert client.post("/policy/rule", data=form).status_code == 400


def test_running_workloads_on_every_page_that_asks_what_runs(client: TestClient) -> None:
    before = re.search(
        r'<span class="num">(\d+)</span><span>running workloads', client.get("/").text
    )
    assert before and before.group(1) == "0"
    assert "not running" in client.get("/images", params={"image": "payment"}).text
    run_workload(client, IMAGE)
    run_workload(client, IMAGE, pod="payment-7c9d-2")  # a second pod of the same workload
    run_workload(client, IMAGE, cluster="edge-1", namespace="pos", workload="till", pod="till-0")
    try:
        overview = client.get("/").text
        assert '<span class="num">2</span><span>running workloads' in overview
        assert "open violations" in overview
        images = client.get("/images", params={"image": "payment"}).text
        assert "2 workloads</a> in prod-eu, edge-1" in images or (
            "2 workloads</a> in edge-1, prod-eu" in images
        )
        detail = client.get("/image", params={"ref": IMAGE}).text
        section = detail.split('id="running"', 1)[1].split("</section>", 1)[0]
        assert "3 running containers" in section
        for text in ("prod-eu", "payments", "Deployment/payment", "payment-7c9d-2", "edge-1"):
            assert text in section
        assert "2026-11-30T09:15:00Z" in section
        impact = client.get("/impact", params={"q": "CVE-2019-1549"}).text
        running = impact.split("Affected running workloads", 1)[1]
        assert "Deployment/till" in running and "pos" in running
        # An image that runs nowhere says so.
        other = client.get("/image", params={"ref": OTHER}).text
        assert "0 running containers" in other.split('id="running"', 1)[1]
    finally:
        _close_workloads(client)


def _close_workloads(client: TestClient) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from chainproof.domain.inventory import InventoryChanges
    from chainproof.store.runtime_port import InventoryQuery

    async def close() -> None:
        async with client.app.state.services.store.session() as s:  # type: ignore[attr-defined]
            rows = await s.inventory.list_rows(InventoryQuery(), 100)
            now = datetime.now(UTC)
            await s.inventory.write(
                InventoryChanges(closed=tuple(replace(r, until=now) for r in rows))
            )

    client.portal.call(close)  # type: ignore[attr-defined]


def test_images_page_by_keyset_and_bad_positions_are_refused(client: TestClient) -> None:
    first = client.get("/images", params={"sort": "image"}).text
    assert "Next" not in first  # two images: one page
    r = client.get("/images", params={"sort": "image", "after": "not-a-position"})
    assert r.status_code == 400 and "is not a position of this list" in r.text
    for bad in ({"severity": "HUGE"}, {"decision": "maybe"}, {"order": "sideways"}):
        r = client.get("/images", params=bad)
        assert r.status_code == 400 and "expected" in r.text
    assert client.get("/impact", params={"q": "x" * 600}).status_code == 400
