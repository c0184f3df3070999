"""Registry evidence through the judge, with an in-memory implementation of our port carrying
real Sigstore bundles (tests/fixtures/sigstore): keyless attestors end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chainproof.api.render import judge_document_json
from chainproof.attest.sigstore_bundle import load_trusted_root
from chainproof.domain.messages import note_from_json
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.port import RegistryArtifacts, RegistryBundle
from unit.services.judge_fixtures import NOW as NOW_
from unit.services.judge_fixtures import System

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sigstore"
REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}
BUNDLE = (FIXTURES / "bundle_v3.txt.sigstore").read_bytes()
DIGEST = "sha256:" + hashlib.sha256((FIXTURES / "bundle_v3.txt").read_bytes()).hexdigest()
IMAGE = f"registry.example/app@{DIGEST}"


class MemorySource:
    """Our RegistryEvidenceSource port, in memory."""

    def __init__(self, artifacts: dict[str, RegistryArtifacts], fail: Exception | None = None):
        self.artifacts_by_image = artifacts
        self.fail = fail
        self.calls = 0

    async def resolve(self, image, deadline):
        raise NotImplementedError

    async def artifacts(self, image, deadline, *, index=True):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return self.artifacts_by_image.get(
            image.canonical,
            RegistryArtifacts(image.canonical, "application/vnd.oci.image.manifest.v1+json"),
        )


def bundled(data: bytes = BUNDLE) -> dict[str, RegistryArtifacts]:
    source = "registry.example/app@sha256:" + "f" * 64
    return {
        IMAGE: RegistryArtifacts(
            IMAGE,
            "application/vnd.oci.image.manifest.v1+json",
            bundles=(RegistryBundle(source, "sha256:" + "e" * 64, data),),
        )
    }


async def keyless_system(subject: str, source: MemorySource, *, root: bool = True) -> System:
    system = System()
    await system.grafeas.create_note("projects/sec", "ci", note_from_json({"attestation": {}}))
    await system.resources.create_attestor(
        "projects/sec",
        "ci",
        {
            "userOwnedGrafeasNote": {"noteReference": "projects/sec/notes/ci"},
            "evidenceSource": "REGISTRY",
            "keylessIdentities": [{"issuer": "https://github.com/login/oauth", "subject": subject}],
        },
    )
    trusted = (
        load_trusted_root((FIXTURES / "staging.trusted_root.json").read_bytes()) if root else None
    )
    system.gatherer.registry = RegistryEvidence(source, trusted_root=trusted)
    await system.policy("app", {**REQUIRE, "requireAttestationsBy": ["projects/sec/attestors/ci"]})
    return system


async def test_keyless_bundle_from_the_registry_admits_and_names_its_source():
    system = await keyless_system("william@yossarian.net", MemorySource(bundled()))
    decision = await system.judge.evaluate("app", AdmissionRequest(images=(IMAGE,)))
    assert decision.outcome is Outcome.ALLOWED, decision
    requirement = decision.images[0].requirements[0]
    assert requirement.occurrences == ("registry.example/app@sha256:" + "f" * 64,)
    assert requirement.key_ids[0].startswith("keyless:william@yossarian.net")


async def test_keyless_evidence_is_not_offered_for_recording_in_the_scribe():
    # A Grafeas occurrence has no place for the certificate and the log proof: copying the
    # bare envelope would store something no key of the attestor verifies.
    system = await keyless_system("william@yossarian.net", MemorySource(bundled()))
    offered: list = []
    system.gatherer.on_registry_facts = offered.extend
    decision = await system.judge.evaluate("app", AdmissionRequest(images=(IMAGE,)))
    assert decision.outcome is Outcome.ALLOWED
    assert offered == []


async def test_keyless_bundle_from_someone_else_is_denied():
    system = await keyless_system("mallory@example.com", MemorySource(bundled()))
    decision = await system.judge.evaluate("app", AdmissionRequest(images=(IMAGE,)))
    assert decision.outcome is Outcome.DENIED


async def test_keyless_bundle_for_another_image_is_denied():
    other = f"registry.example/app@sha256:{'0' * 64}"
    artifacts = {other: RegistryArtifacts(other, "x", bundles=bundled()[IMAGE].bundles)}
    system = await keyless_system("william@yossarian.net", MemorySource(artifacts))
    decision = await system.judge.evaluate("app", AdmissionRequest(images=(other,)))
    assert decision.outcome is Outcome.DENIED


async def test_without_a_trusted_root_keyless_evidence_never_counts():
    system = await keyless_system("william@yossarian.net", MemorySource(bundled()), root=False)
    decision = await system.judge.evaluate("app", AdmissionRequest(images=(IMAGE,)))
    assert decision.outcome is Outcome.DENIED
    # Found and consulted, but not counted.
    assert decision.images[0].requirements[0].occurrences == (
        "registry.example/app@sha256:" + "f" * 64,
    )


async def test_a_registry_failure_reaches_the_caller():
    source = MemorySource({}, fail=RegistryError("registry.example", "GET /v2/ timed out"))
    system = await keyless_system("william@yossarian.net", source)
    with pytest.raises(RegistryError, match="registry registry.example: GET /v2/ timed out"):
        await system.judge.evaluate("app", AdmissionRequest(images=(IMAGE,)))


async def test_registry_verification_is_paid_from_the_review_budget():
    from chainproof.crypto.verify import BudgetExhausted, VerificationBudget
    from chainproof.domain.images import parse_image_reference
    from chainproof.policy.attestors import parse_attestor

    two = bundled()[IMAGE]
    two = RegistryArtifacts(IMAGE, two.media_type, bundles=two.bundles * 2)
    system = await keyless_system("william@yossarian.net", MemorySource({IMAGE: two}))
    attestor = parse_attestor(
        judge_document_json(await system.resources.get_attestor("projects/sec/attestors/ci"))
    )
    evidence = system.gatherer.registry
    image = parse_image_reference(IMAGE)
    names = {"projects/sec/attestors/ci": attestor}
    found = evidence.verify(image, two, names, {}, NOW_, VerificationBudget(2))
    assert len(found.verified) == 2
    with pytest.raises(BudgetExhausted):
        evidence.verify(image, two, names, {}, NOW_, VerificationBudget(1))
