"""Checking a JSON Web Token (an OIDC ID/access token, a Kubernetes ServiceAccount token)
against a trusted issuer's key set, at a given time.

JOSE itself (signature algorithms, key parsing, ``iss``/``aud`` matching) is PyJWT's; this
module adds the policy around it: only asymmetric algorithms that fit the key (never
``none``, never HMAC, so a public key can never be used as an HMAC secret), a known ``kid``
(an unknown one is reported as :class:`UnknownKey` so the caller may refresh the key set
once), ``exp`` required, and ``exp``/``nbf``/``iat`` checked against ``now`` with a small
leeway (PyJWT reads the clock itself; here time is a parameter). Fetching the key set is
``sources/oidc.py``'s job.

Error messages say what was wrong with a token, never the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from jwt.exceptions import InvalidTokenError, PyJWKError

from chainproof.errors import Unauthenticated
from chainproof.iam.principals import Principal, service_account, subject, user

#: Asymmetric algorithms only: an HMAC "key" would be the issuer's public key, known to all.
SUPPORTED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_KTY_FOR = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
#: A token's signed part larger than this is refused before any parsing (a bound).
MAX_TOKEN_BYTES = 16 * 1024
MAX_KEYS = 64


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """One trusted issuer. ``kind="kubernetes"`` reads ServiceAccount claims."""

    issuer: str
    audiences: tuple[str, ...]
    kind: Literal["oidc", "kubernetes"] = "oidc"
    algorithms: tuple[str, ...] = SUPPORTED_ALGORITHMS
    leeway: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if not self.audiences:
            # A token for any audience would be a token for every relying party.
            raise ValueError(f"issuer {self.issuer}: at least one audience is required")
        bad = set(self.algorithms) - set(SUPPORTED_ALGORITHMS)
        if bad:
            raise ValueError(f"issuer {self.issuer}: unsupported algorithms {sorted(bad)}")


class UnknownKey(Unauthenticated):
    """The token names a key the key set does not hold (refresh the set once and retry)."""


@dataclass(frozen=True)
class KeySet:
    """An issuer's public keys by ``kid`` (keys without one are tried when a token has none)."""

    by_kid: Mapping[str, jwt.PyJWK]
    unnamed: tuple[jwt.PyJWK, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> KeySet:
        """Parse a JWKS document; keys chainproof cannot use (``use: enc``, symmetric, unknown
        types) are skipped, since an issuer may publish those for other relying parties."""
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise ValueError('a JWKS document is a JSON object {"keys": [...]}')
        by_kid: dict[str, jwt.PyJWK] = {}
        unnamed: list[jwt.PyJWK] = []
        for entry in data["keys"][:MAX_KEYS]:
            if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue
            try:
                key = jwt.PyJWK(dict(entry))
            except (PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
            kid = entry.get("kid")
            if isinstance(kid, str) and kid:
                by_kid[kid] = key
            else:
                unnamed.append(key)
        return cls(by_kid=by_kid, unnamed=tuple(unnamed))


def unverified_issuer(token: str) -> str:
    """The ``iss`` a token claims, to pick the issuer to verify it against (trust nothing
    else from an unverified token)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"bearer token is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except InvalidTokenError as exc:
        raise Unauthenticated(f"bearer token is not a valid JWT ({type(exc).__name__})") from exc
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise Unauthenticated("bearer token has no issuer (iss) claim")
    return iss


def _candidate_keys(header: Mapping[str, Any], keys: KeySet, alg: str) -> list[jwt.PyJWK]:
    kty = _KTY_FOR[alg[:2]]
    kid = header.get("kid")
    if isinstance(kid, str) and kid:
        key = keys.by_kid.get(kid)
        if key is None:
            raise UnknownKey(
                f"bearer token is signed with key {kid!r}, which the issuer does not publish"
            )
        found = [key]
    else:
        found = [*keys.unnamed, *keys.by_kid.values()]
    fitting = [k for k in found if k.key_type == kty]
    if not fitting:
        if kid:
            raise Unauthenticated(f"bearer token's algorithm {alg} does not fit key {kid!r}")
        raise UnknownKey(f"no published key fits bearer token's algorithm {alg}")
    return fitting


def verify_jwt(token: str, keys: KeySet, config: IssuerConfig, now: datetime) -> dict[str, Any]:
    """The verified claims of ``token``, or Unauthenticated saying what was wrong."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"bearer token is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(token)
    except InvalidTokenError as exc:
        raise Unauthenticated(f"bearer token is not a valid JWT ({type(exc).__name__})") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise Unauthenticated(
            f"bearer token algorithm {alg!r} is not accepted; expected one of "
            f"{', '.join(config.algorithms)}"
        )
    last: InvalidTokenError | None = None
    claims: dict[str, Any] | None = None
    for key in _candidate_keys(header, keys, alg):
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(config.audiences),
                issuer=config.issuer,
                options={
                    "require": ["iss", "aud", "exp"],
                    # Times are checked below against the ``now`` we were given.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            break
        except jwt.InvalidSignatureError as exc:
            last = exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated(
                f"bearer token is not meant for chainproof: its audience is not one of "
                f"{', '.join(config.audiences)}"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated(f"bearer token issuer is not {config.issuer}") from exc
        except InvalidTokenError as exc:
            raise Unauthenticated(f"bearer token is invalid: {exc}") from exc
    if claims is None:
        raise Unauthenticated("bearer token signature does not verify") from last
    _check_times(claims, config.leeway, now)
    return claims


def _time(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"bearer token claim {name} must be a number of seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise Unauthenticated(f"bearer token claim {name} is out of range") from exc


def _check_times(claims: Mapping[str, Any], leeway: timedelta, now: datetime) -> None:
    exp = _time(claims, "exp")
    if exp is None:
        raise Unauthenticated("bearer token has no expiry (exp)")
    if now >= exp + leeway:
        raise Unauthenticated(f"bearer token expired at {exp.isoformat()}")
    nbf = _time(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise Unauthenticated(f"bearer token is not valid before {nbf.isoformat()}")
    iat = _time(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise Unauthenticated("bearer token was issued in the future (iat)")


def expiry(claims: Mapping[str, Any]) -> datetime:
    exp = _time(claims, "exp")
    assert exp is not None  # verify_jwt required it
    return exp


def principal_from_claims(claims: Mapping[str, Any], config: IssuerConfig) -> Principal:
    """The principal verified claims name: a ServiceAccount for Kubernetes issuers, the
    verified email when there is one, the issuer and subject otherwise."""
    exp = expiry(claims)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("bearer token has no subject (sub)")
    if config.kind == "kubernetes":
        parts = sub.split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
            raise Unauthenticated(
                "Kubernetes token subject is not system:serviceaccount:NAMESPACE:NAME"
            )
        return service_account(parts[2], parts[3], via="kubernetes-oidc", expires_at=exp)
    email = claims.get("email")
    verified = claims.get("email_verified")
    if isinstance(email, str) and "@" in email and verified in (True, "true"):
        return user(email, via="oidc", expires_at=exp)
    return subject(config.issuer, sub, via="oidc", expires_at=exp)
