"""Signing in to the dashboard on a server that is not in local mode: the token form, OIDC's
authorization-code flow with PKCE against a real issuer on loopback, the session cookie, the
permissions of the signed-in identity, signing out, and every way a sign-in is refused."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from chainproof.api.ui.session import SESSION_COOKIE, SIGNIN_COOKIE
from chainproof.bootstrap import build_app
from chainproof.config import load_settings
from chainproof.store.memory import MemoryStore
from integration.ui.story import IMAGE, POLICY_PROJECT, ok, run_workload, seed
from oidc_issuer import LoopbackIssuer, running_issuer

ADMIN = "admin@example.com"
CLIENT_ID = "dashboard"


def sign_in_settings(issuer: LoopbackIssuer, **extra: Any) -> dict[str, Any]:
    return {
        "grpc_enabled": False,
        "host": "0.0.0.0",  # noqa: S104 - not loopback: anonymous callers are nobody here
        "admission": {"project": POLICY_PROJECT},
        "auth": {
            "oidc_issuers": [
                {
                    "issuer": issuer.url,
                    "audiences": ["chainproof", CLIENT_ID],
                    "ca_file": str(issuer.ca_file),
                }
            ],
            "bootstrap_admins": [f"user:{ADMIN}"],
            "sign_in": {"issuer": issuer.url, "client_id": CLIENT_ID},
        },
        **extra,
    }


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackIssuer]:
    with running_issuer(tmp_path_factory.mktemp("issuer")) as it:
        yield it


@pytest.fixture(scope="module")
def app(issuer: LoopbackIssuer) -> Iterator[Any]:
    settings = load_settings(**sign_in_settings(issuer))
    application = build_app(settings, MemoryStore())
    with TestClient(application) as boot:
        admin = issuer.token(email=ADMIN, email_verified=True, lifetime=_HOUR)
        boot.headers["Authorization"] = f"Bearer {admin}"
        seed(boot)  # type: ignore[arg-type]
        raw = SBOM.read_bytes()
        ok(
            boot.post(
                "/v1/projects/scans:ingest",
                params={"resourceUri": IMAGE, "format": "spdx-json"},
                content=raw,
            )
        )
        yield application


_HOUR = __import__("datetime").timedelta(hours=1)
SBOM = Path(__file__).parents[2] / "fixtures" / "ingest" / "sbom" / "small-spdx.json"


@pytest.fixture
def browser(app: Any) -> TestClient:
    """A fresh browser: its own cookie jar, no Authorization header (the app is already
    started by the module's fixture, so no second lifespan)."""
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def admin_api(app: Any, issuer: LoopbackIssuer) -> TestClient:
    c = TestClient(app)
    c.headers["Authorization"] = "Bearer " + issuer.token(
        email=ADMIN, email_verified=True, lifetime=_HOUR
    )
    return c


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert m, html
    return m.group(1)


def viewer_token(admin_api: TestClient, name: str) -> str:
    body = ok(
        admin_api.post(
            f"/v1/projects/{POLICY_PROJECT}/tokens",
            json={"name": name, "role": "roles/chainproof.viewer"},
        )
    )
    secret: str = body["secret"]
    return secret


def sign_in_with_token(browser: TestClient, token: str, next_path: str = "/") -> httpx.Response:
    page = browser.get("/signin", params={"next": next_path})
    return browser.post(
        "/signin", data={"csrf_token": csrf(page.text), "token": token, "next": next_path}
    )


def test_a_browser_that_has_not_signed_in_is_sent_to_sign_in(browser: TestClient) -> None:
    r = browser.get("/images", params={"severity": "HIGH"})
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == "/signin"
    assert parse_qs(target.query)["next"] == ["/images?severity=HIGH"]
    page = browser.get("/signin").text
    assert 'id="f-token"' in page and 'type="password"' in page
    assert "local-mode" not in page
    assert "Sign in with" in page
    # The API itself still answers 401, not a redirect.
    assert browser.get(f"/v1/projects/{POLICY_PROJECT}/policy").status_code == 401


def test_token_sign_in_gives_that_tokens_permissions(
    browser: TestClient, admin_api: TestClient
) -> None:
    token = viewer_token(admin_api, "ui-viewer")
    r = sign_in_with_token(browser, token, "/images?image=payment")
    assert r.status_code == 303 and r.headers["location"] == "/images?image=payment"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure
    assert token not in cookie and token.removeprefix("cpt_") not in cookie
    page = browser.get("/")
    assert page.status_code == 200
    assert "signed in as <code>token:ui-viewer</code>" in page.text
    assert token not in page.text
    assert browser.get("/policy").status_code == 200  # the viewer reads the policy…
    form = {"csrf_token": csrf(page.text), "description": "changed by a viewer"}
    refused = browser.post("/policy", data=form)
    assert refused.status_code == 403  # …but may not change it
    assert "binaryauthorization.policy.update" in refused.text
    # The stored SBOM lives in project "scans", where this token holds nothing.
    link = re.search(r'href="(/sbom/scans/sha256:[0-9a-f]{64})"', admin_view(admin_api))
    assert link
    assert browser.get(link.group(1)).status_code == 403
    assert admin_api.get(link.group(1)).status_code == 200
    # Nor do the pages show that project's occurrences to it, as the API would not.
    assert IMAGE not in browser.get("/images").text
    assert IMAGE in admin_api.get("/images").text
    detail = browser.get("/image", params={"ref": IMAGE}).text
    assert "No stored SBOM" in detail and "libssl1.1" not in detail
    assert "libssl1.1" in admin_view(admin_api)
    assert "No image is affected" in browser.get("/impact", params={"q": "CVE-2019-1549"}).text
    # The session cookie is not a credential of the API: another site cannot use it there.
    assert browser.get(f"/v1/projects/{POLICY_PROJECT}/policy").status_code == 401


def admin_view(admin_api: TestClient) -> str:
    r = admin_api.get("/image", params={"ref": IMAGE})
    assert r.status_code == 200
    return r.text


def test_sign_out_ends_the_session(browser: TestClient, admin_api: TestClient) -> None:
    sign_in_with_token(browser, viewer_token(admin_api, "ui-signout"))
    page = browser.get("/")
    assert page.status_code == 200
    assert browser.post("/signout", data={}).status_code == 403  # CSRF applies here too
    r = browser.post("/signout", data={"csrf_token": csrf(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert SESSION_COOKIE in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert browser.get("/").status_code == 303


def test_revoked_token_ends_the_session(browser: TestClient, admin_api: TestClient) -> None:
    sign_in_with_token(browser, viewer_token(admin_api, "ui-revoked"))
    assert browser.get("/").status_code == 200
    ok(admin_api.delete(f"/v1/projects/{POLICY_PROJECT}/tokens/ui-revoked"))
    r = browser.get("/decisions")
    assert r.status_code == 303
    assert "ended=1" in r.headers["location"]
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert "Your session has ended" in browser.get(r.headers["location"]).text


def test_bad_tokens_are_refused_and_never_echoed(browser: TestClient) -> None:
    bogus = "cpt_" + "Z" * 43
    r = sign_in_with_token(browser, bogus)
    assert r.status_code == 401
    assert "API token is not known" in r.text
    assert bogus not in r.text and "Z" * 43 not in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    # Without the form's CSRF token, even a good-looking sign-in is refused (login CSRF).
    assert browser.post("/signin", data={"token": bogus}).status_code == 403
    assert sign_in_with_token(browser, "").status_code == 400


def test_altered_session_cookie_counts_for_nothing(
    browser: TestClient, admin_api: TestClient
) -> None:
    sign_in_with_token(browser, viewer_token(admin_api, "ui-altered"))
    value = browser.cookies[SESSION_COOKIE]
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    browser.cookies.set(SESSION_COOKIE, flipped)
    assert browser.get("/").status_code == 303


def test_next_never_leaves_this_server(browser: TestClient) -> None:
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        page = browser.get("/signin", params={"next": hostile}).text
        assert 'name="next" value="/"' in page


def oidc_round_trip(
    browser: TestClient, issuer: LoopbackIssuer, next_path: str = "/"
) -> httpx.Response:
    start = browser.get("/signin/oidc", params={"next": next_path})
    assert start.status_code == 303
    assert "SameSite=lax" in start.headers["set-cookie"]
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(issuer.url + "/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert "code_verifier" not in query  # the verifier never leaves the server
    with httpx.Client(verify=ssl.create_default_context(cafile=str(issuer.ca_file))) as idp:
        back = idp.get(authorize)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    return browser.get(f"{callback.path}?{callback.query}")


def test_oidc_sign_in_with_pkce(browser: TestClient, issuer: LoopbackIssuer) -> None:
    r = oidc_round_trip(browser, issuer, "/decisions?outcome=denied")
    assert r.status_code == 200, r.text
    assert "Signed in as <code>user:alice@example.com</code>" in r.text
    assert 'http-equiv="refresh" content="0;url=/decisions?outcome=denied"' in r.text
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith(SESSION_COOKIE) and "SameSite=strict" in c for c in cookies)
    assert any(c.startswith(SIGNIN_COOKIE) and "Max-Age=0" in c for c in cookies)
    # Alice holds no role on the policy project: signed in, but refused with a page.
    refused = browser.get("/decisions")
    assert refused.status_code == 403
    assert "user:alice@example.com" in refused.text


def test_oidc_admin_sees_the_pages(browser: TestClient, issuer: LoopbackIssuer) -> None:
    issuer.login_claims = {"email": ADMIN, "email_verified": True}
    try:
        assert oidc_round_trip(browser, issuer).status_code == 200
    finally:
        issuer.login_claims = {"email": "alice@example.com", "email_verified": True}
    page = browser.get("/")
    assert page.status_code == 200 and f"user:{ADMIN}" in page.text


def test_oidc_answers_that_do_not_belong_are_refused(
    browser: TestClient, issuer: LoopbackIssuer
) -> None:
    # An answer without the sign-in cookie (started in another browser, or forged).
    stranger = browser.get("/signin/callback", params={"code": "x", "state": "y"})
    assert stranger.status_code == 401 and "not started in this browser" in stranger.text
    # The right browser, the wrong state.
    start = browser.get("/signin/oidc")
    wrong = browser.get("/signin/callback", params={"code": "x", "state": "not-it"})
    assert wrong.status_code == 401 and "does not belong" in wrong.text
    assert "Max-Age=0" in wrong.headers["set-cookie"]
    # A code the issuer never gave (or gave once already) is refused by the issuer.
    browser.cookies.set(SIGNIN_COOKIE, start.cookies[SIGNIN_COOKIE])
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    forged = browser.get("/signin/callback", params={"code": "forged", "state": state})
    assert forged.status_code == 401 and "invalid_grant" in forged.text
    browser.cookies.clear()
    # An ID token issued for another sign-in (its nonce) is refused.
    issuer.forced_nonce = "someone-elses"
    try:
        replayed = oidc_round_trip(browser, issuer)
    finally:
        issuer.forced_nonce = None
    assert replayed.status_code == 401 and "nonce" in replayed.text
    # The person declined at the issuer.
    issuer.login_claims = None
    try:
        declined = oidc_round_trip(browser, issuer)
    finally:
        issuer.login_claims = {"email": "alice@example.com", "email_verified": True}
    assert declined.status_code == 401 and "access_denied" in declined.text
    assert SESSION_COOKIE not in browser.cookies


def test_sign_in_issuer_must_be_trusted(issuer: LoopbackIssuer) -> None:
    settings = sign_in_settings(issuer)
    settings["auth"]["sign_in"]["client_id"] = "not-an-audience"
    with pytest.raises(Exception, match="not an audience"):
        load_settings(**settings)


def _token(admin_api: TestClient, name: str, role: str) -> str:
    body = ok(
        admin_api.post(f"/v1/projects/{POLICY_PROJECT}/tokens", json={"name": name, "role": role})
    )
    secret: str = body["secret"]
    return secret


def test_counts_and_workloads_follow_the_callers_permissions(
    browser: TestClient, admin_api: TestClient
) -> None:
    run_workload(admin_api, IMAGE)
    # The admin reads every project: the image of project "scans" counts, and what runs shows.
    admin = admin_api.get("/").text
    assert "running workloads" in admin
    assert "1 workload</a> in prod-eu" in admin_api.get("/images").text
    # A viewer of the policy project holds nothing in "scans": its overview counts none of
    # that project's images (exact counts, of what it may read), and no page leaks them.
    sign_in_with_token(browser, viewer_token(admin_api, "ui-counts"))
    mine = browser.get("/").text
    assert re.search(r'href="/images">0</a><span>images', mine), mine
    assert IMAGE not in browser.get("/images", params={"decision": "none"}).text
    assert IMAGE not in browser.get("/impact", params={"q": "pkg:apk/alpine/libssl1.1"}).text
    # Who may list occurrences but not the decision log sees no inventory anywhere.
    other = TestClient(browser.app, follow_redirects=False)
    token = _token(admin_api, "ui-occ", "roles/containeranalysis.occurrences.viewer")
    assert sign_in_with_token(other, token).status_code == 303
    page = other.get("/")
    assert page.status_code == 200 and "running workloads" not in page.text
    assert "Where it runs" not in other.get("/images").text
    assert 'id="running"' not in other.get("/image", params={"ref": IMAGE}).text
