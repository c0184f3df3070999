"""Attacks on the batched first-sight read (issue 17 item 4), on memory, SQLite and PostgreSQL.

A review reads the evidence of all its images, attestors and evidence projects in one
statement (``occurrences.read_slices``). Every answer must still land where it belongs:
evidence about another digest, filed under another note or stored in another project is no
evidence here, and a slice that is full fails closed for its own image and source only. The
judge cache is on (the config warm, as in serving) and every review below is a first sight
unless it says otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chainproof.api.render import judge_document_json
from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.crypto.signing import generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.services.judge.evidence import EvidenceGatherer, EvidenceLimits
from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from contract.conftest import empty_postgres_store
from unit.services.judge_fixtures import Signer, System

A = "gcr.io/acme/app@sha256:" + "a" * 64
B = "gcr.io/acme/app@sha256:" + "b" * 64
REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}
PKG = [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "openssl"}]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "postgres":
        store: MetadataStore = await empty_postgres_store(
            request.getfixturevalue("pg_database_url")
        )
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/j.db"
        store = create_store(url)
        await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def system(store: MetadataStore) -> System:
    system = System(store=store, cache_ttl=timedelta(minutes=5))  # type: ignore[arg-type]
    system.clock.now = datetime.now(UTC)
    return system


async def review(system: System, *images: str, namespace: str = "prod") -> Any:
    """A first sight: nothing about the images is cached, neither evidence nor signatures."""
    system.judge._evidence.clear()
    system.gatherer.cache.clear()
    return await system.judge.evaluate("prod", AdmissionRequest(images=images, namespace=namespace))


def verdicts(decision: Any) -> list[bool]:
    return [image.outcome is Outcome.ALLOWED for image in decision.images]


async def _file(system: System, signer: Signer, image: str, *, note: str, resource: str) -> None:
    """An attestation of ``image`` by ``signer``'s key, filed under ``note`` about
    ``resource`` (what an attacker who can write occurrences can arrange)."""
    signed = attestation_occurrence(
        parse_image_reference(image),
        PayloadFormat.SIMPLE_SIGNING,
        signer.signer,
        note_name=note,
        resource_uri=resource,
    )
    await system.grafeas.create_occurrence("projects/app", occurrence_from_json(signed))


async def test_each_image_of_a_review_gets_its_own_attestations_only(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.sign(qa, A)
    # A's own signed statement, filed about B: read with B's evidence, it names A's digest.
    await system.sign(qa, A, filed_under=B)
    decision = await review(system, A, B)
    assert verdicts(decision) == [True, False], decision.explain()
    assert "digest" in " ".join(decision.denial_reasons())


async def test_a_note_of_the_same_id_in_another_project_is_not_the_attestors(
    system: System,
) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.grafeas.create_note(
        "projects/evil", "qa-note", note_from_json({"attestation": {}})
    )
    await _file(system, qa, A, note="projects/evil/notes/qa-note", resource=A)
    assert verdicts(await review(system, A)) == [False]
    await system.sign(qa, A)  # under the attestor's own note it counts
    assert verdicts(await review(system, A)) == [True]


async def test_an_attestation_under_another_attestors_note_counts_for_that_one_only(
    system: System,
) -> None:
    """Two attestors with the same key and different notes, both in the review's config:
    what is filed under ``twin``'s note must not satisfy the rule that trusts ``qa``."""
    qa = await system.attestor("sec", "qa")
    await system.grafeas.create_note(
        "projects/sec", "twin-note", note_from_json({"attestation": {}})
    )
    current = judge_document_json(await system.resources.get_attestor(qa.attestor))
    twin_doc = {
        "userOwnedGrafeasNote": {
            **current["userOwnedGrafeasNote"],
            "noteReference": "projects/sec/notes/twin-note",
        }
    }
    await system.resources.create_attestor("projects/sec", "twin", twin_doc)
    await system.policy(
        "prod",
        {**REQUIRE, "requireAttestationsBy": [qa.attestor]},
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": ["projects/sec/attestors/twin"]}
        },
    )
    await _file(system, qa, A, note="projects/sec/notes/twin-note", resource=A)
    decision = await review(system, A)
    assert verdicts(decision) == [False], decision.explain()
    # The same occurrence is the twin's evidence, in the rule that trusts the twin.
    assert verdicts(await review(system, A, namespace="dev")) == [True]


