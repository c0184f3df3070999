"""The dashboard's reads on every backend (memory, SQLite, PostgreSQL), and its bound."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chainproof.api.ui import routes
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from integration.ui.story import (
    IMAGE,
    OTHER,
    POLICY_PROJECT,
    VEX_CVE,
    admission_review,
    ok,
    seed,
)

_IMPACT_ROW = re.compile(r'<tr><td class="ref"><a href="/image\?ref=')
_DECISION_LINK = re.compile(r'href="/decisions/([0-9a-f]{16}-[0-9a-f]{16})"')


@pytest.fixture(scope="module")
def client(backend_url: str) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=backend_url, grpc_enabled=False, admission={"project": POLICY_PROJECT}
    )
    with TestClient(build_app(settings), raise_server_exceptions=False) as c:
        seed(c)
        yield c


def test_images_and_impact_on_each_backend(client: TestClient) -> None:
    page = client.get("/images").text
    assert IMAGE in page and OTHER in page
    assert "Partial" not in page
    by_id = client.get("/impact", params={"q": VEX_CVE}).text
    assert IMAGE in by_id and "NOT_AFFECTED" in by_id
    # Lower-case IDs find the same findings.
    assert IMAGE in client.get("/impact", params={"q": VEX_CVE.lower()}).text
    by_purl = client.get("/impact", params={"q": "pkg:apk/alpine/libcrypto1.1"}).text
    assert IMAGE in by_purl and OTHER not in by_purl
    detail = client.get("/image", params={"ref": IMAGE}).text
    assert "libcrypto1.1" in detail and VEX_CVE in detail


def test_a_hit_bound_says_the_figures_are_partial(client: TestClient) -> None:
    dashboard = client.app.state.services.dashboard  # type: ignore[attr-defined]
    saved = dashboard.max_occurrences
    dashboard.max_occurrences = 3
    try:
        # The image page reads the image's own occurrences, bounded; the lists read the
        # summaries kept on write and are whole whatever the bound.
        assert "Partial" in client.get("/image", params={"ref": IMAGE}).text
        page = client.get("/images").text
        assert IMAGE in page and OTHER in page and "Partial" not in page
        assert "partial" not in client.get("/").text
    finally:
        dashboard.max_occurrences = saved


def test_a_bound_that_is_hit_is_shown_as_such(client: TestClient) -> None:
    """Reverse impact and the images count stop at their bounds; a page whose bound was hit
    says "more than", one whose bound was not hit shows the whole answer as whole."""
    dashboard = client.app.state.services.dashboard  # type: ignore[attr-defined]
    whole = client.get("/impact", params={"q": "pkg:"}).text
    n = len(_IMPACT_ROW.findall(whole))
    assert n >= 2 and "More than" not in whole
    saved = dashboard.impact_rows, dashboard.count_bound
    try:
        dashboard.impact_rows = n - 1
        cut = client.get("/impact", params={"q": "pkg:"}).text
        assert len(_IMPACT_ROW.findall(cut)) == n - 1
        assert f"More than {n - 1} matches" in cut
        dashboard.impact_rows = n  # exactly the bound: complete, and said to be
        exact = client.get("/impact", params={"q": "pkg:"}).text
        assert len(_IMPACT_ROW.findall(exact)) == n and "More than" not in exact

        dashboard.count_bound = 1
        # Two images contain "gcr.io": the count stops at its bound and says so.
        found = client.get("/images", params={"image": "gcr.io"}).text
        assert "More than 1 images match" in found
        assert IMAGE in found and OTHER in found  # the rows themselves are not cut
        # Without criteria the kept totals answer exactly, bound or not.
        listed = client.get("/images").text
        assert "More than" not in listed and re.search(r"\b2 images\b", listed)
        dashboard.count_bound = 2
        assert "2 images" in client.get("/images", params={"image": "gcr.io"}).text
    finally:
        dashboard.impact_rows, dashboard.count_bound = saved


def test_the_decision_log_pages_back_by_keyset(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        ok(client.post("/webhook/admission", json=admission_review()))
    deadline = time.monotonic() + 10
    while len(ok(client.get(f"/v1/projects/{POLICY_PROJECT}/decisions"))["decisions"]) < 3:
        assert time.monotonic() < deadline, "decision log did not flush"
        time.sleep(0.05)
    every = _DECISION_LINK.findall(client.get("/decisions").text)
    assert len(every) >= 3 and every == sorted(every, reverse=True)  # newest first
    monkeypatch.setattr(routes, "_PAGE_ROWS", 2)
    walked: list[str] = []
    page = client.get("/decisions", params={"outcome": "denied"}).text
    while True:
        walked += _DECISION_LINK.findall(page)
        older = re.search(r'<a href="(/decisions\?[^"]*before=[^"]*)" rel="next">Older', page)
        if older is None:
            break
        assert "more, older ones follow" in page
        page = client.get(older.group(1).replace("&amp;", "&")).text
        assert "← Newest" in page and "outcome=denied" in older.group(1)
    assert walked == every
    assert client.get("/decisions", params={"before": "x'><script>"}).status_code == 400
