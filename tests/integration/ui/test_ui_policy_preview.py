"""The policy editor's "what would change" preview in a real browser (headless Chromium
driven by Playwright) against a live server holding findings, running pods and recorded
admissions (tests/impact_samples.py): the preview replays them under the edited policy and
lists each change with its rules and reasons, keeps the edits, saves nothing; a bad policy
shows its error at the field instead; a form without its CSRF token is refused; then Save
stores the previewed policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chainproof.store.factory import create_store
from impact_samples import P, ok, record_admissions, seed
from integration.ui.browser import CHROMIUM, FLAGS, ensure_browser
from integration.ui.test_ui_browser import _shots
from live import live_server


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


def test_preview_before_saving(browser: Any, tmp_path: Path) -> None:
    shots = _shots(tmp_path)
    url = f"sqlite:///{tmp_path}/cp.db"

    def write(work: Any) -> None:
        async def run() -> None:
            store = create_store(url)
            await store.open()
            try:
                await work(store)
            finally:
                await store.close()

        # Playwright's sync API keeps an event loop running in this thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()

    with (
        live_server(
            grpc_enabled=False, database_url=url, admission={"project": P, "cluster": "prod"}
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as api,
    ):
        seed(api, write, ec.generate_private_key(ec.SECP256R1()))
        record_admissions(write)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("pageerror", lambda e: violations.append(str(e)))

        page.goto(srv.base_url + "/policy")
        assert page.locator("#policy-preview").count() == 0
        # The edit: drop the namespace rule of edge, exempt the api repository.
        page.fill("#p-kubernetesNamespaceAdmissionRules", "")
        page.fill(
            "#p-admissionWhitelistPatterns",
            json.dumps([{"namePattern": "registry.example.com/api"}]),
        )
        page.click("#preview-button")
        page.wait_for_selector("#policy-preview")
        assert page.inner_text("#preview-changed") == "6"
        table = page.inner_text("#preview-changes")
        assert "namespace[edge] → default" in table
        assert "now fails:" in table and "now passes:" in table
        assert "prod/edge" in table and "Deployment/api" in table
        assert "nothing was saved" in page.inner_text("#policy-status")
        # The edits are kept for saving, and nothing was stored.
        assert page.input_value("#p-kubernetesNamespaceAdmissionRules") == ""
        assert "registry.example.com/api" in page.input_value("#p-admissionWhitelistPatterns")
        stored = ok(api.get(f"/v1/projects/{P}/policy"))
        assert "kubernetesNamespaceAdmissionRules" in stored
        page.screenshot(path=str(shots / "policy-preview.png"), full_page=True)

        # A policy that does not parse is not previewed: its error lands at its field.
        page.fill(
            "#p-defaultAdmissionRule",
            '{"evaluationMode": "MAYBE", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}',
        )
        page.click("#preview-button")
        page.wait_for_selector("#e-defaultAdmissionRule")
        assert "defaultAdmissionRule.evaluationMode" in page.inner_text("#e-defaultAdmissionRule")
        assert page.locator("#policy-preview").count() == 0

        # Without its CSRF token the preview is refused.
        page.goto(srv.base_url + "/policy")
        page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
        page.click("#preview-button")
        page.wait_for_selector("[role=alert]")
        assert "CSRF" in page.inner_text("[role=alert]")

        # Preview again, then save what was previewed.
        page.goto(srv.base_url + "/policy")
        page.fill("#p-kubernetesNamespaceAdmissionRules", "")
        page.click("#preview-button")
        page.wait_for_selector("#policy-preview")
        assert page.inner_text("#preview-changed") == "3"
        page.click("button:has-text('Save policy')")
        page.wait_for_selector("#policy-status")
        assert page.inner_text("#policy-status") == "Saved."
        assert "kubernetesNamespaceAdmissionRules" not in ok(api.get(f"/v1/projects/{P}/policy"))
        assert violations == []
