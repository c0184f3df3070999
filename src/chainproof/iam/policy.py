"""IAM policies in Google's shape: ``{"version", "bindings": [{"role", "members"}], "etag"}``.

A policy is attached to a resource (a project, a note). Its etag is derived from its
content, so that ``setIamPolicy`` with the etag a client read refuses to overwrite a policy
someone else changed in between (read-modify-write without lost updates). Conditions are not
supported and are refused rather than ignored: an ignored condition would grant more than
its author meant.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from chainproof.errors import InvalidArgument
from chainproof.iam.principals import validate_member
from chainproof.iam.roles import permissions_of, validate_role

#: Google's limit on the members of one policy (every binding counted).
MAX_MEMBERS = 1500
POLICY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Binding:
    role: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class IamPolicy:
    """Bindings, merged per role, members sorted: equal policies have equal etags."""

    bindings: tuple[Binding, ...] = ()
    version: int = POLICY_VERSION

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, Iterable[str]]]) -> IamPolicy:
        """A policy from (role, members) pairs, normalised; roles and members validated."""
        merged: dict[str, set[str]] = {}
        for role, members in pairs:
            merged.setdefault(validate_role(role), set()).update(
                validate_member(m) for m in members
            )
        total = sum(len(m) for m in merged.values())
        if total > MAX_MEMBERS:
            raise InvalidArgument(
                f"a policy may name at most {MAX_MEMBERS} members across its bindings; "
                f"this one names {total}"
            )
        return cls(
            bindings=tuple(
                Binding(role, tuple(sorted(members)))
                for role, members in sorted(merged.items())
                if members
            )
        )

    @cached_property
    def etag(self) -> str:
        canonical = orjson.dumps([self.version, [[b.role, list(b.members)] for b in self.bindings]])
        return base64.b64encode(hashlib.sha256(canonical).digest()[:12]).decode()

    @cached_property
    def permissions_by_member(self) -> Mapping[str, frozenset[str]]:
        """Member → every permission this policy grants it (computed once per policy)."""
        acc: dict[str, set[str]] = {}
        for b in self.bindings:
            perms = permissions_of(b.role)
            for m in b.members:
                acc.setdefault(m, set()).update(perms)
        return {m: frozenset(ps) for m, ps in acc.items()}

    def roles_of(self, members: Iterable[str]) -> list[str]:
        wanted = set(members)
        return [b.role for b in self.bindings if wanted.intersection(b.members)]

    def with_binding(self, role: str, member: str) -> IamPolicy:
        return IamPolicy.of([*((b.role, b.members) for b in self.bindings), (role, [member])])

    def without_binding(self, role: str, member: str) -> IamPolicy:
        return IamPolicy.of(
            (b.role, [m for m in b.members if not (b.role == role and m == member)])
            for b in self.bindings
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "bindings": [{"role": b.role, "members": list(b.members)} for b in self.bindings],
            "etag": self.etag,
        }


EMPTY_POLICY = IamPolicy()


def policy_from_json(data: Any) -> tuple[IamPolicy, str | None]:
    """Parse a policy object as ``setIamPolicy`` receives it; returns it and the etag it
    carried (None when absent: an unconditional overwrite, as Google allows)."""
    if not isinstance(data, Mapping):
        raise InvalidArgument('policy must be a JSON object: {"bindings": [...], "etag": "..."}')
    unknown = set(data) - {"version", "bindings", "etag", "auditConfigs"}
    if unknown:
        raise InvalidArgument(f"policy has unknown fields: {', '.join(sorted(unknown))}")
    if data.get("auditConfigs"):
        raise InvalidArgument("policy auditConfigs are not supported; every write is audited")
    version = data.get("version", POLICY_VERSION)
    if version not in (0, 1):
        raise InvalidArgument(
            f"policy version {version!r} is not supported; expected 1 (conditions are not "
            "supported)"
        )
    etag = data.get("etag")
    if etag is not None and (not isinstance(etag, str) or not etag):
        raise InvalidArgument("policy etag must be the non-empty string getIamPolicy returned")
    raw = data.get("bindings", [])
    if not isinstance(raw, list):
        raise InvalidArgument("policy bindings must be a list of {role, members}")
    pairs: list[tuple[str, list[str]]] = []
    for i, b in enumerate(raw):
        if not isinstance(b, Mapping):
            raise InvalidArgument(f"bindings[{i}] must be an object with role and members")
        if "condition" in b:
            raise InvalidArgument(
                f"bindings[{i}] has a condition; conditional bindings are not supported"
            )
        extra = set(b) - {"role", "members"}
        if extra:
            raise InvalidArgument(f"bindings[{i}] has unknown fields: {', '.join(sorted(extra))}")
        role, members = b.get("role"), b.get("members", [])
        if not isinstance(role, str):
            raise InvalidArgument(f"bindings[{i}].role must be a role name such as roles/…")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise InvalidArgument(f"bindings[{i}].members must be a list of member strings")
        pairs.append((role, members))
    return IamPolicy.of(pairs), etag
