"""The rule's ``imageIndex`` setting: parsing, which attestors it covers, and its results."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainproof.attest.oci import Descriptor, Platform, platform_manifests
from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, Outcome, evaluate
from chainproof.policy.checks.image_index import every_platform_attestors
from chainproof.policy.evaluate import evidence_rule
from chainproof.policy.evidence import PlatformEvidence
from unit.policy.policy_factories import (
    APP,
    ATTESTORS,
    BUILD,
    NOW,
    QA,
    evidence,
    policy,
    rule,
    signed,
)

CHILD_A = "sha256:" + "1" * 64
CHILD_B = "sha256:" + "2" * 64


def judged(doc, **fields):
    return evaluate(policy(doc), AdmissionRequest((APP,)), evidence(**fields), NOW).images[0]


def test_image_index_round_trips_and_needs_every_platform():
    checks = policy(rule(imageIndex={"everyPlatform": True})).default_admission_rule.checks
    assert checks.every_platform
    assert checks.to_dict() == {"imageIndex": {"everyPlatform": True}}
    for bad, problem in (
        ({}, "everyPlatform: is required"),
        ({"everyPlatform": "yes"}, "everyPlatform"),
        ({"everyPlatfrom": True}, "everyPlatfrom"),
    ):
        with pytest.raises(InvalidArgument) as err:
            policy(rule(imageIndex=bad))
        assert any(problem in d for d in err.value.details), err.value.details


def test_image_index_alone_requires_nothing_and_denies():
    decision = judged(rule(attestors=(), imageIndex={"everyPlatform": True}))
    assert decision.outcome is Outcome.DENIED
    assert "requires nothing" in decision.failures[0].reason


def test_index_evidence_suffices_unless_the_rule_says_every_platform():
    platforms = (PlatformEvidence(CHILD_A, "linux/amd64"),)
    lenient = judged(rule(), attestations=(signed(),), platforms=platforms)
    assert lenient.outcome is Outcome.ALLOWED
    strict = judged(
        rule(imageIndex={"everyPlatform": True}), attestations=(signed(),), platforms=platforms
    )
    assert strict.outcome is Outcome.DENIED
    (failure,) = strict.failures
    assert failure.kind == "platforms"
    assert f"{CHILD_A} (linux/amd64)" in failure.reason
    assert "gcr.io/x/app@" + CHILD_A in failure.occurrences


def test_every_platform_signed_by_each_attestor_of_the_rule():
    doc = rule(attestors=(QA, BUILD), imageIndex={"everyPlatform": True})
    both = {QA: ("occ-qa",), BUILD: ("occ-build",)}
    attestations = (signed(), signed(BUILD, "https://kms.example/keys/build/1"))
    ok = judged(
        doc,
        attestations=attestations,
        platforms=(PlatformEvidence(CHILD_A, "", both), PlatformEvidence(CHILD_B, "", both)),
    )
    assert ok.outcome is Outcome.ALLOWED, ok.failures
    half = judged(
        doc,
        attestations=attestations,
        platforms=(
            PlatformEvidence(CHILD_A, "", both),
            PlatformEvidence(CHILD_B, "", {QA: ("x",)}),
        ),
    )
    (failure,) = half.failures
    assert failure.name == f"evidence by {BUILD} on every platform manifest"
    assert CHILD_B in failure.reason and CHILD_A not in failure.reason


def test_platforms_not_read_fail_closed_and_single_manifests_pass():
    doc = rule(imageIndex={"everyPlatform": True})
    unread = judged(doc, attestations=(signed(),))
    assert unread.outcome is Outcome.DENIED
    assert "was not read" in unread.failures[0].reason
    single = judged(doc, attestations=(signed(),), platforms=())
    assert single.outcome is Outcome.ALLOWED


def test_evidence_of_another_attestor_on_a_platform_does_not_count():
    doc = rule(imageIndex={"everyPlatform": True})
    other = (PlatformEvidence(CHILD_A, "", {BUILD: ("occ-build",)}),)
    decision = judged(doc, attestations=(signed(),), platforms=other)
    assert decision.outcome is Outcome.DENIED


def test_the_attestors_own_setting_still_applies_and_the_stricter_wins():
    strict_qa = replace(ATTESTORS[QA], require_signed_children=True)
    attestors = {**ATTESTORS, QA: strict_qa}
    assert every_platform_attestors((QA, BUILD), False, attestors) == (QA,)
    assert every_platform_attestors((QA, BUILD), True, attestors) == (QA, BUILD)
    assert every_platform_attestors((BUILD,), False, attestors) == ()


def test_evidence_rule_is_none_where_no_evidence_is_counted():
    image = parse_image_reference(APP)
    p = policy(
        rule(),
        admissionWhitelistPatterns=[{"namePattern": "gcr.io/x/allowed"}],
        kubernetesNamespaceAdmissionRules={"open": rule("ALWAYS_ALLOW")},
    )
    assert evidence_rule(p, AdmissionRequest((APP,)), image) is p.default_admission_rule
    assert evidence_rule(p, AdmissionRequest((APP,), namespace="open"), image) is None
    allowed = parse_image_reference("gcr.io/x/allowed@" + CHILD_A)
    assert evidence_rule(p, AdmissionRequest((APP,)), allowed) is None


def test_buildx_attestation_manifests_are_not_platforms():
    run = Descriptor(
        "application/vnd.oci.image.manifest.v1+json", CHILD_A, 1, {}, "", Platform("linux", "amd64")
    )
    attestation = Descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        CHILD_B,
        1,
        {"vnd.docker.reference.type": "attestation-manifest"},
        "",
        Platform("unknown", "unknown"),
    )
    disguised = replace(attestation, platform=Platform("linux", "arm64"))
    assert platform_manifests((run, attestation)) == (run,)
    # An annotation alone cannot hide a runnable manifest from the requirement.
    assert platform_manifests((run, disguised)) == (run, disguised)
