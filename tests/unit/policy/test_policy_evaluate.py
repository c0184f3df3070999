"""evaluate(): modes, enforcement, digests, empty requirements, attestors, and the explanation."""

from __future__ import annotations

import json

import pytest

from chainproof.policy import (
    AdmissionRequest,
    Evidence,
    FailedAttestation,
    FailureReason,
    Outcome,
    evaluate,
)
from unit.policy.policy_factories import (
    APP,
    ATTESTORS,
    BUILD,
    KEY_BUILD,
    KEY_QA,
    KEY_QA_NEW,
    NOW,
    QA,
    attestor,
    evidence,
    policy,
    rule,
    signed,
)

ATTESTED = evidence(attestations=(signed(),))
NOTHING = Evidence(attestors=ATTESTORS)


@pytest.mark.parametrize(
    ("mode", "enforcement", "ev", "outcome"),
    [
        ("ALWAYS_ALLOW", "ENFORCED_BLOCK_AND_AUDIT_LOG", NOTHING, Outcome.ALLOWED),
        ("ALWAYS_ALLOW", "DRYRUN_AUDIT_LOG_ONLY", NOTHING, Outcome.ALLOWED),
        ("ALWAYS_DENY", "ENFORCED_BLOCK_AND_AUDIT_LOG", ATTESTED, Outcome.DENIED),
        ("ALWAYS_DENY", "DRYRUN_AUDIT_LOG_ONLY", ATTESTED, Outcome.DRY_RUN_WOULD_DENY),
        ("REQUIRE_ATTESTATION", "ENFORCED_BLOCK_AND_AUDIT_LOG", ATTESTED, Outcome.ALLOWED),
        ("REQUIRE_ATTESTATION", "ENFORCED_BLOCK_AND_AUDIT_LOG", NOTHING, Outcome.DENIED),
        ("REQUIRE_ATTESTATION", "DRYRUN_AUDIT_LOG_ONLY", ATTESTED, Outcome.ALLOWED),
        ("REQUIRE_ATTESTATION", "DRYRUN_AUDIT_LOG_ONLY", NOTHING, Outcome.DRY_RUN_WOULD_DENY),
    ],
)
def test_evaluation_mode_by_enforcement_mode(
    mode: str, enforcement: str, ev: Evidence, outcome: Outcome
) -> None:
    d = evaluate(policy(rule(mode, enforcement)), AdmissionRequest((APP,)), ev, NOW)
    assert d.outcome is outcome
    assert d.images[0].outcome is outcome
    assert d.allowed is (outcome is not Outcome.DENIED)
    assert d.images[0].rule.evaluation_mode == mode
    assert d.images[0].rule.enforcement_mode == enforcement


def test_the_failure_sentence_counts_what_was_found() -> None:
    ev = evidence(
        failed_attestations=(
            FailedAttestation(
                "projects/p/occurrences/a",
                FailureReason.WRONG_DIGEST,
                QA,
                KEY_QA,
                "names sha256:cd…",
            ),
            FailedAttestation(
                "projects/p/occurrences/b",
                FailureReason.UNKNOWN_KEY,
                QA,
                "7F3A99887766554433221100",
            ),
        )
    )
    d = evaluate(policy(), AdmissionRequest((APP,)), ev, NOW)
    assert d.outcome is Outcome.DENIED
    (failure,) = d.images[0].failures
    assert failure.reason.startswith(
        f"no attestation by {QA} for {APP}: 2 found, 1 for another digest, 1 signed by unknown key 7F3A998877665544…"
    )
    assert set(failure.occurrences) == {"projects/p/occurrences/a", "projects/p/occurrences/b"}
    assert "7F3A99887766554433221100" in failure.key_ids
    assert failure.reason in d.explain()
    assert d.denial_reasons() == (failure.reason,)


def test_nothing_found_says_how_to_attest() -> None:
    d = evaluate(policy(), AdmissionRequest((APP,)), NOTHING, NOW)
    reason = d.images[0].failures[0].reason
    assert "none found" in reason
    assert "projects/p/notes/qa" in reason


