"""chainproof's own API tokens: how a secret looks, and the only thing stored about it.

A token is ``cpt_`` followed by 32 random bytes in base64url: the prefix lets a secret
scanner recognise a leaked one and lets the server tell it from a JWT without parsing. Only
the SHA-256 of the whole token is stored; the secret is shown once, at creation. A slow
password hash is not needed: the secret has 256 bits of entropy, so the hash cannot be
reversed by guessing, and lookups by hash stay cheap on the request path.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from chainproof.errors import Unauthenticated
from chainproof.iam.principals import Grant, Principal

PREFIX = "cpt_"
_SHAPE = re.compile(r"^cpt_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token: never the secret, only its hash."""

    name: str
    project: str
    role: str
    token_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def principal(self, now: datetime) -> Principal:
        """The principal this token proves at ``now``, or Unauthenticated."""
        if self.revoked_at is not None:
            raise Unauthenticated(f"API token {self.name!r} was revoked")
        if self.expires_at is not None and now >= self.expires_at:
            raise Unauthenticated(
                f"API token {self.name!r} expired at {self.expires_at.isoformat()}"
            )
        return Principal(
            member=f"token:{self.name}",
            via="api-token",
            expires_at=self.expires_at,
            grants=(Grant(self.project, self.role),),
        )


def new_secret() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def looks_like_api_token(token: str) -> bool:
    return token.startswith(PREFIX)


def hash_token(token: str) -> str:
    """The stored form of ``token``; Unauthenticated when it is not shaped like one."""
    if not _SHAPE.match(token):
        raise Unauthenticated("API token is malformed; expected cpt_ and 43 base64url characters")
    return hashlib.sha256(token.encode()).hexdigest()
