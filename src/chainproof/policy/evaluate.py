"""``evaluate(policy, request, evidence, now) -> Decision``: the judge, as a pure function.

For each image of the request, in Binary Authorization's order:

1. the reference must parse (otherwise deny: nothing can be said about it);
2. an image matching ``admissionWhitelistPatterns`` is allowed, and so is one matching the
   system-policy list when ``globalPolicyEvaluationMode`` is ENABLE;
3. the rule is selected (service account, namespace, cluster, default) and applied:
   ALWAYS_ALLOW allows, ALWAYS_DENY denies, REQUIRE_ATTESTATION requires a digest, at least one
   requirement (an empty set denies: fail closed), a verified attestation by every attestor in
   ``requireAttestationsBy``, evidence by them on every platform manifest of an image index
   when the rule (``imageIndex``) or an attestor asks for it, and every ``chainproofChecks``
   check;
   the checks see only evidence signed by attestors the rule names (``requireAttestationsBy``
   and the attestors of its checks) and unsigned Grafeas facts — never evidence that only
   another rule's attestor signed — and the decision lists those attestors; evidence that
   could not be read in full, or an attestor of the rule whose document is unusable, fails;
4. a failing rule in ``DRYRUN_AUDIT_LOG_ONLY`` yields "dry-run-would-deny" (admitted, reported).

The digest an attestation must name comes from the request; the service has already checked
every attestation against it. No I/O, no clock: ``now`` is a parameter. Breakglass and
recording belong to the admission service (:mod:`chainproof.services.judge.admission`); the
webhook in ``api/`` only reads and writes AdmissionReviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy.binauthz import (
    SYSTEM_POLICY,
    AdmissionRule,
    EnforcementMode,
    EvaluationMode,
    Policy,
    select_rule,
)
from chainproof.policy.checks import CheckContext, check_attested_by
from chainproof.policy.checks.image_index import every_platform_attestors, platform_requirements
from chainproof.policy.decision import (
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.policy.evidence import UNSIGNED, Evidence, ImageEvidence


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """Where a workload is about to run, and the images it names (as written in the spec)."""

    images: tuple[str, ...]
    cluster: str | None = None  # location.clusterId, as Binary Authorization keys it
    namespace: str | None = None
    service_account: str | None = None  # the bare name, "ns:name" or the full username

    def as_cel(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster or "",
            "namespace": self.namespace or "",
            "serviceAccount": self.service_account or "",
        }


def pin_hint(image: ImageReference) -> str:
    return (
        f"{image.canonical} has no digest, so no attestation can be checked against it: deploy "
        f"it by digest ({image.name}@sha256:<digest>, e.g. from `crane digest {image.canonical}`"
        " or `docker buildx imagetools inspect`)"
    )


def evaluate(
    policy: Policy, request: AdmissionRequest, evidence: Evidence, now: datetime
) -> Decision:
    """Judge every image of ``request`` against ``policy`` with the verified ``evidence``."""
    images = tuple(_evaluate_image(policy, request, evidence, now, text) for text in request.images)
    # A request with no images runs no code (Kubernetes rejects such pods before we are asked),
    # so combining nothing yields ALLOWED.
    return Decision(images, Decision.combine(images), now, policy.name, policy.etag)


def evidence_rule(
    policy: Policy, request: AdmissionRequest, image: ImageReference
) -> AdmissionRule | None:
    """The rule that will count evidence for ``image`` in ``request``, or None when none will
    (the image is allowlisted or under the system policy, or its rule does not require
    attestations). The service asks this before gathering, so that it reads only what that
    rule may count: an attestor only another rule names is never consulted for this image."""
    if any(p.matches(image) for p in policy.admission_whitelist_patterns):
        return None
    if policy.system_policy_enabled and any(p.matches(image) for p in SYSTEM_POLICY):
        return None
    rule = select_rule(
        policy,
        cluster=request.cluster,
        namespace=request.namespace,
        service_account=request.service_account,
    ).rule
    return rule if rule.evaluation_mode is EvaluationMode.REQUIRE_ATTESTATION else None


def _unparseable(text: str, exc: InvalidArgument) -> ImageDecision:
    return ImageDecision(
        text,
        None,
        RuleSelection("invalid-image", None, None, None, "the image reference does not parse"),
        (RequirementResult("reference", "valid image reference", False, exc.message),),
        Outcome.DENIED,
    )


def _evaluate_image(
    policy: Policy, request: AdmissionRequest, evidence: Evidence, now: datetime, text: str
) -> ImageDecision:
    try:
        image = parse_image_reference(text)
    except InvalidArgument as exc:
        return _unparseable(text, exc)

    for pattern in policy.admission_whitelist_patterns:
        if pattern.matches(image):
            why = f"matches admissionWhitelistPatterns entry {pattern.text!r}"
            return ImageDecision(
                text,
                image.canonical,
                RuleSelection("allowlist", pattern.text, None, None, why),
                (RequirementResult("allowlist", "allowlist", True, why),),
                Outcome.ALLOWED,
            )
    if policy.system_policy_enabled:
        for pattern in SYSTEM_POLICY:
            if pattern.matches(image):
                why = (
                    f"globalPolicyEvaluationMode is ENABLE and the image matches the system "
                    f"policy entry {pattern.text!r}"
                )
                return ImageDecision(
                    text,
                    image.canonical,
                    RuleSelection("system-policy", pattern.text, None, None, why),
                    (RequirementResult("allowlist", "system policy", True, why),),
                    Outcome.ALLOWED,
                )

    selected = select_rule(
        policy,
        cluster=request.cluster,
        namespace=request.namespace,
        service_account=request.service_account,
    )
    rule = selected.rule
    counts_evidence = rule.evaluation_mode is EvaluationMode.REQUIRE_ATTESTATION
    selection = RuleSelection(
        selected.scope,
        selected.key,
        rule.evaluation_mode.value,
        rule.enforcement_mode.value,
        selected.why,
        rule.trusted_attestors if counts_evidence else (),
    )
    requirements = judge_rule(rule, image, request, evidence, now)
    passed = all(r.passed for r in requirements)
    if passed:
        outcome = Outcome.ALLOWED
    elif rule.enforcement_mode is EnforcementMode.DRYRUN_AUDIT_LOG_ONLY:
        outcome = Outcome.DRY_RUN_WOULD_DENY
    else:
        outcome = Outcome.DENIED
    return ImageDecision(text, image.canonical, selection, tuple(requirements), outcome)


def judge_rule(
    rule: AdmissionRule,
    image: ImageReference,
    request: AdmissionRequest,
    evidence: Evidence,
    now: datetime,
) -> list[RequirementResult]:
    """Every requirement of ``rule`` for one image, each with pass or fail and its reason."""
    mode = rule.evaluation_mode
    if mode is EvaluationMode.ALWAYS_ALLOW:
        return [RequirementResult("evaluation-mode", "ALWAYS_ALLOW", True, "the rule allows all")]
    if mode is EvaluationMode.ALWAYS_DENY:
        return [
            RequirementResult(
                "evaluation-mode",
                "ALWAYS_DENY",
                False,
                f"the rule denies every image, including {image.canonical}: deploy elsewhere, "
                "or ask the policy owner for an allowlist entry or a specific rule",
            )
        ]
    if not rule.require_attestations_by and rule.checks.requires_nothing:
        return [
            RequirementResult(
                "evaluation-mode",
                "REQUIRE_ATTESTATION",
                False,
                "the rule is REQUIRE_ATTESTATION but requires nothing (no requireAttestationsBy, "
                "no chainproofChecks); an empty requirement set denies: fix the policy",
            )
        ]
    if image.digest is None:
        return [RequirementResult("digest", "image pinned by digest", False, pin_hint(image))]
    trusted = rule.trusted_attestors
    scoped = evidence.for_image(image).scoped_to(frozenset(trusted))
    ctx = CheckContext(
        image=image,
        evidence=scoped,
        attestors=evidence.attestors,
        now=now,
        request=request.as_cel(),
    )
    results = _unusable(trusted, evidence) + incomplete_failures(image, scoped)
    results.extend(check_attested_by(ctx, name) for name in rule.require_attestations_by)
    platforms = every_platform_attestors(trusted, rule.checks.every_platform, evidence.attestors)
    results.extend(platform_requirements(image, scoped, platforms))
    results.extend(rule.checks.judge(ctx))
    return results


def _unusable(trusted: tuple[str, ...], evidence: Evidence) -> list[RequirementResult]:
    """A failure for each attestor of the rule whose stored document cannot be read."""
    return [
        RequirementResult(
            "attestor",
            f"attestor {name}",
            False,
            f"attestor {name} is unusable: {evidence.unusable_attestors[name]}; fix or "
            "re-create it (its stored document cannot be read)",
        )
        for name in trusted
        if name in evidence.unusable_attestors
    ]


def incomplete_failures(image: ImageReference, scoped: ImageEvidence) -> list[RequirementResult]:
    """A failure for each part of the rule's evidence that could not be read in full: what
    was read is a prefix, and no decision is made on a prefix."""
    return [
        RequirementResult(
            "evidence",
            "complete evidence" if item.source == UNSIGNED else f"evidence by {item.source}",
            False,
            f"the evidence for {image.canonical} could not be read in full: {item.reason}",
        )
        for item in dict.fromkeys(scoped.incomplete)
    ]
