"""Registry evidence recorded in the scribe on first sight (registry.record_evidence), against a
real registry (Debian's docker-registry) and real stores (memory; two replicas on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from chainproof.api.render import judge_document_json
from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.config import AdmissionSettings
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import to_json
from chainproof.domain.pagination import PageTokenCodec
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.policy.attestors import parse_attestor
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.evidence import attestor_keys
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.registry_recording import RECORDS, RegistryRecorder
from chainproof.services.scribe.registry_sources import RegistrySources
from chainproof.services.scribe.registry_sync import new_occurrences, registry_occurrences
from chainproof.sources.registry.client import Deadline, RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import attest_image, sign_image
from unit.services.judge_fixtures import Signer, System

REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}
PROVENANCE = {"buildDefinition": {"buildType": "https://example.com/build"}, "runDetails": {}}


async def _system(
    host: str, **recorder: object
) -> tuple[System, Signer, RegistryRecorder, RegistryClient]:
    system = System(cache_ttl=timedelta(seconds=60))
    signer = await system.attestor("sec", "qa")
    doc = judge_document_json(await system.resources.get_attestor(signer.attestor))
    doc["evidenceSource"] = "BOTH"
    await system.resources.update_attestor(signer.attestor, doc)
    await system.policy("app", {**REQUIRE, "requireAttestationsBy": [signer.attestor]})
    client = RegistryClient(RegistryConfig(hosts={host: RegistryHost(host=host, insecure=True)}))
    system.gatherer.registry = RegistryEvidence(RegistryReader(client))
    rec = RegistryRecorder(system.grafeas, "app", **recorder)  # type: ignore[arg-type]
    system.gatherer.on_registry_facts = rec.offer
    return system, signer, rec, client


async def _filed(system: System, signer: Signer, image: str) -> list:
    page = await system.grafeas.list_note_occurrences(
        signer.note, f'resourceUrl="{image}"', 100, ""
    )
    return page.items


async def test_first_sight_records_what_verified_and_the_second_sight_nothing(oci_registry):
    digest = oci_registry.push_umoci_image("rec/app", "v1", label="rec-app")
    image = f"{oci_registry.host}/rec/app@{digest}"
    system, signer, rec, client = await _system(oci_registry.host)
    try:
        sig = sign_image(oci_registry, "rec/app", digest, signer.signer)
        att = attest_image(
            oci_registry, "rec/app", digest, signer.signer, SLSA_PROVENANCE_V1, PROVENANCE
        )
        first = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        filed = await _filed(system, signer, image)
        second = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        system.gatherer.registry.source.cache.clear()  # a fresh read of the registry, too
        system.judge._evidence.clear()
        third = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        again = await _filed(system, signer, image)
        async with system.store.session(readonly=True) as s:
            sources = {
                d.data["occurrence"]: d.data
                for d in await s.documents.page("app", RECORDS, None, 100)
            }
        served = await RegistrySources(system.store).of_image("projects/app", image)
        one = await RegistrySources(system.store).get("projects/app", filed[0].name.rsplit("/")[-1])
        attestor = parse_attestor(
            judge_document_json(await system.resources.get_attestor(signer.attestor))
        )
        reader = system.gatherer.registry.source
        artifacts = await reader.artifacts(parse_image_reference(image), Deadline(10))
    finally:
        await client.aclose()
    assert first.outcome is Outcome.ALLOWED
    # First sight: the decision names the registry manifest, and both facts get recorded.
    assert first.images[0].requirements[0].occurrences[0].startswith(f"{oci_registry.host}/")
    assert len(filed) == 2
    assert {o.WhichOneof("details") for o in filed} == {"attestation", "dsse_attestation"}
    assert rec.recorded == 2
    # Later sights: the scribe holds them; the decision names an occurrence; no duplicates.
    assert second.outcome is Outcome.ALLOWED and third.outcome is Outcome.ALLOWED
    assert second.images[0].requirements[0].occurrences[0].startswith("projects/app/")
    assert third.images[0].requirements[0].occurrences[0].startswith("projects/app/")
    assert sorted(o.name for o in again) == sorted(o.name for o in filed)
    assert rec.recorded == 2
    # Each occurrence keeps its source: the registry manifest and layer it was read from.
    assert set(sources) == {o.name for o in filed}
    assert {d["source"] for d in sources.values()} == {
        f"{oci_registry.host}/rec/app@{sig}",
        f"{oci_registry.host}/rec/app@{att}",
    }
    assert all(d["attestor"] == signer.attestor and d["layer"] for d in sources.values())
    # The same documents as the API serves them (GET …/registryEvidence[/{occurrence_id}]).
    assert sorted(d["occurrence"] for d in served) == sorted(o.name for o in filed)
    assert one == {
        "name": f"projects/app/registryEvidence/{filed[0].name.rsplit('/')[-1]}",
        **sources[filed[0].name],
    }
    # `chainproof registry sync` after recording finds nothing new to copy.
    plan = registry_occurrences(
        parse_image_reference(image), artifacts, attestor, attestor_keys(attestor), system.clock()
    )
    assert len(plan.occurrences) == 2
    assert new_occurrences(plan.occurrences, [to_json(o) for o in again]) == []


async def test_recording_is_bounded_per_image_and_finishes_at_later_sights(oci_registry):
    digest = oci_registry.push_umoci_image("rec/bounded", "v1", label="rec-bounded")
    image = f"{oci_registry.host}/rec/bounded@{digest}"
    system, signer, rec, client = await _system(oci_registry.host, max_per_image=1)
    try:
        sign_image(oci_registry, "rec/bounded", digest, signer.signer)
        attest_image(
            oci_registry, "rec/bounded", digest, signer.signer, SLSA_PROVENANCE_V1, PROVENANCE
        )
        await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        after_first = len(await _filed(system, signer, image))
        dropped = rec.dropped
        await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        after_second = len(await _filed(system, signer, image))
        await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        after_third = len(await _filed(system, signer, image))
    finally:
        await client.aclose()
    assert (after_first, dropped) == (1, 1)
    assert after_second == 2
    assert after_third == 2


async def test_too_many_pending_recordings_are_dropped_not_queued(oci_registry):
    digest = oci_registry.push_umoci_image("rec/pending", "v1", label="rec-pending")
    image = f"{oci_registry.host}/rec/pending@{digest}"
    system, signer, rec, client = await _system(oci_registry.host, max_pending=0)
    try:
        sign_image(oci_registry, "rec/pending", digest, signer.signer)
        decision = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
        await rec.drain()
        filed = await _filed(system, signer, image)
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.ALLOWED
    assert filed == []
    assert rec.dropped == 1


class StalledStore:
    """Our store port, whose write sessions wait until released (a store that hangs)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[object]:
        if not readonly:
            await self.release.wait()
        async with self.inner.session(readonly=readonly) as s:
            yield s


