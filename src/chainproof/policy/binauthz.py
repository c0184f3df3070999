"""Binary Authorization policies: the document, parsed once, and the choice of rule.

The shape is the one ``gcloud container binauthz policy export`` writes (and the REST API's
``Policy``): ``name``, ``globalPolicyEvaluationMode``, ``admissionWhitelistPatterns``,
``defaultAdmissionRule``, ``clusterAdmissionRules`` (keys ``location.clusterId``),
``kubernetesNamespaceAdmissionRules``, ``kubernetesServiceAccountAdmissionRules`` (keys
``namespace:serviceaccount``) and ``istioServiceIdentityAdmissionRules`` (read and written back,
never selected: chainproof's requests carry no Istio identity). A rule may carry chainproof's
own ``chainproofChecks`` (see :mod:`chainproof.policy.checks`).

:func:`parse_policy` reports every violation with its path in one InvalidArgument;
:meth:`Policy.to_dict` writes the same JSON back; :attr:`Policy.etag` is derived from content.
:func:`select_rule` picks the rule the way Binary Authorization does: service-account rule,
then namespace rule, then cluster rule, then the default. Judging the evidence is left to
:mod:`chainproof.policy.evaluate`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from chainproof.domain.names import is_attestor_name
from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader, Problems, index
from chainproof.policy.checks import ChainproofChecks, read_checks
from chainproof.policy.patterns import ImageNamePattern, compile_image_pattern

POLICY_NAME = re.compile(r"projects/[^/\s]+/policy")
_CLUSTER_KEY = re.compile(r"[a-z0-9-]+\.[A-Za-z0-9_-]+")
_NAMESPACE_KEY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_SERVICE_ACCOUNT_KEY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


class EvaluationMode(StrEnum):
    ALWAYS_ALLOW = "ALWAYS_ALLOW"
    REQUIRE_ATTESTATION = "REQUIRE_ATTESTATION"
    ALWAYS_DENY = "ALWAYS_DENY"


class EnforcementMode(StrEnum):
    ENFORCED_BLOCK_AND_AUDIT_LOG = "ENFORCED_BLOCK_AND_AUDIT_LOG"
    DRYRUN_AUDIT_LOG_ONLY = "DRYRUN_AUDIT_LOG_ONLY"


class GlobalPolicyEvaluationMode(StrEnum):
    ENABLE = "ENABLE"
    DISABLE = "DISABLE"


# Google keeps its "system policy" list private and changes it; these are the Google-owned
# paths GKE system components are pulled from, which is what ENABLE is for. registry.k8s.io is
# deliberately absent: it also serves community images nobody at Google vouches for.
SYSTEM_POLICY_PATTERNS: tuple[str, ...] = (
    "gke.gcr.io/**",
    "gcr.io/gke-release/**",
    "gcr.io/gke-on-prem-release/**",
    "gcr.io/google-containers/**",
    "gcr.io/google_containers/**",
    "gcr.io/stackdriver-agents/**",
    "k8s.gcr.io/**",
)
SYSTEM_POLICY: tuple[ImageNamePattern, ...] = tuple(
    compile_image_pattern(p) for p in SYSTEM_POLICY_PATTERNS
)


@dataclass(frozen=True, slots=True)
class AdmissionRule:
    evaluation_mode: EvaluationMode
    enforcement_mode: EnforcementMode
    require_attestations_by: tuple[str, ...] = ()
    checks: ChainproofChecks = field(default_factory=ChainproofChecks)

    @property
    def trusted_attestors(self) -> tuple[str, ...]:
        """The attestors this rule names, in order: only evidence they signed counts for it
        (``requireAttestationsBy`` and every attestor its checks name), never that of an
        attestor only another rule trusts."""
        names = list(self.require_attestations_by)
        names.extend(sorted(self.checks.attestors))
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"evaluationMode": self.evaluation_mode.value}
        if self.require_attestations_by:
            out["requireAttestationsBy"] = list(self.require_attestations_by)
        out["enforcementMode"] = self.enforcement_mode.value
        if not self.checks.empty:
            out["chainproofChecks"] = self.checks.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Policy:
    default_admission_rule: AdmissionRule
    name: str = ""
    description: str = ""
    global_policy_evaluation_mode: GlobalPolicyEvaluationMode | None = None
    admission_whitelist_patterns: tuple[ImageNamePattern, ...] = ()
    cluster_admission_rules: Mapping[str, AdmissionRule] = field(default_factory=dict)
    kubernetes_namespace_admission_rules: Mapping[str, AdmissionRule] = field(default_factory=dict)
    kubernetes_service_account_admission_rules: Mapping[str, AdmissionRule] = field(
        default_factory=dict
    )
    istio_service_identity_admission_rules: Mapping[str, AdmissionRule] = field(
        default_factory=dict
    )
    # Computed once: every Decision carries the etag, so hashing per evaluation would be waste.
    _etag: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        for attr in (
            "cluster_admission_rules",
            "kubernetes_namespace_admission_rules",
            "kubernetes_service_account_admission_rules",
            "istio_service_identity_admission_rules",
        ):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_etag", hashlib.sha256(canonical.encode()).hexdigest()[:32])

    @property
    def system_policy_enabled(self) -> bool:
        # The API assumes DISABLE when the field is unset.
        return self.global_policy_evaluation_mode is GlobalPolicyEvaluationMode.ENABLE

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.global_policy_evaluation_mode is not None:
            out["globalPolicyEvaluationMode"] = self.global_policy_evaluation_mode.value
        if self.admission_whitelist_patterns:
            out["admissionWhitelistPatterns"] = [
                {"namePattern": p.text} for p in self.admission_whitelist_patterns
            ]
        out["defaultAdmissionRule"] = self.default_admission_rule.to_dict()
        for key, rules in (
            ("clusterAdmissionRules", self.cluster_admission_rules),
            ("kubernetesNamespaceAdmissionRules", self.kubernetes_namespace_admission_rules),
            (
                "kubernetesServiceAccountAdmissionRules",
                self.kubernetes_service_account_admission_rules,
            ),
            ("istioServiceIdentityAdmissionRules", self.istio_service_identity_admission_rules),
        ):
            if rules:
                out[key] = {k: r.to_dict() for k, r in rules.items()}
        return out

    @property
    def etag(self) -> str:
        """A content hash: equal policies have equal etags, whatever their key order."""
        return self._etag

    def referenced_attestors(self) -> frozenset[str]:
        """Every attestor any rule names (for the service to fetch before evaluating)."""
        names: set[str] = set()
        for rule in self._all_rules():
            names.update(rule.trusted_attestors)
        return frozenset(names)

    def _all_rules(self) -> list[AdmissionRule]:
        rules = [self.default_admission_rule]
        for group in (
            self.cluster_admission_rules,
            self.kubernetes_namespace_admission_rules,
            self.kubernetes_service_account_admission_rules,
            self.istio_service_identity_admission_rules,
        ):
            rules.extend(group.values())
        return rules


_RULE_FIELDS = ("evaluationMode", "requireAttestationsBy", "enforcementMode", "chainproofChecks")
_POLICY_FIELDS = (
    "name",
    "description",
    "globalPolicyEvaluationMode",
    "admissionWhitelistPatterns",
    "defaultAdmissionRule",
    "clusterAdmissionRules",
    "kubernetesNamespaceAdmissionRules",
    "kubernetesServiceAccountAdmissionRules",
    "istioServiceIdentityAdmissionRules",
    "updateTime",
    "etag",
)


def parse_policy(data: Mapping[str, Any] | object) -> Policy:
    """Parse a policy document; raise InvalidArgument listing every problem with its path."""
    problems = Problems("policy")
    r = FieldReader(problems, "", data, _POLICY_FIELDS)
    name = r.string("name")
    if name and not POLICY_NAME.fullmatch(name):
        problems.add("name", f"{name!r} is not of the form projects/PROJECT/policy")
    gpem: GlobalPolicyEvaluationMode | None = None
    if r.has("globalPolicyEvaluationMode"):
        gpem = r.enum(
            "globalPolicyEvaluationMode",
            GlobalPolicyEvaluationMode,
            default=GlobalPolicyEvaluationMode.DISABLE,
        )
    patterns: list[ImageNamePattern] = []
    for path, item in r.object_list("admissionWhitelistPatterns"):
        p = FieldReader(problems, path, item, ("namePattern",))
        text = p.string("namePattern", required=True)
        if text.strip():
            try:
                patterns.append(compile_image_pattern(text))
            except InvalidArgument as exc:
                problems.add(p.at("namePattern"), exc.message)
    if r.has("defaultAdmissionRule"):
        default = _read_rule(problems, "defaultAdmissionRule", r.raw("defaultAdmissionRule"))
    else:
        if r.ok:
            problems.add("defaultAdmissionRule", "is required")
        default = AdmissionRule(
            EvaluationMode.ALWAYS_DENY, EnforcementMode.ENFORCED_BLOCK_AND_AUDIT_LOG
        )
    policy = Policy(
        default_admission_rule=default,
        name=name,
        description=r.string("description"),
        global_policy_evaluation_mode=gpem,
        admission_whitelist_patterns=tuple(patterns),
        cluster_admission_rules=_read_rules(
            problems, r, "clusterAdmissionRules", _CLUSTER_KEY, "location.clusterId"
        ),
        kubernetes_namespace_admission_rules=_read_rules(
            problems, r, "kubernetesNamespaceAdmissionRules", _NAMESPACE_KEY, "a namespace name"
        ),
        kubernetes_service_account_admission_rules=_read_rules(
            problems,
            r,
            "kubernetesServiceAccountAdmissionRules",
            _SERVICE_ACCOUNT_KEY,
            "namespace:serviceaccount",
        ),
        istio_service_identity_admission_rules=_read_rules(
            problems, r, "istioServiceIdentityAdmissionRules", None, ""
        ),
    )
    problems.raise_if_any()
    return policy


def _read_rules(
    problems: Problems, r: FieldReader, key: str, form: re.Pattern[str] | None, expected: str
) -> dict[str, AdmissionRule]:
    rules: dict[str, AdmissionRule] = {}
    for k, path, value in r.object_map(key):
        if form is not None and not form.fullmatch(k):
            problems.add(path, f"key {k!r} is not of the form {expected}")
        rules[k] = _read_rule(problems, path, value)
    return rules


def _read_rule(problems: Problems, path: str, data: object) -> AdmissionRule:
    r = FieldReader(problems, path, data, _RULE_FIELDS)
    mode = r.enum(
        "evaluationMode", EvaluationMode, required=r.ok, default=EvaluationMode.ALWAYS_DENY
    )
    enforcement = r.enum(
        "enforcementMode",
        EnforcementMode,
        required=r.ok,
        default=EnforcementMode.ENFORCED_BLOCK_AND_AUDIT_LOG,
    )
    attestors = r.string_list("requireAttestationsBy")
    for i, name in enumerate(attestors):
        if not is_attestor_name(name):
            problems.add(
                index(r.at("requireAttestationsBy"), i),
                f"{name!r} is not of the form projects/PROJECT/attestors/ID",
            )
    checks = ChainproofChecks()
    if r.has("chainproofChecks"):
        checks = read_checks(problems, r.at("chainproofChecks"), r.raw("chainproofChecks"))
    if mode is not EvaluationMode.REQUIRE_ATTESTATION and r.has("evaluationMode"):
        # Silently ignoring requirements under ALWAYS_ALLOW would read as protection that is
        # not there.
        if attestors:
            problems.add(
                r.at("requireAttestationsBy"),
                f"only allowed with evaluationMode REQUIRE_ATTESTATION, not {mode.value}",
            )
        if not checks.empty:
            problems.add(
                r.at("chainproofChecks"),
                f"only allowed with evaluationMode REQUIRE_ATTESTATION, not {mode.value}",
            )
    return AdmissionRule(mode, enforcement, attestors, checks)


@dataclass(frozen=True, slots=True)
class SelectedRule:
    scope: str  # service-account | namespace | cluster | default
    key: str | None
    rule: AdmissionRule
    why: str


def select_rule(
    policy: Policy,
    *,
    cluster: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
) -> SelectedRule:
    """The most specific rule for where the workload runs (Binary Authorization's order)."""
    if namespace and service_account:
        sa_name = service_account
        # Accept "system:serviceaccount:ns:name" and "ns:name" as well as the bare name.
        if sa_name.startswith("system:serviceaccount:"):
            sa_name = sa_name.removeprefix("system:serviceaccount:")
        key = sa_name if ":" in sa_name else f"{namespace}:{sa_name}"
        rule = policy.kubernetes_service_account_admission_rules.get(key)
        if rule is not None:
            return SelectedRule(
                "service-account",
                key,
                rule,
                f"kubernetesServiceAccountAdmissionRules[{key}] (the workload runs as {key})",
            )
    if namespace:
        rule = policy.kubernetes_namespace_admission_rules.get(namespace)
        if rule is not None:
            return SelectedRule(
                "namespace",
                namespace,
                rule,
                f"kubernetesNamespaceAdmissionRules[{namespace}] (no rule for the service "
                f"account; the workload is in namespace {namespace})",
            )
    if cluster:
        rule = policy.cluster_admission_rules.get(cluster)
        if rule is not None:
            return SelectedRule(
                "cluster",
                cluster,
                rule,
                f"clusterAdmissionRules[{cluster}] (no service-account or namespace rule applies)",
            )
    return SelectedRule(
        "default",
        None,
        policy.default_admission_rule,
        "defaultAdmissionRule (no service-account, namespace or cluster rule applies)",
    )
