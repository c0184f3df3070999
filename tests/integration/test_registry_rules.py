"""Registry evidence per rule, against a real registry (Debian's docker-registry):

* evidence scoping: a registry-sourced attestor is consulted only for images whose rule names
  it, and its evidence counts only there (two rules naming different attestors);
* multi-architecture images: the rule's ``imageIndex.everyPlatform`` says whether the index's
  evidence suffices or every platform manifest must carry evidence too.
"""

from __future__ import annotations

from datetime import timedelta

from chainproof.api.render import judge_document_json
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.sources.registry.client import RegistryClient
from chainproof.sources.registry.config import RegistryConfig, RegistryHost
from chainproof.sources.registry.reader import RegistryReader
from cosign_layout import push_index, sign_image
from unit.services.judge_fixtures import Signer, System

REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}


class CountingReader(RegistryReader):
    """The real reader, counting which images it was asked about."""

    def __init__(self, client: RegistryClient) -> None:
        super().__init__(client)
        self.asked: list[str] = []

    async def artifacts(self, image, deadline, *, index=True):
        self.asked.append(image.canonical)
        return await super().artifacts(image, deadline)

    async def platforms(self, image, deadline):
        self.asked.append("platforms:" + image.canonical)
        return await super().platforms(image, deadline)


async def _attestor(system: System, name: str, source: str) -> Signer:
    signer = await system.attestor("sec", name)
    doc = judge_document_json(await system.resources.get_attestor(signer.attestor))
    doc["evidenceSource"] = source
    await system.resources.update_attestor(signer.attestor, doc)
    return signer


def _rule(*attestors: str, **checks: object) -> dict:
    out: dict = {**REQUIRE, "requireAttestationsBy": list(attestors)}
    if checks:
        out["chainproofChecks"] = checks
    return out


def _attach(system: System, *hosts: str) -> tuple[CountingReader, RegistryClient]:
    client = RegistryClient(
        RegistryConfig(hosts={h: RegistryHost(host=h, insecure=True) for h in hosts})
    )
    reader = CountingReader(client)
    system.gatherer.registry = RegistryEvidence(reader)
    return reader, client


# ------------------------------------------------------------------- evidence scoping


async def test_registry_evidence_counts_only_for_the_rule_that_trusts_its_signer(oci_registry):
    digest = oci_registry.push_umoci_image("rules/scoped", "v1", label="rules-scoped")
    image = f"{oci_registry.host}/rules/scoped@{digest}"
    system = System(cache_ttl=timedelta(seconds=30))
    qa = await _attestor(system, "qa", "REGISTRY")
    dev = await _attestor(system, "dev", "REGISTRY")
    await system.policy(
        "app",
        _rule(dev.attestor),
        kubernetesNamespaceAdmissionRules={"prod": _rule(qa.attestor)},
    )
    _reader, client = _attach(system, oci_registry.host)
    try:
        sign_image(oci_registry, "rules/scoped", digest, dev.signer)  # dev signs, qa does not
        # The evidence cache is on: the first review (prod) must not answer for the second.
        prod = await system.judge.evaluate(
            "app", AdmissionRequest(images=(image,), namespace="prod")
        )
        default = await system.judge.evaluate(
            "app", AdmissionRequest(images=(image,), namespace="default")
        )
        prod_again = await system.judge.evaluate(
            "app", AdmissionRequest(images=(image,), namespace="prod")
        )
    finally:
        await client.aclose()
    assert prod.outcome is Outcome.DENIED, prod
    # dev's valid signature is not evidence under the prod rule: qa finds a signature its
    # keys do not verify, and that is all.
    (failure,) = prod.images[0].failures
    assert failure.name == f"attestation by {qa.attestor}"
    assert "1 found, 1 signed by unknown key" in failure.reason, failure.reason
    assert prod.images[0].rule.evidence_from == (qa.attestor,)
    assert default.outcome is Outcome.ALLOWED, default
    assert (
        default.images[0]
        .requirements[0]
        .occurrences[0]
        .startswith(f"{oci_registry.host}/rules/scoped@sha256:")
    )
    assert prod_again.outcome is Outcome.DENIED


async def test_a_registry_only_another_rule_reads_is_never_contacted(oci_registry):
    # The "ext" rule trusts an attestor whose images live on a registry that is down; pods
    # elsewhere, judged on scribe evidence, neither contact it nor fail because of it.
    down = "127.0.0.1:9"
    image = f"{down}/rules/far@sha256:" + "a" * 64
    system = System()
    scribe = await _attestor(system, "scribe", "SCRIBE")
    ext = await _attestor(system, "ext", "REGISTRY")
    await system.policy(
        "app",
        _rule(scribe.attestor),
        kubernetesNamespaceAdmissionRules={"ext": _rule(ext.attestor)},
    )
    await system.sign(scribe, image)
    reader, client = _attach(system, down)
    try:
        calm = await system.judge.evaluate(
            "app", AdmissionRequest(images=(image,), namespace="default")
        )
        asked_before = list(reader.asked)
        from chainproof.config import AdmissionSettings
        from chainproof.domain.workloads import ContainerImage, Workload
        from chainproof.services.judge.admission import AdmissionService

        admission = AdmissionService(
            system.judge, system.decisions, system.grafeas, AdmissionSettings(project="app")
        )
        result = await admission.review(
            Workload("Pod", "p", "ext", "default", (ContainerImage("containers[0]", image),)),
            uid="u-ext",
        )
        await admission.close()
    finally:
        await client.aclose()
    assert calm.outcome is Outcome.ALLOWED, calm
    assert asked_before == []
    assert not result.allowed
    assert f"registry {down}" in result.message
    assert reader.asked == [image]


