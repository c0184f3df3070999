"""The dashboard's reads on every backend (memory, SQLite, PostgreSQL), and its bound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from integration.ui.story import IMAGE, OTHER, POLICY_PROJECT, VEX_CVE, seed


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