async def test_a_stalled_store_never_holds_up_admission(oci_registry):
    digest = oci_registry.push_umoci_image("rec/stall", "v1", label="rec-stall")
    image = f"{oci_registry.host}/rec/stall@{digest}"
    system, signer, _, client = await _system(oci_registry.host)
    stalled = StalledStore(system.store)
    grafeas = GrafeasService(stalled, PageTokenCodec(b"t" * 32), system.clock)  # type: ignore[arg-type]
    rec = RegistryRecorder(grafeas, "app", timeout_seconds=1.0)
    system.gatherer.on_registry_facts = rec.offer
    admission = AdmissionService(
        system.judge,
        system.decisions,
        system.grafeas,
        AdmissionSettings(project="app", deadline_seconds=3),
    )
    workload = Workload("Pod", "p", "default", "default", (ContainerImage("containers[0]", image),))
    try:
        sign_image(oci_registry, "rec/stall", digest, signer.signer)
        # The recording waits on the store for longer than the review's deadline; the review
        # answers anyway (it would be denied for its deadline if it waited).
        result = await admission.review(workload, uid="stall")
        await rec.drain()
        await admission.close()
    finally:
        stalled.release.set()
        await client.aclose()
    assert result.allowed, result.message
    assert rec.dropped == 1 and rec.recorded == 0
    assert await _filed(system, signer, image) == []


