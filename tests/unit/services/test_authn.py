"""The Authenticator: which credential wins, presented-but-bad never becomes anonymous, and
verified tokens are cached until they expire (a fake verifier that implements our port)."""

from __future__ import annotations

import datetime as dt

import jwt as pyjwt
import pytest

from chainproof.errors import PermissionDenied, Unauthenticated
from chainproof.iam import api_tokens
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.principals import Principal, anonymous
from chainproof.services.access.authn import Authenticator, Credentials, local_admin

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
ISS = "https://issuer.example"


class CountingVerifier:
    def __init__(self, lifetime: dt.timedelta) -> None:
        self.calls = 0
        self.lifetime = lifetime

    async def verify(self, token: str) -> Principal:
        self.calls += 1
        return Principal("user:a@x.io", via="oidc", expires_at=NOW + self.lifetime)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def jwt_for(iss: str) -> str:
    return pyjwt.encode({"iss": iss, "sub": "x"}, "k" * 32, algorithm="HS256")


def make(
    verifier: CountingVerifier, clock: Clock, stored: dict[str, ApiToken] | None = None
) -> Authenticator:
    stored = stored or {}

    async def find(h: str) -> ApiToken | None:
        return stored.get(h)

    return Authenticator(
        issuers={ISS: verifier},
        token_review=None,
        find_api_token=find,
        anonymous_principal=anonymous(),
        clock=clock,
    )


async def test_verification_is_cached_until_the_token_expires() -> None:
    v, clock = CountingVerifier(dt.timedelta(minutes=2)), Clock()
    auth = make(v, clock)
    token = jwt_for(ISS)
    for _ in range(5):
        assert (await auth.authenticate(Credentials(bearer=token))).member == "user:a@x.io"
    assert v.calls == 1
    clock.now = NOW + dt.timedelta(minutes=2)
    await auth.authenticate(Credentials(bearer=token))
    assert v.calls == 2


async def test_untrusted_issuer_and_garbage_are_refused_not_anonymous() -> None:
    auth = make(CountingVerifier(dt.timedelta(minutes=1)), Clock())
    with pytest.raises(Unauthenticated, match="not trusted"):
        await auth.authenticate(Credentials(bearer=jwt_for("https://evil.example")))
    with pytest.raises(Unauthenticated, match="not a valid JWT"):
        await auth.authenticate(Credentials(bearer="garbage"))
    with pytest.raises(Unauthenticated, match="empty"):
        await auth.authenticate(Credentials(bearer=""))
    assert (await auth.authenticate(Credentials())).member == "anonymous"


async def test_api_tokens_by_hash_with_a_short_cache() -> None:
    secret = api_tokens.new_secret()
    stored = {
        api_tokens.hash_token(secret): ApiToken(
            name="ci",
            project="prod",
            role="roles/containeranalysis.occurrences.editor",
            token_hash=api_tokens.hash_token(secret),
            created_at=NOW,
            created_by="anonymous",
        )
    }
    clock = Clock()
    auth = make(CountingVerifier(dt.timedelta(minutes=1)), clock, stored)
    p = await auth.authenticate(Credentials(bearer=secret))
    assert p.member == "token:ci" and p.grants[0].project == "prod"
    stored.clear()  # revoked on another replica
    assert (await auth.authenticate(Credentials(bearer=secret))).member == "token:ci"
    clock.now = NOW + dt.timedelta(seconds=11)  # past api_token_ttl
    with pytest.raises(Unauthenticated, match="not known"):
        await auth.authenticate(Credentials(bearer=secret))
    with pytest.raises(Unauthenticated, match="malformed"):
        await auth.authenticate(Credentials(bearer="cpt_x"))


def test_local_admin_is_anonymous_with_admin_everywhere() -> None:
    admin = local_admin()
    assert not admin.authenticated
    assert admin.grants[0].project == "*"


async def test_denied_writes_are_audited_up_to_a_bound() -> None:
    from chainproof.iam import permissions as p
    from chainproof.iam.authorizer import Authorizer, Resource
    from chainproof.services.access.control import DENIED_AUDIT_BURST, AccessControl, Operation
    from chainproof.store.access import AccessStore, AuditQuery
    from chainproof.store.memory import MemoryStore

    clock = Clock()
    repo = AccessStore(MemoryStore())
    access = AccessControl(
        authenticator=make(CountingVerifier(dt.timedelta(minutes=1)), clock),
        authorizer=Authorizer(),
        repository=repo,
        clock=clock,
    )
    op = Operation("POST /v1/projects/{project}/notes", "rest")
    flood = int(DENIED_AUDIT_BURST) + 100
    for _ in range(flood):
        with pytest.raises(PermissionDenied):
            await access.require(anonymous(), p.NOTES_CREATE, Resource("x"), op)
    recorded = await repo.list_audit(AuditQuery(project="x", limit=1000))
    assert len(recorded) == int(DENIED_AUDIT_BURST)
    clock.now = NOW + dt.timedelta(seconds=1)  # refills at 50/s
    for _ in range(60):
        with pytest.raises(PermissionDenied):
            await access.require(anonymous(), p.NOTES_CREATE, Resource("x"), op)
    recorded = await repo.list_audit(AuditQuery(project="x", limit=1000))
    assert len(recorded) == int(DENIED_AUDIT_BURST) + 50


class _SlowPolicies:
    """An AccessStore whose policy reads take a while and are counted."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.reads = 0
        self.release = __import__("asyncio").Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def get_policies(self, resources: list[str]) -> object:
        self.reads += 1
        found = await self.inner.get_policies(resources)  # type: ignore[attr-defined]
        await self.release.wait()  # what was read, returned late
        return found


async def test_concurrent_misses_of_an_iam_policy_read_the_store_once() -> None:
    """When the cached policy expires every review in flight misses it together; one read
    answers them all (issue 17: a burst of reads in front of every review)."""
    import asyncio

    from chainproof.iam import permissions as p
    from chainproof.iam.authorizer import Authorizer, Resource
    from chainproof.iam.policy import IamPolicy
    from chainproof.services.access.control import AccessControl
    from chainproof.store.access import AccessStore
    from chainproof.store.memory import MemoryStore

    clock = Clock()
    repo = _SlowPolicies(AccessStore(MemoryStore()))
    access = AccessControl(
        authenticator=make(CountingVerifier(dt.timedelta(minutes=1)), clock),
        authorizer=Authorizer(),
        repository=repo,  # type: ignore[arg-type]
        clock=clock,
    )
    resource = Resource("shop")
    viewer = IamPolicy.of([("roles/chainproof.viewer", ["allUsers"])])
    await repo.inner.set_policy(resource.name, "shop", viewer, None, clock())
    waiting = [
        asyncio.ensure_future(access.decide(anonymous(), p.NOTES_GET, resource)) for _ in range(16)
    ]
    await asyncio.sleep(0.01)
    repo.release.set()
    decisions = await asyncio.gather(*waiting)
    assert repo.reads == 1
    assert all(d.allowed for d in decisions)

    # A policy set while a read is under way is not overwritten by what that read found.
    repo.release.clear()
    clock.now += dt.timedelta(minutes=1)  # the cached copy expired
    stale = asyncio.ensure_future(access.decide(anonymous(), p.NOTES_GET, resource))
    await asyncio.sleep(0.01)
    repo.release.set()
    await access.set_iam_policy(resource, IamPolicy(), None)  # revoke allUsers
    await stale
    assert not (await access.decide(anonymous(), p.NOTES_GET, resource)).allowed
