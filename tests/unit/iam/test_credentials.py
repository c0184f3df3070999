"""API token secrets and hashes; client certificate identities; JWT checks without I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from chainproof.errors import Unauthenticated
from chainproof.iam import api_tokens
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.certificates import principal_from_certificate
from chainproof.iam.jwt import IssuerConfig, KeySet, UnknownKey, principal_from_claims, verify_jwt

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def test_api_token_secret_shape_and_hash() -> None:
    a, b = api_tokens.new_secret(), api_tokens.new_secret()
    assert a != b and a.startswith("cpt_") and len(a) == 47
    assert api_tokens.hash_token(a) != api_tokens.hash_token(b)
    assert a not in api_tokens.hash_token(a)
    with pytest.raises(Unauthenticated, match="malformed"):
        api_tokens.hash_token("cpt_short")


def test_api_token_expiry_and_revocation() -> None:
    tok = ApiToken(
        name="ci",
        project="prod",
        role="roles/containeranalysis.occurrences.editor",
        token_hash="h",
        created_at=NOW,
        created_by="user:a@x.io",
        expires_at=NOW + dt.timedelta(days=1),
    )
    p = tok.principal(NOW)
    assert p.member == "token:ci" and p.grants[0].project == "prod"
    with pytest.raises(Unauthenticated, match="expired"):
        tok.principal(NOW + dt.timedelta(days=1))
    revoked = dataclasses.replace(tok, revoked_at=NOW)
    with pytest.raises(Unauthenticated, match="revoked"):
        revoked.principal(NOW)


def _cert(name: str, sans: list[x509.GeneralName]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]) if name else x509.Name([])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_certificate_identity_order() -> None:
    spiffe = x509.UniformResourceIdentifier("spiffe://example.org/ns/ci/sa/builder")
    dns = x509.DNSName("builder.ci.svc")
    assert principal_from_certificate(_cert("cn", [dns, spiffe])).member == spiffe.value
    assert principal_from_certificate(_cert("cn", [dns])).member == "cert:builder.ci.svc"
    ip_only = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    assert (
        principal_from_certificate(_cert("kube-apiserver", ip_only)).member == "cert:kube-apiserver"
    )
    two = x509.UniformResourceIdentifier("spiffe://example.org/other")
    with pytest.raises(Unauthenticated, match="several SPIFFE"):
        principal_from_certificate(_cert("cn", [spiffe, two]))
    with pytest.raises(Unauthenticated, match="names no identity"):
        principal_from_certificate(_cert("", []))


ISS = "https://issuer.example"
CFG = IssuerConfig(issuer=ISS, audiences=("chainproof",))


def _keys() -> tuple[ed25519.Ed25519PrivateKey, KeySet]:
    key = ed25519.Ed25519PrivateKey.generate()
    jwk = pyjwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = "ed"
    enc = {"kty": "RSA", "use": "enc", "kid": "skip-me", "n": "AQAB", "e": "AQAB"}
    sym = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    return key, KeySet.from_json({"keys": [jwk, enc, sym]})


def _token(key: ed25519.Ed25519PrivateKey, kid: str = "ed", **claims: object) -> str:
    body = {
        "iss": ISS,
        "aud": "chainproof",
        "sub": "s",
        "exp": int((NOW + dt.timedelta(minutes=5)).timestamp()),
    }
    body.update(claims)
    return pyjwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid})


def test_keyset_skips_encryption_and_symmetric_keys() -> None:
    _, keys = _keys()
    assert set(keys.by_kid) == {"ed"}


def test_eddsa_token_and_time_is_a_parameter() -> None:
    key, keys = _keys()
    token = _token(key)
    assert verify_jwt(token, keys, CFG, NOW)["sub"] == "s"
    # The leeway (60 s) is honoured, then the token is expired.
    verify_jwt(token, keys, CFG, NOW + dt.timedelta(minutes=5, seconds=30))
    with pytest.raises(Unauthenticated, match="expired"):
        verify_jwt(token, keys, CFG, NOW + dt.timedelta(minutes=6, seconds=1))


def test_unknown_kid_is_distinguishable_for_refresh() -> None:
    key, keys = _keys()
    with pytest.raises(UnknownKey):
        verify_jwt(_token(key, kid="other"), keys, CFG, NOW)


def test_oversized_and_garbage_tokens() -> None:
    _, keys = _keys()
    with pytest.raises(Unauthenticated, match="larger"):
        verify_jwt("a" * 20000, keys, CFG, NOW)
    with pytest.raises(Unauthenticated, match="not a valid JWT"):
        verify_jwt("not.a.jwt", keys, CFG, NOW)


def test_kubernetes_claims_become_a_service_account() -> None:
    cfg = IssuerConfig(issuer=ISS, audiences=("chainproof",), kind="kubernetes")
    exp = int(NOW.timestamp()) + 60
    p = principal_from_claims({"sub": "system:serviceaccount:ci:builder", "exp": exp}, cfg)
    assert p.member == "serviceAccount:ci:builder"
    with pytest.raises(Unauthenticated, match="system:serviceaccount"):
        principal_from_claims({"sub": "admin", "exp": exp}, cfg)


def test_issuer_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="audience"):
        IssuerConfig(issuer=ISS, audiences=())
