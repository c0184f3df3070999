"""Property: without valid evidence, REQUIRE_ATTESTATION never admits an image."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.policy import (
    AdmissionRequest,
    AttestationKind,
    Evidence,
    FailedAttestation,
    FailureReason,
    ImageEvidence,
    Outcome,
    VerifiedAttestation,
    evaluate,
)
from chainproof.policy.binauthz import parse_policy
from unit.policy.policy_factories import ATTESTORS, KEY_QA, NOW, QA

hexdigest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
segment = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
images = st.builds(
    lambda reg, repo, tag, digest: (
        f"{reg}/{repo}" + (f":{tag}" if tag else "") + (f"@sha256:{digest}" if digest else "")
    ),
    st.sampled_from(["gcr.io", "docker.io", "eu.gcr.io", "localhost:5000"]),
    st.lists(segment, min_size=1, max_size=3).map("/".join),
    st.one_of(st.none(), segment),
    st.one_of(st.none(), hexdigest),
)

# Evidence that must never count for QA: failures of every kind, attestations by other
# attestors, and attestations "by" QA under keys it does not list.
bad_verified = st.builds(
    VerifiedAttestation,
    attestor=st.sampled_from(["projects/p/attestors/build", "projects/other/attestors/qa", QA]),
    key_id=st.sampled_from(["DEADBEEF", "", "7F3A"]),
    occurrence=st.just("projects/p/occurrences/x"),
    kind=st.sampled_from(list(AttestationKind)),
)
failed = st.builds(
    FailedAttestation,
    occurrence=st.just("projects/p/occurrences/f"),
    reason=st.sampled_from(list(FailureReason)),
    attestor=st.sampled_from([None, QA]),
    key_id=st.sampled_from([None, KEY_QA]),
)

POLICY = parse_policy(
    {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [QA],
        }
    }
)


@settings(max_examples=200, deadline=None)
@given(
    image=images,
    verified=st.lists(bad_verified, max_size=4),
    failures=st.lists(failed, max_size=4),
    namespace=st.one_of(st.none(), segment),
)
def test_no_valid_evidence_never_admits(
    image: str,
    verified: list[VerifiedAttestation],
    failures: list[FailedAttestation],
    namespace: str | None,
) -> None:
    # The one listed key (KEY_QA) is never used by a "verified" attestation here, so nothing
    # valid exists; whatever else is present, the image must be denied.
    evidence = Evidence(
        images={image: ImageEvidence(tuple(verified), tuple(failures))}, attestors=ATTESTORS
    )
    decision = evaluate(POLICY, AdmissionRequest((image,), namespace=namespace), evidence, NOW)
    assert decision.outcome is Outcome.DENIED
    assert all(i.failures for i in decision.images)


@settings(max_examples=100, deadline=None)
@given(image=images)
def test_valid_evidence_for_one_digest_never_admits_another(image: str) -> None:
    digest_a = "sha256:" + "1" * 64
    ev = Evidence(
        images={
            f"gcr.io/x/app@{digest_a}": ImageEvidence(
                (
                    VerifiedAttestation(
                        QA, KEY_QA, "projects/p/occurrences/1", AttestationKind.SIMPLE_SIGNING
                    ),
                )
            )
        },
        attestors=ATTESTORS,
    )
    decision = evaluate(POLICY, AdmissionRequest((image,)), ev, NOW)
    assert decision.outcome is Outcome.DENIED
