"""The access data: IAM policies, API tokens and the audit log, as one repository.

:class:`AccessRepository` works inside a unit of work (``uow.access``) like every other
repository; its adapters live with the rest (store/memory.py, store/sql/access.py).
``set_policy`` is a compare-and-set on the etag, so two administrators editing the same
policy cannot silently overwrite each other. Tokens are found by the hash of their secret;
the secret itself is never given to the store. Token names are never reused.

:class:`AccessStore` is the same repository for callers whose every call stands alone
(authentication, authorization, the IAM and token APIs): each call is one unit of work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chainproof.errors import AlreadyExists, FailedPrecondition
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.policy import IamPolicy
from chainproof.store.rules import distinct

if TYPE_CHECKING:
    from chainproof.store.port import MetadataStore


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


def matches(entry: AuditEntry, q: AuditQuery) -> bool:
    """The definition of AuditQuery (``before`` included), for adapters that filter in code."""
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


class AccessRepository(ABC):
    async def get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        """The stored policies among ``resources``, by resource name."""
        if not resources:
            return {}
        return await self._get_policies(distinct(resources))

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
        if expected_etag is not None:
            current = (await self._get_policies([resource])).get(resource, IamPolicy())
            if expected_etag != current.etag:
                raise etag_mismatch_error(resource)
        await self._write_policy(resource, project, policy, now)
        return policy

    async def insert_token(self, token: ApiToken) -> None:
        """AlreadyExists when the name is taken (by a live or a revoked token)."""
        if await self._token_named(token.name) is not None:
            raise token_exists_error(token.name)
        await self._insert_token(token)

    @abstractmethod
    async def find_token(self, token_hash: str) -> ApiToken | None: ...

    @abstractmethod
    async def list_tokens(self, project: str | None) -> list[ApiToken]:
        """One project's tokens (every project's for None), by name."""

    async def revoke_token(self, name: str, now: datetime) -> ApiToken | None:
        """The token, revoked (at ``now`` unless it already was); None when unknown."""
        await self._revoke_if_live(name, now)
        return await self._token_named(name)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            await self._append_audit(entries)

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Newest first, at most ``query.limit``."""
        if query.limit <= 0:
            return []
        return await self._list_audit(query)

    # adapter hooks ---------------------------------------------------------------------------
    @abstractmethod
    async def _get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        """``resources`` is not empty and has no repeats."""

    @abstractmethod
    async def _write_policy(
        self, resource: str, project: str, policy: IamPolicy, now: datetime
    ) -> None:
        """Replace the stored policy of ``resource``; remove it when ``policy`` has no
        bindings."""

    @abstractmethod
    async def _token_named(self, name: str) -> ApiToken | None: ...

    @abstractmethod
    async def _insert_token(self, token: ApiToken) -> None:
        """No token of that name was stored when checked; one inserted since (a concurrent
        writer) raises AlreadyExists."""

    @abstractmethod
    async def _revoke_if_live(self, name: str, now: datetime) -> None:
        """Set the revocation time of the token ``name`` to ``now`` if it has none."""

    @abstractmethod
    async def _append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """``entries`` is not empty."""

    @abstractmethod
    async def _list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """``query.limit`` is positive."""


class AccessStore:
    """The access repository of ``store`` with each call its own unit of work (reads in a
    read-only one), for callers whose calls stand alone."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        async with self._store.session(readonly=True) as uow:
            return await uow.access.get_policies(resources)

    async def set_policy(
        self,
        resource: str,
        project: str,
        policy: IamPolicy,
        expected_etag: str | None,
        now: datetime,
    ) -> IamPolicy:
        async with self._store.session() as uow:
            return await uow.access.set_policy(resource, project, policy, expected_etag, now)

    async def insert_token(self, token: ApiToken) -> None:
        async with self._store.session() as uow:
            await uow.access.insert_token(token)

    async def find_token(self, token_hash: str) -> ApiToken | None:
        async with self._store.session(readonly=True) as uow:
            return await uow.access.find_token(token_hash)

    async def list_tokens(self, project: str | None) -> list[ApiToken]:
        async with self._store.session(readonly=True) as uow:
            return await uow.access.list_tokens(project)

    async def revoke_token(self, name: str, now: datetime) -> ApiToken | None:
        async with self._store.session() as uow:
            return await uow.access.revoke_token(name, now)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._store.session() as uow:
            await uow.access.append_audit(entries)

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        async with self._store.session(readonly=True) as uow:
            return await uow.access.list_audit(query)