async def test_findings_of_another_image_or_project_do_not_reach_this_one(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [qa.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH", "requireScan": False}
            },
        },
    )
    for image in (A, B):
        await system.sign(qa, image)
    for project in ("prod", "elsewhere"):
        await system.grafeas.create_note(
            f"projects/{project}", "CVE-1", note_from_json({"vulnerability": {}})
        )
    critical = {"effectiveSeverity": "CRITICAL", "fixAvailable": True, "packageIssue": PKG}

    async def finding(project: str, image: str) -> None:
        await system.grafeas.create_occurrence(
            f"projects/{project}",
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": f"projects/{project}/notes/CVE-1",
                    "vulnerability": critical,
                }
            ),
        )

    await finding("elsewhere", A)  # not an evidence project of prod
    await finding("prod", B)
    decision = await review(system, A, B)
    assert verdicts(decision) == [True, False], decision.explain()
    assert "CRITICAL" in " ".join(decision.denial_reasons())


async def test_a_full_slice_fails_closed_for_its_image_alone(system: System) -> None:
    system.judge.gatherer = EvidenceGatherer(system.store, limits=EvidenceLimits(max_occurrences=5))
    system.gatherer = system.judge.gatherer
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.sign(qa, A)
    await system.sign(qa, B)
    for _ in range(5):  # with A's own: 6 under qa's note about A, one over the bound
        await system.sign(qa, B, filed_under=A)
    decision = await review(system, A, B)
    assert verdicts(decision) == [False, True], decision.explain()
    assert "more than 5 occurrences" in " ".join(decision.denial_reasons())


async def test_a_replaced_key_invalidates_what_the_old_key_verified(system: System) -> None:
    qa = await system.attestor("sec", "qa")
    other = await system.attestor("sec", "other")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.sign(qa, A)
    request = AdmissionRequest(images=(A,), namespace="prod")
    assert (await system.judge.evaluate("prod", request)).allowed
    misses = system.gatherer.cache.misses
    # Same verification cache, same judge: only the attestor's key changes.
    current = judge_document_json(await system.resources.get_attestor(qa.attestor))
    replaced = judge_document_json(await system.resources.get_attestor(other.attestor))
    current["userOwnedGrafeasNote"]["publicKeys"] = replaced["userOwnedGrafeasNote"]["publicKeys"]
    await system.resources.update_attestor(qa.attestor, current)
    decision = await system.judge.evaluate("prod", request)
    assert not decision.allowed, decision.explain()
    assert system.gatherer.cache.misses > misses  # verified again, against the new key
    # And signing with the new key is what counts now.
    await system.sign(Signer(qa.attestor, qa.note, other.signer, other.public_pem), A)
    assert (await system.judge.evaluate("prod", request)).allowed


async def test_the_old_keys_signature_is_not_served_from_the_cache_to_a_new_config(
    system: System,
) -> None:
    """Even with the judge's own caches dropped by hand, a verification cached under the old
    key cannot answer for the new one: its key names the attestor's exact content."""
    qa = await system.attestor("sec", "qa")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [qa.attestor]})
    await system.sign(qa, A)
    request = AdmissionRequest(images=(A,), namespace="prod")
    assert (await system.judge.evaluate("prod", request)).allowed
    fresh = generate_pkix_key("ECDSA_P256_SHA256")
    current = judge_document_json(await system.resources.get_attestor(qa.attestor))
    key = current["userOwnedGrafeasNote"]["publicKeys"][0]
    key["pkixPublicKey"]["publicKeyPem"] = fresh.public_pem.decode()
    await system.resources.update_attestor(qa.attestor, current)
    system.judge._evidence.clear()
    system.judge._configs.clear()
    assert not (await system.judge.evaluate("prod", request)).allowed