def test_failures_for_other_attestors_are_not_counted() -> None:
    ev = evidence(
        failed_attestations=(
            FailedAttestation("projects/p/occurrences/z", FailureReason.BAD_SIGNATURE, BUILD),
        )
    )
    d = evaluate(policy(), AdmissionRequest((APP,)), ev, NOW)
    assert "none found" in d.images[0].failures[0].reason


@pytest.mark.parametrize("key_id", [KEY_QA, KEY_QA_NEW])
def test_key_rotation_either_listed_key_passes(key_id: str) -> None:
    d = evaluate(
        policy(), AdmissionRequest((APP,)), evidence(attestations=(signed(key_id=key_id),)), NOW
    )
    assert d.outcome is Outcome.ALLOWED
    assert d.images[0].requirements[0].key_ids == (key_id,)
    assert d.images[0].requirements[0].occurrences == ("projects/p/occurrences/1",)


def test_a_key_removed_from_the_attestor_no_longer_counts() -> None:
    rotated = {QA: attestor(QA, KEY_QA_NEW)}
    ev = Evidence(images=evidence(attestations=(signed(key_id=KEY_QA),)).images, attestors=rotated)
    d = evaluate(policy(), AdmissionRequest((APP,)), ev, NOW)
    assert d.outcome is Outcome.DENIED
    assert "no longer lists" in d.images[0].failures[0].reason


def test_attestation_by_another_attestor_does_not_count() -> None:
    ev = evidence(attestations=(signed(BUILD, KEY_BUILD),))
    assert evaluate(policy(), AdmissionRequest((APP,)), ev, NOW).outcome is Outcome.DENIED


def test_every_required_attestor_is_needed() -> None:
    p = policy(rule(attestors=(QA, BUILD)))
    one = evidence(attestations=(signed(),))
    both = evidence(
        attestations=(signed(), signed(BUILD, KEY_BUILD, occurrence="projects/p/occurrences/2"))
    )
    assert evaluate(p, AdmissionRequest((APP,)), one, NOW).outcome is Outcome.DENIED
    decided = evaluate(p, AdmissionRequest((APP,)), both, NOW)
    assert decided.outcome is Outcome.ALLOWED
    assert [r.passed for r in decided.images[0].requirements] == [True, True]


def test_unknown_attestor_denies_with_a_reason() -> None:
    p = policy(rule(attestors=("projects/p/attestors/ghost",)))
    d = evaluate(p, AdmissionRequest((APP,)), ATTESTED, NOW)
    assert d.outcome is Outcome.DENIED
    assert "projects/p/attestors/ghost, which does not exist" in d.images[0].failures[0].reason


def test_empty_requirements_under_require_attestation_deny() -> None:
    p = policy(
        {"evaluationMode": "REQUIRE_ATTESTATION", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
    )
    d = evaluate(p, AdmissionRequest((APP,)), ATTESTED, NOW)
    assert d.outcome is Outcome.DENIED
    assert "empty requirement set denies" in d.images[0].failures[0].reason


@pytest.mark.parametrize("image", ["gcr.io/x/app", "gcr.io/x/app:1.0"])
def test_digestless_images_cannot_satisfy_require_attestation(image: str) -> None:
    ev = Evidence(images={APP: evidence(attestations=(signed(),)).images[APP]}, attestors=ATTESTORS)
    d = evaluate(policy(), AdmissionRequest((image,)), ev, NOW)
    assert d.outcome is Outcome.DENIED
    (failure,) = d.images[0].failures
    assert failure.kind == "digest"
    assert "@sha256:<digest>" in failure.reason


def test_digestless_image_passes_when_allowlisted() -> None:
    p = policy(admissionWhitelistPatterns=[{"namePattern": "gcr.io/x/*"}])
    d = evaluate(p, AdmissionRequest(("gcr.io/x/app:1.0",)), NOTHING, NOW)
    assert d.outcome is Outcome.ALLOWED
    assert d.images[0].rule.scope == "allowlist"
    assert d.images[0].rule.key == "gcr.io/x/*"


def test_allowlist_beats_always_deny() -> None:
    p = policy(rule("ALWAYS_DENY"), admissionWhitelistPatterns=[{"namePattern": "nginx"}])
    assert evaluate(p, AdmissionRequest(("nginx:1.27",)), NOTHING, NOW).outcome is Outcome.ALLOWED
    assert evaluate(p, AdmissionRequest(("redis:7",)), NOTHING, NOW).outcome is Outcome.DENIED


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [("ENABLE", Outcome.ALLOWED), ("DISABLE", Outcome.DENIED), (None, Outcome.DENIED)],
)
def test_global_policy_evaluation_mode_allowlists_system_images(
    mode: str | None, outcome: Outcome
) -> None:
    extra = {"globalPolicyEvaluationMode": mode} if mode else {}
    p = policy(rule("ALWAYS_DENY"), **extra)
    d = evaluate(p, AdmissionRequest(("gke.gcr.io/kube-proxy:v1.30",)), NOTHING, NOW)
    assert d.outcome is outcome
    # The system policy never reaches beyond Google's own paths.
    assert (
        evaluate(p, AdmissionRequest(("gcr.io/x/app:1",)), NOTHING, NOW).outcome is Outcome.DENIED
    )


