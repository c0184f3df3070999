"""Access control as a service: authenticate, authorize, audit — for every entrypoint.

:class:`AccessControl` is what the REST dependency, the gRPC interceptor and the UI call. It
loads the IAM policies a decision needs (the resource's and its project's, cached for
``policy_ttl`` and dropped at once when changed through this replica), asks the pure
:class:`~chainproof.iam.authorizer.Authorizer`, records writes and denied writes in the
audit log, and offers the IAM operations themselves (getIamPolicy, setIamPolicy,
testIamPermissions), API tokens and audit queries — each behind its own permission.

Granted admission reviews are not written to the audit log: the decision log records every
one of them already, and writing both would double the writes on the admission path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from chainproof.domain.names import validate_project_id, validate_resource_id
from chainproof.errors import InvalidArgument, NotFound, PermissionDenied
from chainproof.iam import api_tokens
from chainproof.iam import permissions as perms
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.authorizer import AccessDecision, Authorizer, Resource
from chainproof.iam.policy import EMPTY_POLICY, IamPolicy
from chainproof.iam.principals import Principal, validate_token_name
from chainproof.iam.roles import permissions_of, validate_role
from chainproof.services.access.authn import Authenticator
from chainproof.services.scribe.grafeas import new_occurrence_id
from chainproof.store.access import AccessStore, AuditEntry, AuditQuery

log = structlog.get_logger("chainproof.access")

MAX_AUDIT_PAGE = 1000
#: Denied writes recorded per second at most (with a burst of DENIED_AUDIT_BURST).
DENIED_AUDIT_RATE = 50.0
DENIED_AUDIT_BURST = 500.0


class TokenBucket:
    """``take(now)`` is true while the bucket holds a token; it refills at ``rate``/s."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens = burst
        self._at: datetime | None = None

    def take(self, now: datetime) -> bool:
        if self._at is not None:
            elapsed = max((now - self._at).total_seconds(), 0.0)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


DEFAULT_AUDIT_PAGE = 100


@dataclass(frozen=True, slots=True)
class Operation:
    """What a caller is doing, for the audit log: ``POST /v1/projects/{project}/notes`` or
    ``/grafeas.v1.Grafeas/CreateNote``."""

    method: str
    transport: str


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: ApiToken
    #: The secret, shown once; never stored.
    secret: str


def policy_resource(resource: Resource) -> list[str]:
    """The names whose policies apply to ``resource``: itself, then its project."""
    if resource.note:
        return [resource.name, f"projects/{resource.project}"]
    if resource.project:
        return [resource.name]
    return []


class Closable(Protocol):
    async def close(self) -> None: ...


