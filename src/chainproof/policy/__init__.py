"""The judge's pure core: policy documents and ``evaluate(policy, request, evidence, now)``.

Owns: Binary Authorization policies and attestors (:mod:`.binauthz`, :mod:`.attestors`),
Kritis resources (:mod:`.kritis`), chainproof's evidence checks (:mod:`.checks`), the evidence
records the evaluator reads (:mod:`.evidence`), and the explained :class:`Decision`
(:mod:`.decision`). Leaves to others: fetching evidence and verifying signatures (services,
crypto, attest), storing policies (store), and admission, breakglass and the decision log
(services.judge.admission and services.judge.judging; api/ only translates the wire formats).
"""

from chainproof.policy.attestors import Attestor, AttestorPublicKey, PkixPublicKey, parse_attestor
from chainproof.policy.binauthz import (
    AdmissionRule,
    EnforcementMode,
    EvaluationMode,
    GlobalPolicyEvaluationMode,
    Policy,
    parse_policy,
    select_rule,
)
from chainproof.policy.decision import (
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.policy.evaluate import AdmissionRequest, evaluate
from chainproof.policy.evidence import (
    AttestationKind,
    Evidence,
    FailedAttestation,
    FailureReason,
    ImageEvidence,
    IncompleteEvidence,
    ProvenanceFact,
    Severity,
    VerifiedAttestation,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
    VulnerabilityScan,
)
from chainproof.policy.kritis import (
    AttestationAuthority,
    GenericAttestationPolicy,
    ImageSecurityPolicy,
    evaluate_kritis,
    parse_kritis_resource,
    parse_kritis_resources,
)

__all__ = [
    "AdmissionRequest",
    "AdmissionRule",
    "AttestationAuthority",
    "AttestationKind",
    "Attestor",
    "AttestorPublicKey",
    "Decision",
    "EnforcementMode",
    "EvaluationMode",
    "Evidence",
    "FailedAttestation",
    "FailureReason",
    "GenericAttestationPolicy",
    "GlobalPolicyEvaluationMode",
    "ImageDecision",
    "ImageEvidence",
    "ImageSecurityPolicy",
    "IncompleteEvidence",
    "Outcome",
    "PkixPublicKey",
    "Policy",
    "ProvenanceFact",
    "RequirementResult",
    "RuleSelection",
    "Severity",
    "VerifiedAttestation",
    "VexStatement",
    "VexStatus",
    "VulnerabilityFinding",
    "VulnerabilityScan",
    "evaluate",
    "evaluate_kritis",
    "parse_attestor",
    "parse_kritis_resource",
    "parse_kritis_resources",
    "parse_policy",
    "select_rule",
]
