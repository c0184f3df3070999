"""PKCE and the parts of OIDC sign-in that need no issuer."""

from __future__ import annotations

import base64
import hashlib

import pytest

from chainproof.sources.oidc_login import OidcLogin, pkce_challenge


def test_pkce_challenge_is_unpadded_base64url_of_sha256() -> None:
    verifier = "dBjftJeZ4CVP-mJ0OHXDwsHtNKGGjaS2fyQw0aKb2Vg"
    # Computed another way: hex digest, then bytes, then base64url without "=".
    expected = base64.b64encode(bytes.fromhex(hashlib.sha256(verifier.encode()).hexdigest()))
    expected_text = expected.decode().replace("+", "-").replace("/", "_").rstrip("=")
    challenge = pkce_challenge(verifier)
    assert challenge == expected_text
    assert len(challenge) == 43 and "=" not in challenge


async def test_start_sends_only_the_challenge() -> None:
    login = OidcLogin("https://issuer.example", "dash")
    login._endpoints = ("https://issuer.example/auth?x=1", "https://issuer.example/token")
    try:
        started = await login.start("https://chainproof.example/signin/callback")
    finally:
        await login.close()
    assert started.url.startswith("https://issuer.example/auth?x=1&response_type=code&")
    assert f"code_challenge={pkce_challenge(started.verifier)}" in started.url
    assert started.verifier not in started.url
    assert "code_challenge_method=S256" in started.url
    assert f"state={started.state}" in started.url and f"nonce={started.nonce}" in started.url
    assert "scope=openid+email+profile" in started.url


@pytest.mark.parametrize("url", ["http://issuer.example/auth", None, 3])
def test_endpoints_must_be_https(url: object) -> None:
    from chainproof.errors import Unavailable
    from chainproof.sources.oidc_login import _https

    with pytest.raises(Unavailable):
        _https(url, "authorization_endpoint")