class AccessControl:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        authorizer: Authorizer,
        repository: AccessStore,
        clock: Callable[[], datetime],
        policy_ttl: timedelta = timedelta(seconds=5),
        closers: Sequence[Closable] = (),
    ) -> None:
        self._closers = list(closers)
        self.authenticator = authenticator
        self._authorizer = authorizer
        self._repo = repository
        self._clock = clock
        self._ttl = policy_ttl
        self._policies: dict[str, tuple[IamPolicy, datetime]] = {}
        #: Reads of policies under way: concurrent misses for the same names share one.
        self._loading: dict[tuple[str, ...], asyncio.Future[dict[str, IamPolicy]]] = {}
        #: Bumped whenever a cached policy is dropped: a read that began before does not
        #: put what it read back into the cache.
        self._version = 0
        self._denials = TokenBucket(DENIED_AUDIT_RATE, DENIED_AUDIT_BURST)
        self._dropped = 0

    async def close(self) -> None:
        for c in self._closers:
            await c.close()

    # ------------------------------------------------------------------ decisions
    async def _policies_for(self, resource: Resource) -> list[tuple[str, IamPolicy]]:
        names = policy_resource(resource)
        if not names:
            return []
        now = self._clock()
        out: dict[str, IamPolicy] = {}
        missing: list[str] = []
        for n in names:
            hit = self._policies.get(n)
            if hit is not None and now < hit[1]:
                out[n] = hit[0]
            else:
                missing.append(n)
        if missing:
            loaded = await self._load(tuple(missing), now)
            for n in missing:
                out[n] = loaded.get(n, EMPTY_POLICY)
        return [(n, out[n]) for n in names]

    async def _load(self, names: tuple[str, ...], now: datetime) -> dict[str, IamPolicy]:
        """Read ``names``' policies once however many requests miss them together (when the
        cached copy expires every in-flight request misses at once: each reading the store
        again put a burst of reads in front of them all)."""
        pending = self._loading.get(names)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[dict[str, IamPolicy]] = asyncio.get_running_loop().create_future()
        self._loading[names] = future
        version = self._version
        try:
            loaded = await self._repo.get_policies(list(names))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it
            raise
        finally:
            self._loading.pop(names, None)
        if version == self._version:
            for n in names:
                self._policies[n] = (loaded.get(n, EMPTY_POLICY), now + self._ttl)
        future.set_result(loaded)
        return loaded

    def _forget(self, name: str) -> None:
        self._version += 1
        self._policies.pop(name, None)

    async def decide(
        self, principal: Principal, permission: str, resource: Resource
    ) -> AccessDecision:
        return self._authorizer.decide(
            principal, permission, resource, await self._policies_for(resource)
        )

    async def require(
        self,
        principal: Principal,
        permission: str,
        resource: Resource,
        operation: Operation,
    ) -> AccessDecision:
        """The decision if allowed; PermissionDenied naming what is missing otherwise. Denied
        writes are audited here; granted writes by :meth:`record` once their outcome is
        known."""
        decision = await self.decide(principal, permission, resource)
        if not decision.allowed:
            if permission in perms.WRITES:
                await self.record(principal, decision, operation, "PERMISSION_DENIED")
            log.info(
                "permission denied",
                member=principal.member,
                permission=permission,
                resource=resource.name,
                method=operation.method,
            )
            raise PermissionDenied(decision.reason)
        return decision

    async def record(
        self, principal: Principal, decision: AccessDecision, operation: Operation, code: str
    ) -> None:
        """Audit one use of a write permission (granted or denied) and how it ended."""
        if decision.permission not in perms.WRITES:
            return
        if decision.allowed and decision.permission == perms.ADMISSION_REVIEW:
            return  # the decision log holds these
        if not decision.allowed and not self._denials.take(self._clock()):
            # A flood of refused writes must not become a flood of database writes that
            # slows everyone (admission included); the refusals themselves still happen.
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning(
                    "audit: denied writes arrive faster than the audit bound; not all are recorded",
                    dropped=self._dropped,
                    per_second=DENIED_AUDIT_RATE,
                )
            return
        project = (
            decision.resource.split("/")[1] if decision.resource.startswith("projects/") else ""
        )
        entry = AuditEntry(
            entry_id=new_occurrence_id(),
            project=project,
            time=self._clock(),
            principal=principal.member,
            permission=decision.permission,
            resource=decision.resource,
            outcome="granted" if decision.allowed else "denied",
            data={
                "method": operation.method,
                "transport": operation.transport,
                "via": principal.via,
                "code": code,
                "reason": decision.reason,
            },
        )
        try:
            await self._repo.append_audit([entry])
        except Exception:
            # The write itself has happened (or was refused); losing its audit line must be
            # loud, not fatal to the answer the caller already earned.
            log.exception("audit entry lost", permission=entry.permission, member=entry.principal)

    async def finish(
        self, principal: Principal, decision: AccessDecision, operation: Operation, code: str
    ) -> None:
        """An authorized operation ended with ``code``: audit it, and when it deleted a note,
        delete the note's IAM policy too, so that a note re-created under the same name does
        not inherit the grants of the one that was deleted."""
        await self.record(principal, decision, operation, code)
        if code == "OK" and decision.allowed and decision.permission == perms.NOTES_DELETE:
            project = decision.resource.split("/")[1]
            await self._repo.set_policy(
                decision.resource, project, EMPTY_POLICY, None, self._clock()
            )
            self._forget(decision.resource)

    # ------------------------------------------------------------------ IAM policies
    @staticmethod
    def iam_resource(project: str, note: str = "") -> Resource:
        validate_project_id(project)
        if note:
            validate_resource_id(note, what="note")
        return Resource(project, note)

    async def get_iam_policy(self, resource: Resource) -> IamPolicy:
        loaded = await self._repo.get_policies([resource.name])
        return loaded.get(resource.name, EMPTY_POLICY)

    async def set_iam_policy(
        self, resource: Resource, policy: IamPolicy, etag: str | None
    ) -> IamPolicy:
        named = {
            m.removeprefix("token:")
            for b in policy.bindings
            for m in b.members
            if m.startswith("token:")
        }
        if named:
            existing = {t.name for t in await self._repo.list_tokens(None)}
            missing = sorted(named - existing)
            if missing:
                # Token names are global: a binding to a name nobody holds yet would go to
                # whoever, in any project, creates a token of that name first.
                raise InvalidArgument(
                    f"members token:{', token:'.join(missing)} name no API token; create the "
                    "token first, then grant it roles"
                )
        stored = await self._repo.set_policy(
            resource.name, resource.project, policy, etag, self._clock()
        )
        self._forget(resource.name)
        return stored

    async def test_iam_permissions(
        self, principal: Principal, resource: Resource, wanted: Iterable[str]
    ) -> list[str]:
        """The subset of ``wanted`` the caller holds on ``resource`` (Google's semantics:
        unknown names are an error, not silently dropped)."""
        asked = list(wanted)
        unknown = [p for p in asked if p not in perms.ALL]
        if unknown:
            raise InvalidArgument(
                f"unknown permissions: {', '.join(unknown)}; see docs/auth.md for the list"
            )
        policies = await self._policies_for(resource)
        return [
            p
            for p in dict.fromkeys(asked)
            if self._authorizer.decide(principal, p, resource, policies).allowed
        ]

    # ------------------------------------------------------------------ API tokens
    async def create_token(
        self,
        creator: Principal,
        name: str,
        project: str,
        role: str,
        expires_at: datetime | None,
    ) -> CreatedToken:
        validate_token_name(name)
        validate_project_id(project)
        validate_role(role)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise InvalidArgument("token expiry must be in the future")
        # A token may not carry more than its creator holds: otherwise a tokens.create grant
        # would be a way to mint an administrator.
        missing = [
            p
            for p in sorted(permissions_of(role))
            if not (await self.decide(creator, p, Resource(project))).allowed
        ]
        if missing:
            raise PermissionDenied(
                f"a token with {role} on projects/{project} would hold permissions you do not "
                f"have there: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
            )
        secret = api_tokens.new_secret()
        token = ApiToken(
            name=name,
            project=project,
            role=role,
            token_hash=api_tokens.hash_token(secret),
            created_at=now,
            created_by=creator.member,
            expires_at=expires_at,
        )
        await self._repo.insert_token(token)
        return CreatedToken(token, secret)

    async def list_tokens(self, project: str) -> list[ApiToken]:
        return await self._repo.list_tokens(project)

    async def find_token_for(self, project: str, name: str) -> ApiToken:
        for t in await self._repo.list_tokens(project):
            if t.name == name:
                return t
        raise NotFound(f"no API token named {name!r} in project {project}")

    async def revoke_token(self, project: str, name: str) -> ApiToken:
        await self.find_token_for(project, name)
        revoked = await self._repo.revoke_token(name, self._clock())
        if revoked is None:
            raise NotFound(f"no API token named {name!r} in project {project}")
        self.authenticator.forget()
        return revoked

    async def find_token_by_hash(self, token_hash: str) -> ApiToken | None:
        return await self._repo.find_token(token_hash)

    # ------------------------------------------------------------------ audit
    async def list_audit(
        self,
        project: str,
        *,
        principal: str | None,
        permission: str | None,
        since: datetime | None,
        until: datetime | None,
        before: str | None,
        page_size: int | None,
    ) -> list[AuditEntry]:
        size = DEFAULT_AUDIT_PAGE if page_size is None else page_size
        if not 0 < size <= MAX_AUDIT_PAGE:
            raise InvalidArgument(f"pageSize must be between 1 and {MAX_AUDIT_PAGE}")
        if permission is not None and permission not in perms.ALL:
            raise InvalidArgument(f"unknown permission {permission!r}")
        return await self._repo.list_audit(
            AuditQuery(
                project=validate_project_id(project),
                principal=principal,
                permission=permission,
                since=since,
                until=until,
                before=before,
                limit=size,
            )
        )
