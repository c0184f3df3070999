"""The judge over a real (memory) store: attestors and policy as resources, evidence gathered
and verified, decisions explained."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from chainproof.api.render import judge_document_json
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.services.judge.decision_log import DecisionEntry
from chainproof.services.judge.evidence import EvidenceGatherer
from chainproof.services.judge.judging import Judge
from chainproof.store.memory import MemoryStore
from chainproof.store.port import DecisionQuery
from unit.services.judge_fixtures import NOW, System

A = "gcr.io/acme/app@sha256:" + "a" * 64
B = "gcr.io/acme/app@sha256:" + "b" * 64
REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}


@pytest.fixture
def system() -> System:
    return System()


async def test_attestor_needs_an_existing_attestation_note(system: System) -> None:
    body = {"userOwnedGrafeasNote": {"noteReference": "projects/sec/notes/missing"}}
    with pytest.raises(FailedPrecondition, match="does not exist: create the ATTESTATION note"):
        await system.resources.create_attestor("projects/sec", "qa", body)
    await system.grafeas.create_note(
        "projects/sec", "b", note_from_json({"build": {"builderVersion": "1"}})
    )
    body = {"userOwnedGrafeasNote": {"noteReference": "projects/sec/notes/b"}}
    with pytest.raises(FailedPrecondition, match="is a BUILD note"):
        await system.resources.create_attestor("projects/sec", "qa", body)


async def test_attestor_keys_are_checked_when_written(system: System) -> None:
    await system.grafeas.create_note("projects/sec", "n", note_from_json({"attestation": {}}))
    body = {
        "userOwnedGrafeasNote": {
            "noteReference": "projects/sec/notes/n",
            "publicKeys": [
                {
                    "id": "k",
                    "pkixPublicKey": {
                        "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                        "signatureAlgorithm": "ECDSA_P256_SHA256",
                    },
                }
            ],
        }
    }
    with pytest.raises(InvalidArgument) as info:
        await system.resources.create_attestor("projects/sec", "qa", body)
    assert info.value.details[0].startswith("userOwnedGrafeasNote.publicKeys[0]:")
    with pytest.raises(NotFound):
        await system.resources.get_attestor("projects/sec/attestors/qa")


async def test_attestor_crud_with_etags(system: System) -> None:
    signer = await system.attestor("sec", "qa")
    got = judge_document_json(await system.resources.get_attestor(signer.attestor))
    assert got["name"] == signer.attestor and got["etag"]
    with pytest.raises(AlreadyExists):
        await system.attestor("sec", "qa")
    stale = {**got, "description": "x", "etag": "stale"}
    with pytest.raises(FailedPrecondition, match="etag 'stale' is stale"):
        await system.resources.update_attestor(signer.attestor, stale)
    updated = judge_document_json(
        await system.resources.update_attestor(signer.attestor, {**got, "description": "QA"})
    )
    assert updated["description"] == "QA" and updated["etag"] != got["etag"]
    page = await system.resources.list_attestors("projects/sec", None, "")
    assert [a["name"] for a in map(judge_document_json, page.items)] == [signer.attestor]


async def test_policy_refuses_unknown_attestors_and_protects_used_ones(system: System) -> None:
    rule = {**REQUIRE, "requireAttestationsBy": ["projects/sec/attestors/ghost"]}
    with pytest.raises(FailedPrecondition, match="projects/sec/attestors/ghost"):
        await system.policy("prod", rule)
    with pytest.raises(NotFound, match="has no policy yet"):
        await system.resources.get_policy("projects/prod")
    local = await system.attestor("prod", "qa")
    remote = await system.attestor("sec", "scan")
    rule = {**REQUIRE, "requireAttestationsBy": [local.attestor, remote.attestor]}
    await system.policy("prod", rule)
    policy = judge_document_json(await system.resources.get_policy("projects/prod"))
    assert policy["defaultAdmissionRule"]["requireAttestationsBy"] == [
        local.attestor,
        remote.attestor,
    ]
    # An attestor its own project's policy uses cannot be deleted.
    with pytest.raises(FailedPrecondition, match="required by the policy of projects/prod"):
        await system.resources.delete_attestor(local.attestor)
    # One used from another project can; that policy then fails closed, naming it.
    await system.resources.delete_attestor(remote.attestor)
    await system.sign(local, A)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED
    assert any(remote.attestor in r for r in decision.denial_reasons())


async def test_no_policy_denies_everything(system: System) -> None:
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED
    assert "has no policy" in decision.denial_reasons()[0]


async def test_attestation_flow_denied_then_allowed(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    before = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert before.outcome is Outcome.DENIED
    assert qa.attestor in before.denial_reasons()[0]

    await system.sign(qa, A)
    after = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert after.outcome is Outcome.ALLOWED, after.explain()
    image = after.images[0]
    assert any(qa.signer.key_id in r.key_ids for r in image.requirements)
    # The same attestation does not admit another digest of the same repository.
    other = await system.judge.evaluate("prod", AdmissionRequest(images=(B,)))
    assert other.outcome is Outcome.DENIED


async def test_replayed_attestation_is_reported_as_another_digest(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    # A valid signature for A, filed under B: the digest comes from the request, so it fails.
    await system.sign(qa, A, filed_under=B)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(B,)))
    assert decision.outcome is Outcome.DENIED
    reason = decision.denial_reasons()[0]
    assert "1 found" in reason and "another digest" in reason


async def test_unknown_key_is_named(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    mallory = await system.attestor("evil", "mallory")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    # Mallory signs with her own key but files it under QA's note.
    mallory.note = qa.note
    await system.sign(mallory, A)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED
    assert "unknown key" in decision.denial_reasons()[0]


async def test_in_toto_provenance_is_verified_and_checked(system: System) -> None:
    builder = await system.attestor("sec", "builder")
    rule = {
        **REQUIRE,
        "requireAttestationsBy": [builder.attestor],
        "chainproofChecks": {
            "requiredPredicates": [
                {"predicateType": "SLSA_PROVENANCE", "attestors": [builder.attestor]}
            ],
            "trustedBuilders": ["https://github.com/actions/runner"],
        },
    }
    await system.policy("prod", rule)
    await system.attest(
        builder,
        A,
        "https://slsa.dev/provenance/v1",
        {
            "buildDefinition": {"buildType": "x", "externalParameters": {}},
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
        },
    )
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


async def test_vulnerabilities_and_vex_from_the_store(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    rule = {
        **REQUIRE,
        "requireAttestationsBy": [qa.attestor],
        "chainproofChecks": {
            "vulnerabilities": {
                "maximumFixableSeverity": "MEDIUM",
                "maximumUnfixableSeverity": "HIGH",
            },
            "freshness": {"maximumScanAgeHours": 24},
        },
    }
    await system.policy("prod", rule)
    await system.sign(qa, A)
    await system.grafeas.create_note(
        "projects/prod", "CVE-2026-1", note_from_json({"vulnerability": {"severity": "CRITICAL"}})
    )
    await system.grafeas.create_note(
        "projects/prod", "scanner", note_from_json({"discovery": {"analysisKind": "VULNERABILITY"}})
    )

    def vuln(vex_state: str | None) -> object:
        body = {
            "resourceUri": A,
            "noteName": "projects/prod/notes/CVE-2026-1",
            "vulnerability": {
                "effectiveSeverity": "CRITICAL",
                "fixAvailable": True,
                "packageIssue": [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "openssl"}],
            },
        }
        if vex_state:
            body["vulnerability"]["vexAssessment"] = {"state": vex_state}
        return occurrence_from_json(body)

    scan = await system.grafeas.create_occurrence(
        "projects/prod",
        occurrence_from_json(
            {
                "resourceUri": A,
                "noteName": "projects/prod/notes/scanner",
                "discovery": {
                    "analysisStatus": "FINISHED_SUCCESS",
                    "lastScanTime": (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
                },
            }
        ),
    )
    assert scan.name
    finding = await system.grafeas.create_occurrence("projects/prod", vuln(None))
    denied = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert denied.outcome is Outcome.DENIED
    assert "CVE-2026-1" in " ".join(denied.denial_reasons())

    await system.grafeas.delete_occurrence(finding.name)
    await system.grafeas.create_occurrence("projects/prod", vuln("NOT_AFFECTED"))
    allowed = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert allowed.outcome is Outcome.ALLOWED, allowed.explain()


async def test_verification_cache_never_serves_changed_evidence(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    occ = await system.sign(qa, A)
    first = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    second = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert first.outcome is second.outcome is Outcome.ALLOWED
    assert system.gatherer.cache.hits >= 1
    # Revoking the attestation (deleting it) takes effect at once, cache or not.
    await system.grafeas.delete_occurrence(occ.name)
    third = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert third.outcome is Outcome.DENIED
    # Rotating the attestor's key out invalidates what the old key verified.
    occ = await system.sign(qa, A)
    assert (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed
    other = await system.attestor("sec", "other")
    current = judge_document_json(await system.resources.get_attestor(qa.attestor))
    rotated = {
        **current,
        "userOwnedGrafeasNote": {
            **current["userOwnedGrafeasNote"],
            "publicKeys": judge_document_json(await system.resources.get_attestor(other.attestor))[
                "userOwnedGrafeasNote"
            ]["publicKeys"],
        },
    }
    await system.resources.update_attestor(qa.attestor, rotated)
    assert not (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed


async def test_decision_log_records_and_filters(system: System) -> None:
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    await system.decisions.record(
        DecisionEntry("prod", decision, request_uid="u1", namespace="web", outcome="denied")
    )
    page = await system.decisions.list(DecisionQuery("prod", namespace="web"), None, "")
    assert [d["requestUid"] for d in page.items] == ["u1"]
    assert (
        await system.decisions.list(DecisionQuery("prod", namespace="other"), None, "")
    ).items == []


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0

    def session(self, *, readonly: bool = False):  # type: ignore[no-untyped-def]
        self.sessions += 1
        return super().session(readonly=readonly)


async def test_judge_cache_reuses_and_drops_evidence_when_it_changes() -> None:
    store = CountingStore()
    system = System(store=store, cache_ttl=timedelta(seconds=30))
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    occ = await system.sign(qa, A)
    assert (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed
    before = store.sessions
    assert (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed
    assert store.sessions == before  # answered from the cache, no store access

    # A write through this server is seen at once.
    await system.grafeas.delete_occurrence(occ.name)
    assert not (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed

    # A policy change too.
    await system.sign(qa, A)
    assert (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed
    await system.policy(
        "prod", {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
    )
    assert not (await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))).allowed


async def test_judge_cache_staleness_from_other_replicas_is_bounded() -> None:
    system = System(cache_ttl=timedelta(seconds=5))
    other = system.replica()
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    occ = await system.sign(qa, A)
    request = AdmissionRequest(images=(A,))
    assert (await system.judge.evaluate("prod", request)).allowed
    await other.grafeas.delete_occurrence(occ.name)  # revoked through another replica

    # Within the TTL the entry serves as it is (this replica cannot know).
    system.clock.now += timedelta(seconds=3)
    assert (await system.judge.evaluate("prod", request)).allowed
    # Aged past the TTL: it serves once more while a background refresh reads the store...
    system.clock.now += timedelta(seconds=3)
    assert (await system.judge.evaluate("prod", request)).allowed
    await asyncio.gather(*system.judge._refreshing)
    # ...after which the revocation counts.
    assert not (await system.judge.evaluate("prod", request)).allowed


async def test_judge_cache_never_serves_entries_older_than_twice_the_ttl() -> None:
    system = System(cache_ttl=timedelta(seconds=5))
    other = system.replica()
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    occ = await system.sign(qa, A)
    request = AdmissionRequest(images=(A,))
    assert (await system.judge.evaluate("prod", request)).allowed
    await other.grafeas.delete_occurrence(occ.name)
    system.clock.now += timedelta(seconds=11)
    assert not (await system.judge.evaluate("prod", request)).allowed


class SlowCountingGatherer(EvidenceGatherer):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self.calls = 0

    async def gather(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        await asyncio.sleep(0.05)
        return await super().gather(*args, **kwargs)


async def test_concurrent_misses_share_one_store_read() -> None:
    system = System(cache_ttl=timedelta(seconds=30))
    gatherer = SlowCountingGatherer(system.store)
    system.judge = Judge(
        system.resources,
        gatherer,
        system.clock,
        changes=system.changes,
        cache_ttl=timedelta(seconds=30),
    )
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.sign(qa, A)
    decisions = await asyncio.gather(
        *(system.judge.evaluate("prod", AdmissionRequest(images=(A,))) for _ in range(20))
    )
    assert all(d.allowed for d in decisions)
    assert gatherer.calls == 1


async def test_a_failed_shared_read_fails_every_waiter_closed() -> None:
    system = System(cache_ttl=timedelta(seconds=30))

    class Broken(EvidenceGatherer):
        async def gather(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.02)
            raise Unavailable("the database is unreachable")

    system.judge = Judge(
        system.resources,
        Broken(system.store),
        system.clock,
        changes=system.changes,
        cache_ttl=timedelta(seconds=30),
    )
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    results = await asyncio.gather(
        *(system.judge.evaluate("prod", AdmissionRequest(images=(A,))) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, Unavailable) for r in results)
