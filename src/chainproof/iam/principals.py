"""A caller's identity: :class:`Principal`, with a stable IAM member string.

Member strings follow Google IAM where it has a form (``user:EMAIL``,
``serviceAccount:…``, ``allUsers``, ``allAuthenticatedUsers``, ``domain:…``) and add
chainproof's own for identities Google does not have: ``principal:ISSUER#SUBJECT`` (an OIDC
subject without a verified email), ``token:NAME`` (an API token chainproof issued),
``spiffe://…`` and ``cert:NAME`` (mutual TLS client certificates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from chainproof.errors import InvalidArgument

ALL_USERS = "allUsers"
ALL_AUTHENTICATED_USERS = "allAuthenticatedUsers"
ANONYMOUS_MEMBER = "anonymous"

#: Every project, in a :class:`Grant` (the local administrator, bootstrap admins).
ANY_PROJECT = "*"

_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")
_DNS = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MEMBER_FORMS = (
    "user:EMAIL, serviceAccount:NAMESPACE:NAME, token:NAME, principal:ISSUER#SUBJECT, "
    "spiffe://TRUST-DOMAIN/PATH, cert:NAME, domain:DNS-NAME, allUsers or allAuthenticatedUsers"
)


@dataclass(frozen=True, slots=True)
class Grant:
    """A role a credential carries by itself (an API token's role on its project)."""

    project: str
    role: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``member`` is what IAM bindings name; ``via`` says how it was proven."""

    member: str
    via: str
    #: When the proof stops being valid (token expiry); None for certificates and anonymous.
    expires_at: datetime | None = None
    #: Roles the credential carries itself, beside those IAM policies grant its member.
    grants: tuple[Grant, ...] = ()
    #: Extra members this principal also matches (``domain:example.com`` for a user).
    also: tuple[str, ...] = field(default=())

    @property
    def authenticated(self) -> bool:
        return self.via != "anonymous"

    def members(self) -> tuple[str, ...]:
        """Every binding member that names this principal."""
        own = (self.member, *self.also) if self.authenticated else ()
        wide = (ALL_USERS, ALL_AUTHENTICATED_USERS) if self.authenticated else (ALL_USERS,)
        return (*own, *wide)


def anonymous(grants: tuple[Grant, ...] = ()) -> Principal:
    """The caller who presented no credential (a local administrator when ``grants`` says so)."""
    return Principal(member=ANONYMOUS_MEMBER, via="anonymous", grants=grants)


def user(email: str, *, via: str, expires_at: datetime | None = None) -> Principal:
    domain = email.rsplit("@", 1)[1].lower()
    return Principal(
        member=f"user:{email}", via=via, expires_at=expires_at, also=(f"domain:{domain}",)
    )


def service_account(
    namespace: str, name: str, *, via: str, expires_at: datetime | None
) -> Principal:
    return Principal(member=f"serviceAccount:{namespace}:{name}", via=via, expires_at=expires_at)


def subject(issuer: str, sub: str, *, via: str, expires_at: datetime | None) -> Principal:
    return Principal(member=f"principal:{issuer}#{sub}", via=via, expires_at=expires_at)


def validate_member(member: str) -> str:
    """``member`` if it is a well-formed binding member; InvalidArgument naming the forms."""
    if member in (ALL_USERS, ALL_AUTHENTICATED_USERS):
        return member
    kind, sep, rest = member.partition(":")
    ok = False
    if sep and rest:
        if kind == "user":
            ok = bool(_EMAIL.match(rest))
        elif kind == "serviceAccount":
            parts = rest.split(":")
            ok = len(parts) == 2 and all(_K8S_NAME.match(p) for p in parts)
        elif kind == "token":
            ok = bool(_TOKEN_NAME.match(rest))
        elif kind == "principal":
            issuer, hash_, sub = rest.rpartition("#")
            ok = bool(issuer and hash_ and sub) and issuer.startswith("https://")
        elif kind == "spiffe":
            ok = rest.startswith("//") and len(rest) > 2 and " " not in rest
        elif kind == "cert":
            ok = 0 < len(rest) <= 255 and rest.isprintable()
        elif kind == "domain":
            ok = bool(_DNS.match(rest))
    if not ok:
        raise InvalidArgument(f"member {member!r} is not valid; expected one of {_MEMBER_FORMS}")
    return member


def validate_token_name(name: str) -> str:
    if not _TOKEN_NAME.match(name):
        raise InvalidArgument(
            f"token name {name!r} is not valid; expected 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
