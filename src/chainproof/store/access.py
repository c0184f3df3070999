"""The access repository: IAM policies, API tokens and the audit log, and its memory adapter.

One port (:class:`AccessRepository`) with an adapter per store: :class:`MemoryAccessRepository`
here, the SQL one in :mod:`chainproof.store.sql.access`. Each method is one transaction.
``set_policy`` is a compare-and-set on the etag, so two administrators editing the same
policy cannot silently overwrite each other. Tokens are found by the hash of their secret;
the secret itself is never given to the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from chainproof.errors import AlreadyExists, FailedPrecondition
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.policy import IamPolicy


class EtagMismatch(FailedPrecondition):
    """setIamPolicy named an etag that is no longer the policy's (someone changed it)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: str
    project: str
    time: datetime
    principal: str
    permission: str
    resource: str
    #: "granted" or "denied"
    outcome: str
    #: Everything else: the operation, how the caller authenticated, the result code.
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    project: str
    principal: str | None = None
    permission: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Entries older than this entry_id (the page cursor; newest first).
    before: str | None = None
    limit: int = 100


class AccessRepository(Protocol):
    async def get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]: ...

    async def set_policy(
        self,
        resource: str,
        project: str,
        policy: IamPolicy,
        expected_etag: str | None,
        now: datetime,
    ) -> IamPolicy:
        """Store ``policy`` if the current etag is ``expected_etag`` (None: unconditionally);
        EtagMismatch otherwise. An empty policy removes the row."""
        ...

    async def insert_token(self, token: ApiToken) -> None:
        """AlreadyExists when the name is taken (by a live or a revoked token)."""
        ...

    async def find_token(self, token_hash: str) -> ApiToken | None: ...

    async def list_tokens(self, project: str | None) -> list[ApiToken]: ...

    async def revoke_token(self, name: str, now: datetime) -> ApiToken | None:
        """The token, revoked (at ``now`` unless it already was); None when unknown."""
        ...

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Newest first, at most ``query.limit``."""
        ...


def matches(entry: AuditEntry, q: AuditQuery) -> bool:
    return (
        entry.project == q.project
        and (q.principal is None or entry.principal == q.principal)
        and (q.permission is None or entry.permission == q.permission)
        and (q.since is None or entry.time >= q.since)
        and (q.until is None or entry.time < q.until)
        and (q.before is None or entry.entry_id < q.before)
    )


def token_exists_error(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"an API token named {name!r} already exists (names are never reused, even after "
        "revocation, so that audit entries stay unambiguous); choose another name"
    )


def etag_mismatch_error(resource: str) -> EtagMismatch:
    return EtagMismatch(
        f"the IAM policy of {resource} changed since it was read (etag mismatch); read it "
        "again with getIamPolicy, reapply the change and retry"
    )


class MemoryAccessRepository:
    def __init__(self) -> None:
        self._policies: dict[str, IamPolicy] = {}
        self._tokens: dict[str, ApiToken] = {}
        self._audit: list[AuditEntry] = []
        self._lock = asyncio.Lock()

    async def get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        return {r: self._policies[r] for r in resources if r in self._policies}

    async def set_policy(
        self,
        resource: str,
        project: str,
        policy: IamPolicy,
        expected_etag: str | None,
        now: datetime,
    ) -> IamPolicy:
        async with self._lock:
            current = self._policies.get(resource, IamPolicy())
            if expected_etag is not None and expected_etag != current.etag:
                raise etag_mismatch_error(resource)
            if policy.bindings:
                self._policies[resource] = policy
            else:
                self._policies.pop(resource, None)
            return policy

    async def insert_token(self, token: ApiToken) -> None:
        async with self._lock:
            if token.name in self._tokens:
                raise token_exists_error(token.name)
            self._tokens[token.name] = token

    async def find_token(self, token_hash: str) -> ApiToken | None:
        for t in self._tokens.values():
            if t.token_hash == token_hash:
                return t
        return None

    async def list_tokens(self, project: str | None) -> list[ApiToken]:
        return sorted(
            (t for t in self._tokens.values() if project is None or t.project == project),
            key=lambda t: t.name,
        )

    async def revoke_token(self, name: str, now: datetime) -> ApiToken | None:
        async with self._lock:
            t = self._tokens.get(name)
            if t is None:
                return None
            if t.revoked_at is None:
                t = self._tokens[name] = replace(t, revoked_at=now)
            return t

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._audit.extend(entries)

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        found = sorted(
            (e for e in self._audit if matches(e, query)), key=lambda e: e.entry_id, reverse=True
        )
        return found[: query.limit]
