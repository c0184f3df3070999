"""The access repository on SQL (SQLite and PostgreSQL), on the unit of work's connection.

The rules (etag compare-and-set, names never reused, revocation kept at its first time) are
the base class's (store/access.py); the queries here only read and write rows. Queries are
SQLAlchemy Core expressions (parameterised), never formatted strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.policy import IamPolicy
from chainproof.store.access import AccessRepository, AuditEntry, AuditQuery, token_exists_error
from chainproof.store.sql.schema import api_tokens, audit_log, iam_policies
from chainproof.store.sql.tx import Row, SqlTx


def _policy(bindings: Any) -> IamPolicy:
    return IamPolicy.of((b["role"], b["members"]) for b in bindings)


def _token(row: Row) -> ApiToken:
    return ApiToken(
        name=row.name,
        project=row.project,
        role=row.role,
        token_hash=row.token_hash,
        created_at=row.create_time,
        created_by=row.created_by,
        expires_at=row.expire_time,
        revoked_at=row.revoke_time,
    )


class SqlAccess(AccessRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._c = tx.connection

    async def _get_policies(self, resources: Sequence[str]) -> dict[str, IamPolicy]:
        rows = await self._c.execute(
            sa.select(iam_policies.c.resource, iam_policies.c.bindings).where(
                iam_policies.c.resource.in_(list(resources))
            )
        )
        return {r.resource: _policy(r.bindings) for r in rows}

    async def _write_policy(
        self, resource: str, project: str, policy: IamPolicy, now: datetime
    ) -> None:
        t = iam_policies
        await self._c.execute(sa.delete(t).where(t.c.resource == resource))
        if policy.bindings:
            await self._c.execute(
                sa.insert(t).values(
                    resource=resource,
                    project=project,
                    bindings=policy.to_json()["bindings"],
                    etag=policy.etag,
                    update_time=now,
                )
            )

    async def _token_named(self, name: str) -> ApiToken | None:
        row = (
            await self._c.execute(sa.select(api_tokens).where(api_tokens.c.name == name))
        ).first()
        return _token(row) if row is not None else None

    async def _insert_token(self, token: ApiToken) -> None:
        try:
            await self._c.execute(
                sa.insert(api_tokens).values(
                    name=token.name,
                    project=token.project,
                    role=token.role,
                    token_hash=token.token_hash,
                    created_by=token.created_by,
                    create_time=token.created_at,
                    expire_time=token.expires_at,
                    revoke_time=token.revoked_at,
                )
            )
        except IntegrityError as exc:  # a concurrent insert of the same name
            raise token_exists_error(token.name) from exc

    async def find_token(self, token_hash: str) -> ApiToken | None:
        stmt = sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash)
        row = (await self._c.execute(stmt)).first()
        return _token(row) if row is not None else None

    async def list_tokens(self, project: str | None) -> list[ApiToken]:
        q = sa.select(api_tokens).order_by(api_tokens.c.name)
        if project is not None:
            q = q.where(api_tokens.c.project == project)
        return [_token(r) for r in await self._c.execute(q)]

    async def _revoke_if_live(self, name: str, now: datetime) -> None:
        t = api_tokens
        await self._c.execute(
            sa.update(t).where(t.c.name == name, t.c.revoke_time.is_(None)).values(revoke_time=now)
        )

    async def _append_audit(self, entries: Sequence[AuditEntry]) -> None:
        await self._c.execute(
            sa.insert(audit_log),
            [
                {
                    "entry_id": e.entry_id,
                    "project": e.project,
                    "time": e.time,
                    "principal": e.principal,
                    "permission": e.permission,
                    "resource": e.resource,
                    "outcome": e.outcome,
                    "data": e.data,
                }
                for e in entries
            ],
        )

    async def _list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        t = audit_log
        q = sa.select(t).where(t.c.project == query.project)
        if query.principal is not None:
            q = q.where(t.c.principal == query.principal)
        if query.permission is not None:
            q = q.where(t.c.permission == query.permission)
        if query.since is not None:
            q = q.where(t.c.time >= query.since)
        if query.until is not None:
            q = q.where(t.c.time < query.until)
        if query.before is not None:
            q = q.where(t.c.entry_id < query.before)
        q = q.order_by(t.c.entry_id.desc()).limit(query.limit)
        return [
            AuditEntry(
                entry_id=r.entry_id,
                project=r.project,
                time=r.time,
                principal=r.principal,
                permission=r.permission,
                resource=r.resource,
                outcome=r.outcome,
                data=r.data,
            )
            for r in await self._c.execute(q)
        ]