def test_the_selected_rule_is_reported_with_its_reason() -> None:
    p = policy(
        rule("ALWAYS_DENY"),
        kubernetesNamespaceAdmissionRules={"payments": rule()},
    )
    d = evaluate(p, AdmissionRequest((APP,), namespace="payments"), ATTESTED, NOW)
    assert d.outcome is Outcome.ALLOWED
    assert d.images[0].rule.scope == "namespace"
    assert "namespace payments" in d.images[0].rule.why


def test_one_denied_image_denies_the_workload_and_dry_run_is_weaker_than_deny() -> None:
    other = "gcr.io/x/other@sha256:" + "ef" * 32
    p = policy(
        rule(), kubernetesNamespaceAdmissionRules={"dry": rule(enforcement="DRYRUN_AUDIT_LOG_ONLY")}
    )
    d = evaluate(p, AdmissionRequest((APP, other)), ATTESTED, NOW)
    assert [i.outcome for i in d.images] == [Outcome.ALLOWED, Outcome.DENIED]
    assert d.outcome is Outcome.DENIED
    dry = evaluate(p, AdmissionRequest((APP, other), namespace="dry"), ATTESTED, NOW)
    assert dry.outcome is Outcome.DRY_RUN_WOULD_DENY
    assert dry.allowed


def test_unparseable_image_is_denied_with_the_parser_message() -> None:
    d = evaluate(policy(rule("ALWAYS_ALLOW")), AdmissionRequest(("Not An Image!",)), NOTHING, NOW)
    assert d.outcome is Outcome.DENIED
    assert d.images[0].reference is None
    assert d.images[0].failures[0].kind == "reference"


def test_evidence_is_found_under_any_spelling_of_the_reference() -> None:
    ev = evidence(
        image="https://docker.io/library/nginx@sha256:" + "ab" * 32, attestations=(signed(),)
    )
    d = evaluate(policy(), AdmissionRequest(("nginx@sha256:" + "ab" * 32,)), ev, NOW)
    assert d.outcome is Outcome.ALLOWED


def test_decision_serialises_to_json() -> None:
    d = evaluate(policy(), AdmissionRequest((APP,)), NOTHING, NOW)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["outcome"] == "denied"
    assert data["allowed"] is False
    assert data["policy"] == "projects/p/policy"
    assert data["policyEtag"] == policy().etag
    image = data["images"][0]
    assert image["reference"] == APP
    assert image["rule"]["scope"] == "default"
    assert image["requirements"][0]["passed"] is False
    assert image["requirements"][0]["kind"] == "attestation"


def test_explain_names_verdict_rule_and_each_requirement() -> None:
    text = evaluate(policy(), AdmissionRequest((APP,)), ATTESTED, NOW).explain()
    lines = text.splitlines()
    assert lines[0] == "ALLOWED by projects/p/policy"
    assert any(line.startswith("  rule: defaultAdmissionRule") for line in lines)
    assert any(line.startswith(f"  [ok  ] attestation by {QA}") for line in lines)