@pytest.mark.postgres
async def test_two_replicas_seeing_an_image_at_once_record_it_once(oci_registry, fresh_pg_url):
    from chainproof.bootstrap import open_services
    from chainproof.config import load_settings
    from chainproof.crypto.signing import PkixSigner, generate_pkix_key
    from chainproof.domain.messages import note_from_json

    digest = oci_registry.push_umoci_image("rec/replicas", "v1", label="rec-replicas")
    image = f"{oci_registry.host}/rec/replicas@{digest}"
    settings = load_settings(
        database_url=fresh_pg_url,
        grpc_enabled=False,
        admission={"project": "app", "cache_ttl_seconds": 0},
        registry={
            "record_evidence": True,
            "hosts": [{"host": oci_registry.host, "insecure": True}],
        },
    )
    a = await open_services(settings)
    b = await open_services(settings)
    try:
        key = generate_pkix_key("ECDSA_P256_SHA256")
        signer = PkixSigner.from_pem(key.private_pem, key_id="//example.com/keys/rep")
        await a.grafeas.create_note("projects/sec", "rep", note_from_json({"attestation": {}}))
        await a.judge_resources.create_attestor(
            "projects/sec",
            "rep",
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/sec/notes/rep",
                    "publicKeys": [
                        {
                            "id": signer.key_id,
                            "pkixPublicKey": {
                                "publicKeyPem": key.public_pem.decode(),
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            },
                        }
                    ],
                },
                "evidenceSource": "REGISTRY",
            },
        )
        await a.judge_resources.put_policy(
            "projects/app",
            {
                "defaultAdmissionRule": {
                    **REQUIRE,
                    "requireAttestationsBy": ["projects/sec/attestors/rep"],
                }
            },
        )
        sign_image(oci_registry, "rec/replicas", digest, signer)
        attest_image(oci_registry, "rec/replicas", digest, signer, SLSA_PROVENANCE_V1, PROVENANCE)
        request = AdmissionRequest(images=(image,))
        for _ in range(2):  # two rounds: the second must add nothing
            decisions = await asyncio.gather(
                *(c.judge.evaluate("app", request) for c in (a, b, a, b))
            )
            assert all(d.outcome is Outcome.ALLOWED for d in decisions)
            await asyncio.gather(a.registry_recorder.drain(), b.registry_recorder.drain())
        page = await a.grafeas.list_note_occurrences(
            "projects/sec/notes/rep", f'resourceUrl="{image}"', 100, ""
        )
        async with a.store.session(readonly=True) as s:
            sources = await s.documents.page("app", RECORDS, None, 100)
    finally:
        await a.close()
        await b.close()
    assert len(page.items) == 2, [o.name for o in page.items]
    assert {d.data["occurrence"] for d in sources} == {o.name for o in page.items}


async def test_an_invalid_record_project_stops_the_server_at_start():
    from chainproof.bootstrap import open_services
    from chainproof.config import load_settings
    from chainproof.errors import InvalidArgument

    settings = load_settings(
        database_url="memory://",
        grpc_enabled=False,
        registry={"record_evidence": True, "record_project": "Not a project!"},
    )
    with pytest.raises(InvalidArgument, match="registry.record_project"):
        await open_services(settings)


async def test_the_setting_wires_a_recorder_into_the_judge():
    from chainproof.bootstrap import open_services
    from chainproof.config import load_settings

    off = await open_services(load_settings(database_url="memory://", grpc_enabled=False))
    on = await open_services(
        load_settings(
            database_url="memory://",
            grpc_enabled=False,
            admission={"project": "prod"},
            registry={"record_evidence": True},
        )
    )
    try:
        assert off.registry_recorder is None and off.judge.gatherer.on_registry_facts is None
        assert on.registry_recorder is not None and on.registry_recorder.project == "prod"
        assert on.judge.gatherer.on_registry_facts == on.registry_recorder.offer
    finally:
        await off.close()
        await on.close()
