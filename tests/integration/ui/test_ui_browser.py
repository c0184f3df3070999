"""The seed story in a real browser against a live server: an unattested image is denied with
the missing attestor named; once QA's attestation is uploaded it is allowed with the key that
signed it; the scan's findings show their VEX state; search and filters land in the URL; the
policy editor shows errors at the field; a form without its CSRF token is refused. No page
breaks the Content-Security-Policy, dark mode follows the system, and the keyboard reaches
everything from a skip link.

Screenshots go to the test's temporary folder, or to ``$CHAINPROOF_UI_SCREENSHOTS`` (the
README's come from ``CHAINPROOF_UI_SCREENSHOTS=docs/img``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chainproof.api.ui.session import SESSION_COOKIE, SIGNIN_COOKIE
from integration.ui.browser import CHROMIUM, FLAGS, ensure_browser
from integration.ui.story import (
    ATTESTOR,
    IMAGE,
    KEY_ID,
    POLICY_PROJECT,
    VEX_CVE,
    admission_review,
    attest,
    ok,
    seed,
)
from integration.ui.test_ui_signin import ADMIN, SBOM, sign_in_settings
from live import live_server
from oidc_issuer import running_issuer


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ensure_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def _shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("CHAINPROOF_UI_SCREENSHOTS", "") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_seed_story_in_the_browser(browser: Any, tmp_path: Path) -> None:
    shots = _shots(tmp_path)
    with (
        live_server(
            grpc_enabled=False, admission={"project": POLICY_PROJECT, "cluster": "prod-eu"}
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as api,
    ):
        signer = seed(api)
        answer = ok(api.post("/webhook/admission", json=admission_review()))
        assert answer["response"]["allowed"] is False
        deadline = time.monotonic() + 10
        while not ok(api.get(f"/v1/projects/{POLICY_PROJECT}/decisions"))["decisions"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("pageerror", lambda e: violations.append(str(e)))

        # Overview.
        page.goto(srv.base_url + "/")
        assert page.locator("h1").inner_text() == "Overview"
        assert "images" in page.locator(".cards").inner_text()
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        # Keyboard: the first Tab reaches the skip link, Enter moves to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"

        # Images: typing in the search box filters (htmx) and puts the filter in the URL.
        page.goto(srv.base_url + "/images")
        page.fill("#f-image", "payment")
        page.wait_for_url("**/images?*image=payment*")
        rows = page.locator("#results tbody tr")
        assert rows.count() == 1
        assert "denied" in rows.first.inner_text()
        assert "missing" in rows.first.inner_text()
        page.select_option("select[name=severity]", "MEDIUM")
        page.wait_for_url("**severity=MEDIUM*")
        assert page.locator("#results tbody tr").count() == 1
        page.screenshot(path=str(shots / "images.png"), full_page=True)
        # The shared link gives the same view.
        shared = page.url
        page.goto(shared)
        assert page.locator("select[name=severity]").input_value() == "MEDIUM"

        # Image detail: denied, naming the attestor.
        page.click(f"a:has-text('{IMAGE}')")
        page.wait_for_url("**/image?ref=*")
        assert page.locator("#verdict-outcome").inner_text() == "denied"
        assert f"no attestation by {ATTESTOR}" in page.locator(".reqs").inner_text()
        vex_row = page.locator("#findings tr", has_text=VEX_CVE).first
        assert "NOT_AFFECTED" in vex_row.inner_text()
        assert "closed" in (vex_row.get_attribute("class") or "")
        # Package search inside the page.
        page.fill("#f-pkg", "libssl")
        page.wait_for_url("**pkg=libssl*")
        assert "libcrypto1.1" not in page.locator("#packages").inner_text()
        assert "libssl1.1" in page.locator("#packages").inner_text()

        # QA signs; the same page now shows the image allowed with the key that signed.
        attest(api, signer)
        page.goto(f"{srv.base_url}/image?ref={quote(IMAGE)}")
        assert page.locator("#verdict-outcome").inner_text() == "allowed"
        assert KEY_ID in page.locator(".reqs").inner_text()
        assert "0 running containers" in page.locator("#running + p").inner_text()
        # The webhook now admits the pod: it runs, and the pages say where.
        assert ok(api.post("/webhook/admission", json=admission_review()))["response"]["allowed"]
        deadline = time.monotonic() + 10
        while "1 running container" not in page.locator("#running + p").inner_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
            page.reload()
        running = page.locator("section[aria-labelledby=running] table").inner_text()
        assert "prod-eu" in running and "default" in running and "payment" in running
        page.screenshot(path=str(shots / "image.png"), full_page=True)
        page.goto(srv.base_url + "/images?image=payment")
        assert "in prod-eu" in page.locator("#results tbody tr").first.inner_text()
        page.goto(srv.base_url + "/")
        assert "running workloads" in page.locator(".cards").inner_text()
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        # Decisions log, filtered, opening to the explanation.
        page.goto(srv.base_url + "/decisions")
        page.select_option("select[name=outcome]", "denied")
        page.wait_for_url("**outcome=denied*")
        page.screenshot(path=str(shots / "decisions.png"), full_page=True)
        page.locator("#results tbody a").first.click()
        page.wait_for_url("**/decisions/*")
        assert f"no attestation by {ATTESTOR}" in page.locator("#explanation").inner_text()

        # Policy editor: a parser error lands at its field.
        page.goto(srv.base_url + "/policy")
        page.fill(
            "#p-defaultAdmissionRule",
            '{"evaluationMode": "REQUIRE", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}',
        )
        page.click("button:has-text('Save policy')")
        page.wait_for_selector("#e-defaultAdmissionRule")
        assert "defaultAdmissionRule.evaluationMode" in page.inner_text("#e-defaultAdmissionRule")
        assert page.get_attribute("#p-defaultAdmissionRule", "aria-invalid") == "true"
        page.screenshot(path=str(shots / "policy.png"), full_page=True)
        # The same form without its CSRF token is refused.
        page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
        page.click("button:has-text('Save policy')")
        page.wait_for_selector("[role=alert]")
        assert "CSRF" in page.inner_text("[role=alert]")
        assert (
            ok(api.get(f"/v1/projects/{POLICY_PROJECT}/policy"))["defaultAdmissionRule"][
                "evaluationMode"
            ]
            == "REQUIRE_ATTESTATION"
        )

        # The rule editor: one rule, field by field; a check's problem lands at its box.
        page.goto(srv.base_url + "/policy")
        page.click("a.edit-rule")
        page.wait_for_url("**/policy/rule?rule=default")
        assert page.locator("#r-evaluationMode").input_value() == "REQUIRE_ATTESTATION"
        page.fill("#r-check-freshness", '{"maximumScanAgeHours": -3}')
        page.click("button:has-text('Save rule')")
        page.wait_for_selector("#e-check-freshness")
        assert "must be greater than 0" in page.inner_text("#e-check-freshness")
        assert page.get_attribute("#r-check-freshness", "aria-invalid") == "true"
        page.screenshot(path=str(shots / "policy-rule.png"), full_page=True)

        # Reverse impact.
        page.goto(srv.base_url + "/impact")
        page.fill("input[name=q]", "CVE-2019-1549")
        page.keyboard.press("Enter")
        page.wait_for_url("**q=CVE-2019-1549*")
        assert IMAGE in page.locator("table").first.inner_text()
        assert "prod-eu" in page.locator("table").nth(1).inner_text()
        page.screenshot(path=str(shots / "impact.png"), full_page=True)

        # Dark mode follows the system; a phone-sized screen still shows the whole table.
        dark = browser.new_context(color_scheme="dark", viewport={"width": 390, "height": 844})
        phone = dark.new_page()
        phone.goto(srv.base_url + "/images")
        background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)", background
        light = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert light == "rgb(255, 255, 255)"
        phone.screenshot(path=str(shots / "images-dark-phone.png"), full_page=True)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 400
        dark.close()
        context.close()
        assert violations == []


def test_oidc_sign_in_sbom_download_and_sign_out_in_the_browser(
    browser: Any, tmp_path: Path
) -> None:
    """Not local mode: the browser is sent to sign in, signs in at the OIDC issuer (code flow
    with PKCE), lands where it was going with its Strict session cookie, downloads the
    image's SBOM byte for byte, and signs out."""
    shots = _shots(tmp_path)
    with running_issuer(tmp_path) as issuer:
        issuer.login_claims = {"email": ADMIN, "email_verified": True}
        with live_server(**sign_in_settings(issuer)) as srv:
            admin = issuer.token(email=ADMIN, email_verified=True)
            headers = {"Authorization": f"Bearer {admin}"}
            with httpx.Client(base_url=srv.base_url, timeout=20, headers=headers) as api:
                seed(api)
                raw = SBOM.read_bytes()
                ok(
                    api.post(
                        "/v1/projects/scans:ingest",
                        params={"resourceUri": IMAGE, "format": "spdx-json"},
                        content=raw,
                    )
                )
            # The issuer's certificate is the test's own CA; chainproof itself verifies it.
            context = browser.new_context(
                viewport={"width": 1280, "height": 900},
                ignore_https_errors=True,
                accept_downloads=True,
            )
            page = context.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            target = f"{srv.base_url}/image?ref={quote(IMAGE)}"
            page.goto(target)
            page.wait_for_url("**/signin?next=*")
            assert page.locator("#f-token").get_attribute("type") == "password"
            page.screenshot(path=str(shots / "signin.png"), full_page=True)
            page.click("#oidc-signin")
            # Issuer, callback, then the page asked for, signed in.
            page.wait_for_url(target)
            assert f"user:{ADMIN}" in page.locator("#viewer").inner_text()
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies[SESSION_COOKIE]["httpOnly"] is True
            assert cookies[SESSION_COOKIE]["sameSite"] == "Strict"
            assert SIGNIN_COOKIE not in cookies
            assert admin not in page.content()

            with page.expect_download() as info:
                page.click("#sboms a")
            download = info.value
            assert download.suggested_filename.endswith(".spdx.json")
            assert Path(download.path()).read_bytes() == raw

            page.click("#viewer button:has-text('Sign out')")
            page.wait_for_url("**/signin")
            page.goto(srv.base_url + "/")
            page.wait_for_url("**/signin?next=*")
            context.close()
            assert violations == []
