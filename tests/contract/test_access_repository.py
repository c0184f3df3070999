"""The access repository contract, on every adapter: policies with compare-and-set etags,
API tokens found by hash and never renamed or reused, the audit log newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from chainproof.errors import AlreadyExists, FailedPrecondition
from chainproof.iam import api_tokens
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.policy import IamPolicy
from chainproof.store.access import AccessRepository, AuditEntry, AuditQuery
from chainproof.store.factory import create_access_repository
from chainproof.store.port import MetadataStore

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
P1 = IamPolicy.of([("roles/chainproof.admin", ["user:a@x.io"])])
P2 = P1.with_binding("roles/containeranalysis.notes.attacher", "token:qa")


@pytest.fixture
def repo(store: MetadataStore) -> AccessRepository:
    return create_access_repository(store)


async def test_policy_compare_and_set(repo: AccessRepository) -> None:
    assert await repo.get_policies(["projects/p"]) == {}
    empty_etag = IamPolicy().etag
    await repo.set_policy("projects/p", "p", P1, empty_etag, T0)
    assert (await repo.get_policies(["projects/p", "projects/q"])) == {"projects/p": P1}
    with pytest.raises(FailedPrecondition, match="etag mismatch"):
        await repo.set_policy("projects/p", "p", P2, empty_etag, T0)
    assert (await repo.get_policies(["projects/p"]))["projects/p"] == P1
    await repo.set_policy("projects/p", "p", P2, P1.etag, T0)
    got = (await repo.get_policies(["projects/p"]))["projects/p"]
    assert got == P2 and got.etag == P2.etag
    # No etag: an unconditional overwrite (Google's semantics); an empty policy removes it.
    await repo.set_policy("projects/p", "p", IamPolicy(), None, T0)
    assert await repo.get_policies(["projects/p"]) == {}


async def test_note_and_project_policies_are_separate(repo: AccessRepository) -> None:
    await repo.set_policy("projects/p/notes/n", "p", P2, None, T0)
    await repo.set_policy("projects/p", "p", P1, None, T0)
    got = await repo.get_policies(["projects/p/notes/n", "projects/p"])
    assert got == {"projects/p/notes/n": P2, "projects/p": P1}


def _token(name: str, project: str = "p") -> tuple[str, ApiToken]:
    secret = api_tokens.new_secret()
    return secret, ApiToken(
        name=name,
        project=project,
        role="roles/containeranalysis.occurrences.editor",
        token_hash=api_tokens.hash_token(secret),
        created_at=T0,
        created_by="user:a@x.io",
        expires_at=T0 + dt.timedelta(days=30),
    )


async def test_tokens_by_hash_list_and_revoke(repo: AccessRepository) -> None:
    secret, tok = _token("ci")
    await repo.insert_token(tok)
    _, other = _token("scanner", project="q")
    await repo.insert_token(other)
    assert await repo.find_token(api_tokens.hash_token(secret)) == tok
    assert await repo.find_token(api_tokens.hash_token(api_tokens.new_secret())) is None
    assert [t.name for t in await repo.list_tokens("p")] == ["ci"]
    assert [t.name for t in await repo.list_tokens(None)] == ["ci", "scanner"]
    with pytest.raises(AlreadyExists, match="already exists"):
        await repo.insert_token(_token("ci")[1])
    revoked = await repo.revoke_token("ci", T0 + dt.timedelta(hours=1))
    assert revoked is not None and revoked.revoked_at == T0 + dt.timedelta(hours=1)
    again = await repo.revoke_token("ci", T0 + dt.timedelta(hours=2))
    assert again is not None and again.revoked_at == T0 + dt.timedelta(hours=1)
    found = await repo.find_token(api_tokens.hash_token(secret))
    assert found is not None and found.revoked_at is not None
    assert await repo.revoke_token("nobody", T0) is None
    # A revoked name is still taken.
    with pytest.raises(AlreadyExists):
        await repo.insert_token(_token("ci")[1])


async def test_audit_filters_and_pages_newest_first(repo: AccessRepository) -> None:
    entries = [
        AuditEntry(
            entry_id=f"0000-{i:04d}",
            project="p" if i % 4 else "q",
            time=T0 + dt.timedelta(minutes=i),
            principal="user:a@x.io" if i % 2 else "token:ci",
            permission="containeranalysis.notes.create",
            resource="projects/p",
            outcome="denied" if i % 3 == 0 else "granted",
            data={"method": "POST /v1/projects/{project}/notes", "code": "OK"},
        )
        for i in range(12)
    ]
    await repo.append_audit(entries)
    in_p = [e for e in entries if e.project == "p"]
    got = await repo.list_audit(AuditQuery(project="p"))
    assert got == sorted(in_p, key=lambda e: e.entry_id, reverse=True)
    by_token = await repo.list_audit(AuditQuery(project="p", principal="token:ci"))
    assert {e.principal for e in by_token} == {"token:ci"} and by_token
    window = await repo.list_audit(
        AuditQuery(
            project="p", since=T0 + dt.timedelta(minutes=3), until=T0 + dt.timedelta(minutes=7)
        )
    )
    assert [e.entry_id for e in window] == ["0000-0006", "0000-0005", "0000-0003"]
    page = await repo.list_audit(AuditQuery(project="p", limit=2))
    rest = await repo.list_audit(AuditQuery(project="p", before=page[-1].entry_id))
    assert [e.entry_id for e in page + rest] == [e.entry_id for e in got]
    none = await repo.list_audit(AuditQuery(project="p", permission="chainproof.tokens.create"))
    assert none == []