async def test_allowlisted_images_never_contact_the_registry(oci_registry):
    digest = oci_registry.push_umoci_image("rules/allowed", "v1", label="rules-allowed")
    image = f"{oci_registry.host}/rules/allowed@{digest}"
    system = System()
    qa = await _attestor(system, "qa", "REGISTRY")
    await system.policy(
        "app",
        _rule(qa.attestor),
        admissionWhitelistPatterns=[{"namePattern": f"{oci_registry.host}/rules/allowed"}],
    )
    reader, client = _attach(system, oci_registry.host)
    try:
        decision = await system.judge.evaluate("app", AdmissionRequest(images=(image,)))
    finally:
        await client.aclose()
    assert decision.outcome is Outcome.ALLOWED
    assert reader.asked == []


# ------------------------------------------------------------------- multi-architecture


def _multi_arch(oci_registry, repository: str, label: str) -> tuple[str, str, str]:
    amd = oci_registry.push_umoci_image(repository, "amd64", label=label, arch="amd64")
    arm = oci_registry.push_umoci_image(repository, "arm64", label=label, arch="arm64")
    index = push_index(oci_registry, repository, "v1", [(amd, "linux/amd64"), (arm, "linux/arm64")])
    return index, amd, arm


async def test_the_rule_decides_whether_the_index_signature_suffices(oci_registry):
    index, amd, arm = _multi_arch(oci_registry, "rules/multi", "rm")
    image = f"{oci_registry.host}/rules/multi@{index}"
    system = System()
    qa = await _attestor(system, "qa", "REGISTRY")
    await system.policy(
        "app",
        _rule(qa.attestor),  # default: the index's evidence suffices
        kubernetesNamespaceAdmissionRules={
            "strict": _rule(qa.attestor, imageIndex={"everyPlatform": True}),
            "explicit": _rule(qa.attestor, imageIndex={"everyPlatform": False}),
        },
    )
    reader, client = _attach(system, oci_registry.host)

    async def judged(namespace: str):
        return await system.judge.evaluate(
            "app", AdmissionRequest(images=(image,), namespace=namespace)
        )

    try:
        sign_image(oci_registry, "rules/multi", index, qa.signer)
        lenient, explicit, strict = await judged("default"), await judged("explicit"), None
        strict = await judged("strict")
        children_asked = [a for a in reader.asked if amd in a or arm in a]
        sign_image(oci_registry, "rules/multi", amd, qa.signer)
        half = None
        reader.cache.clear()
        half = await judged("strict")
        sig_arm = sign_image(oci_registry, "rules/multi", arm, qa.signer)
        reader.cache.clear()
        full = await judged("strict")
    finally:
        await client.aclose()
    assert lenient.outcome is Outcome.ALLOWED
    assert explicit.outcome is Outcome.ALLOWED
    assert strict.outcome is Outcome.DENIED
    (failure,) = strict.images[0].failures
    assert failure.kind == "platforms"
    assert "2 of 2 carry none" in failure.reason
    assert f"{amd} (linux/amd64)" in failure.reason and f"{arm} (linux/arm64)" in failure.reason
    # Platform manifests were read only for the rule that asked for them.
    assert children_asked and all(a.endswith((amd, arm)) for a in children_asked)
    assert half.outcome is Outcome.DENIED
    (failure,) = half.images[0].failures
    assert "1 of 2 carry none" in failure.reason and arm in failure.reason
    assert amd not in failure.reason
    assert full.outcome is Outcome.ALLOWED, full
    passed = [r for r in full.images[0].requirements if r.kind == "platforms"]
    assert passed and passed[0].passed
    assert f"{oci_registry.host}/rules/multi@{sig_arm}" in passed[0].occurrences


async def test_every_platform_with_scribe_evidence_on_each_platform_manifest(oci_registry):
    index, amd, arm = _multi_arch(oci_registry, "rules/scribe-multi", "rsm")
    name = f"{oci_registry.host}/rules/scribe-multi"
    system = System()
    qa = await _attestor(system, "qa", "SCRIBE")
    await system.policy("app", _rule(qa.attestor, imageIndex={"everyPlatform": True}))
    reader, client = _attach(system, oci_registry.host)
    try:
        await system.sign(qa, f"{name}@{index}")
        await system.sign(qa, f"{name}@{amd}")
        missing_arm = await system.judge.evaluate(
            "app", AdmissionRequest(images=(f"{name}@{index}",))
        )
        # Filed under the arm64 digest, but signing the amd64 one: not evidence for arm64.
        await system.sign(qa, f"{name}@{amd}", filed_under=f"{name}@{arm}")
        wrong = await system.judge.evaluate("app", AdmissionRequest(images=(f"{name}@{index}",)))
        occurrence = await system.sign(qa, f"{name}@{arm}")
        signed = await system.judge.evaluate("app", AdmissionRequest(images=(f"{name}@{index}",)))
        single = await system.judge.evaluate("app", AdmissionRequest(images=(f"{name}@{amd}",)))
    finally:
        await client.aclose()
    # Only the platform list was read from the registry: the attestor's evidence is the scribe's.
    assert set(reader.asked) == {f"platforms:{name}@{index}", f"platforms:{name}@{amd}"}
    assert missing_arm.outcome is Outcome.DENIED
    (failure,) = missing_arm.images[0].failures
    assert arm in failure.reason and amd not in failure.reason
    assert wrong.outcome is Outcome.DENIED
    assert signed.outcome is Outcome.ALLOWED, signed
    platforms = next(r for r in signed.images[0].requirements if r.kind == "platforms")
    assert occurrence.name in platforms.occurrences
    assert single.outcome is Outcome.ALLOWED
    assert (
        "single-platform manifest"
        in next(r for r in single.images[0].requirements if r.kind == "platforms").reason
    )
