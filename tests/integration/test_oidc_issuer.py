"""Bearer tokens from a real OIDC issuer on loopback (HTTPS, discovery, JWKS): the good one is
accepted, every kind of bad one refused, and key rotation handled by one refresh."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chainproof.errors import Unauthenticated, Unavailable
from chainproof.iam.jwt import IssuerConfig
from chainproof.sources.oidc import KeySource, OidcIssuer
from oidc_issuer import LoopbackIssuer, running_issuer


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[LoopbackIssuer]:
    with running_issuer(tmp_path) as it:
        yield it


@pytest.fixture
async def verifier(issuer: LoopbackIssuer) -> AsyncIterator[OidcIssuer]:
    v = OidcIssuer(
        IssuerConfig(issuer=issuer.url, audiences=("chainproof",)),
        KeySource(ca_file=issuer.ca_file),
        clock=now,
        min_refresh=dt.timedelta(seconds=30),
    )
    yield v
    await v.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_verified_email_is_a_user(issuer: LoopbackIssuer, verifier: OidcIssuer) -> None:
    p = await verifier.verify(issuer.token(email="ci@example.com", email_verified=True))
    assert p.member == "user:ci@example.com"
    assert "domain:example.com" in p.members()
    assert p.expires_at is not None
    # Discovery first, then the JWKS it names.
    assert issuer.requests == ["/.well-known/openid-configuration", "/keys"]


async def test_unverified_email_falls_back_to_issuer_and_subject(
    issuer: LoopbackIssuer, verifier: OidcIssuer
) -> None:
    p = await verifier.verify(issuer.token(email="ci@example.com", email_verified=False))
    assert p.member == f"principal:{issuer.url}#user-1"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"now": now() - dt.timedelta(hours=2)}, "expired"),
        ({"now": now() + dt.timedelta(hours=2)}, "not valid before"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": None}, "exp"),
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-expiry"],
)
async def test_bad_claims_refused(
    issuer: LoopbackIssuer, verifier: OidcIssuer, claims: dict[str, object], message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message):
        await verifier.verify(issuer.token(**claims))  # type: ignore[arg-type]


async def test_unknown_kid_refreshes_once_then_refuses(
    issuer: LoopbackIssuer, verifier: OidcIssuer, tmp_path: Path
) -> None:
    await verifier.verify(issuer.token())
    stranger = LoopbackIssuer(url=issuer.url, ca_file=issuer.ca_file)
    stranger.add_key("k-unknown")
    with pytest.raises(Unauthenticated, match="k-unknown"):
        await verifier.verify(stranger.token("k-unknown"))
    assert issuer.requests.count("/keys") == 2  # one refresh for the unknown kid
    with pytest.raises(Unauthenticated, match="k-unknown"):
        await verifier.verify(stranger.token("k-unknown"))
    # Within min_refresh, a flood of unknown kids does not hit the issuer again.
    assert issuer.requests.count("/keys") == 2


async def test_rotated_key_accepted_after_refresh(
    issuer: LoopbackIssuer, verifier: OidcIssuer
) -> None:
    await verifier.verify(issuer.token())
    issuer.add_key("k2", "ec")
    p = await verifier.verify(issuer.token("k2", email="qa@example.com", email_verified=True))
    assert p.member == "user:qa@example.com"


async def test_token_signed_by_another_key_with_a_known_kid(
    issuer: LoopbackIssuer, verifier: OidcIssuer
) -> None:
    forger = LoopbackIssuer(url=issuer.url, ca_file=issuer.ca_file)
    forger.add_key("k1")  # same kid, different key
    with pytest.raises(Unauthenticated, match="signature"):
        await verifier.verify(forger.token("k1"))


async def test_alg_none_refused(issuer: LoopbackIssuer, verifier: OidcIssuer) -> None:
    good = issuer.token()
    payload = good.split(".")[1]
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    with pytest.raises(Unauthenticated, match="algorithm 'none'"):
        await verifier.verify(f"{header}.{payload}.")


async def test_hs256_signed_with_the_public_key_refused(
    issuer: LoopbackIssuer, verifier: OidcIssuer
) -> None:
    # The classic key-confusion attack: HMAC keyed with the issuer's *public* key, which
    # anyone can download from the JWKS.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = issuer.token().split(".")[1]
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(issuer.public_pem("k1"), signing_input, hashlib.sha256).digest()
    with pytest.raises(Unauthenticated, match="algorithm 'HS256'"):
        await verifier.verify(f"{header}.{payload}.{b64(sig)}")


async def test_discovery_naming_another_issuer_is_refused(issuer: LoopbackIssuer) -> None:
    issuer.discovery_issuer = "https://evil.example"
    v = OidcIssuer(
        IssuerConfig(issuer=issuer.url, audiences=("chainproof",)),
        KeySource(ca_file=issuer.ca_file),
        clock=now,
    )
    try:
        with pytest.raises(Unavailable, match="names another issuer"):
            await v.verify(issuer.token())
    finally:
        await v.close()


async def test_untrusted_tls_certificate_is_refused(issuer: LoopbackIssuer) -> None:
    v = OidcIssuer(
        IssuerConfig(issuer=issuer.url, audiences=("chainproof",)), KeySource(), clock=now
    )
    try:
        with pytest.raises(Unavailable, match="cannot fetch"):
            await v.verify(issuer.token())
    finally:
        await v.close()


async def test_jwks_from_a_file(issuer: LoopbackIssuer, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks()))
    v = OidcIssuer(
        IssuerConfig(issuer=issuer.url, audiences=("chainproof",)),
        KeySource(jwks_file=path),
        clock=now,
    )
    try:
        p = await v.verify(issuer.token(sub="robot"))
        assert p.member == f"principal:{issuer.url}#robot"
        assert issuer.requests == []  # nothing fetched
    finally:
        await v.close()


def test_plain_http_issuer_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="https"):
        OidcIssuer(
            IssuerConfig(issuer="http://127.0.0.1:1", audiences=("chainproof",)),
            KeySource(),
            clock=now,
        )
