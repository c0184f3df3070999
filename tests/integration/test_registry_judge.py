"""The judge with registry evidence: real registry, real store (memory), real verification."""

from __future__ import annotations

import base64

import pytest

from chainproof.api.render import judge_document_json
from chainproof.attest.simple_signing import COSIGN_SIGNATURE_TYPE, build_simple_signing
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import occurrence_from_json
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.policy.attestors import parse_attestor
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.sources.registry.client import RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import sign_image
from unit.services.judge_fixtures import System

REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}


class CountingReader(RegistryReader):
    calls = 0

    async def artifacts(self, image, deadline, *, index=True):
        CountingReader.calls += 1
        return await super().artifacts(image, deadline)


async def system_with_registry(host: str, source: str) -> tuple[System, object, RegistryClient]:
    system = System()
    signer = await system.attestor("sec", "qa")
    body = judge_document_json(await system.resources.get_attestor("projects/sec/attestors/qa"))
    doc = dict(body)
    doc["evidenceSource"] = source
    await system.resources.update_attestor("projects/sec/attestors/qa", doc)
    client = RegistryClient(RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}))
    system.gatherer.registry = RegistryEvidence(CountingReader(client))
    await system.policy("app", {**REQUIRE, "requireAttestationsBy": ["projects/sec/attestors/qa"]})
    return system, signer, client


async def test_cosign_signed_image_is_admitted_and_the_decision_names_the_manifest(oci_registry):
    digest = oci_registry.push_umoci_image("judge/app", "v1", label="judge-ok")
    system, signer, client = await system_with_registry(oci_registry.host, "REGISTRY")
    try:
        sig = sign_image(oci_registry, "judge/app", digest, signer.signer)
        image = f"{oci_registry.host}/judge/app@{digest}"
        decision = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.ALLOWED, decision
    requirement = decision.images[0].requirements[0]
    assert requirement.occurrences == (f"{oci_registry.host}/judge/app@{sig}",)


async def test_unsigned_image_is_denied(oci_registry):
    digest = oci_registry.push_umoci_image("judge/bare", "v1", label="judge-bare")
    system, _signer, client = await system_with_registry(oci_registry.host, "REGISTRY")
    try:
        decision = await system.judge.evaluate(
            "app", AdmissionRequest(images=(f"{oci_registry.host}/judge/bare@{digest}",))
        )
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.DENIED


async def test_signature_for_another_digest_is_denied_and_explained(oci_registry):
    digest = oci_registry.push_umoci_image("judge/other", "v1", label="judge-o1")
    other = oci_registry.push_umoci_image("judge/other", "v2", label="judge-o2")
    system, signer, client = await system_with_registry(oci_registry.host, "REGISTRY")
    try:
        sign_image(oci_registry, "judge/other", digest, signer.signer, payload_digest=other)
        decision = await system.judge.evaluate(
            "app", AdmissionRequest(images=(f"{oci_registry.host}/judge/other@{digest}",))
        )
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.DENIED
    assert "another digest" in decision.images[0].requirements[0].reason


async def test_same_attestation_in_scribe_and_registry_counts_once(oci_registry):
    digest = oci_registry.push_umoci_image("judge/both", "v1", label="judge-both")
    system, signer, client = await system_with_registry(oci_registry.host, "BOTH")
    image = f"{oci_registry.host}/judge/both@{digest}"
    try:
        # The very same signed payload, once in the registry and once as an occurrence.
        payload = build_simple_signing(
            parse_image_reference(image), signature_type=COSIGN_SIGNATURE_TYPE
        )
        signature = signer.signer.sign(payload)
        occurrence = await system.grafeas.create_occurrence(
            "projects/app",
            occurrence_from_json(
                {
                    "resourceUri": image,
                    "noteName": signer.note,
                    "attestation": {
                        "serializedPayload": base64.b64encode(payload).decode(),
                        "signatures": [
                            {
                                "signature": base64.b64encode(signature).decode(),
                                "publicKeyId": signer.signer.key_id,
                            }
                        ],
                    },
                }
            ),
        )
        sign_image(oci_registry, "judge/both", digest, signer.signer)
        gathered = await system.gatherer.gather(
            [parse_image_reference(image)],
            {
                signer.attestor: parse_attestor(
                    judge_document_json(await system.resources.get_attestor(signer.attestor))
                )
            },
            ["app"],
            system.clock(),
        )
    finally:
        await client.aclose()
    attestations = gathered.for_image(parse_image_reference(image)).attestations
    assert [a.occurrence for a in attestations] == [occurrence.name]


async def test_scribe_only_attestors_never_contact_the_registry(oci_registry):
    system, signer, client = await system_with_registry(oci_registry.host, "SCRIBE")
    CountingReader.calls = 0
    image = f"{oci_registry.host}/judge/scribe@sha256:" + "c" * 64
    try:
        await system.sign(signer, image)
        decision = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.ALLOWED
    assert CountingReader.calls == 0


async def test_unreachable_registry_denies_the_review_naming_it(oci_registry):
    system, _signer, client = await system_with_registry("127.0.0.1:9", "REGISTRY")
    image = "127.0.0.1:9/judge/down@sha256:" + "d" * 64
    try:
        with pytest.raises(RegistryError, match=r"registry 127\.0\.0\.1:9"):
            await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        from chainproof.config import AdmissionSettings
        from chainproof.domain.workloads import workload_from_object

        admission = AdmissionService(
            system.judge,
            system.decisions,
            system.grafeas,
            AdmissionSettings(project="app", failure_mode="open"),
        )
        pod = {
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": image}]},
        }
        result = await admission.review(workload_from_object(pod), uid="u1")
        await admission.close()
    finally:
        await client.aclose()
    # Even with failure mode open: a registry that cannot answer never admits.
    assert not result.allowed
    assert "registry 127.0.0.1:9" in result.message


async def test_multi_arch_index_and_signed_children(oci_registry):
    from cosign_layout import push_index

    amd = oci_registry.push_umoci_image("judge/multi", "amd64", label="jm", arch="amd64")
    arm = oci_registry.push_umoci_image("judge/multi", "arm64", label="jm", arch="arm64")
    index = push_index(
        oci_registry, "judge/multi", "v1", [(amd, "linux/amd64"), (arm, "linux/arm64")]
    )
    system, signer, client = await system_with_registry(oci_registry.host, "REGISTRY")
    image = f"{oci_registry.host}/judge/multi@{index}"
    try:
        sign_image(oci_registry, "judge/multi", index, signer.signer)
        # The index's signature covers the index as deployed.
        lenient = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        doc = judge_document_json(await system.resources.get_attestor("projects/sec/attestors/qa"))
        doc["requireSignedChildren"] = True
        await system.resources.update_attestor("projects/sec/attestors/qa", doc)
        strict = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        sign_image(oci_registry, "judge/multi", amd, signer.signer)
        sign_image(oci_registry, "judge/multi", arm, signer.signer)
        system.gatherer.registry.source.cache.clear()
        all_signed = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
    finally:
        await client.aclose()
    assert lenient.outcome is Outcome.ALLOWED
    # The attestor's own requireSignedChildren (kept for compatibility) still asks for
    # evidence on every platform manifest, and the denial names the unsigned ones.
    assert strict.outcome is Outcome.DENIED
    (failure,) = strict.images[0].failures
    assert failure.kind == "platforms"
    assert all(any(d in o for o in failure.occurrences) for d in (amd, arm))
    assert "linux/arm64" in failure.reason and "linux/amd64" in failure.reason
    assert all_signed.outcome is Outcome.ALLOWED
