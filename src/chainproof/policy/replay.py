"""What a policy change would change, as pure functions: replay, coverage and diff.

Owns the comparisons, never the reading: the service (services/judge/replay.py) reads the
recorded admissions and the running workloads, gathers each image's evidence once, judges
every case under both policies with :func:`chainproof.policy.evaluate`, and hands the pairs
of decisions here.

* :func:`compare` says whether one case's outcome changes between two decisions, and why
  (the rule that now applies and the requirements that now fail or now pass);
* :func:`coverage` says, for the namespaces, service accounts and images that are seen, which
  rule each falls to, and lists those no specific rule covers;
* :func:`rule_changes` lists the rules two policies define differently.

Nothing here enforces anything, reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy.binauthz import SYSTEM_POLICY, AdmissionRule, Policy, select_rule
from chainproof.policy.decision import Decision, ImageDecision
from chainproof.policy.evaluate import AdmissionRequest

#: The scopes that are a specific rule: a workload under one of them was thought of.
SPECIFIC_SCOPES = frozenset({"allowlist", "system-policy", "service-account", "namespace"})


@dataclass(frozen=True, slots=True)
class ReplayCase:
    """One thing to judge again: a recorded admission or a running workload."""

    source: str  # "admission" | "running"
    ref: str  # the decision ID, or cluster/namespace/pod
    request: AdmissionRequest
    #: What was recorded (admissions): allowed, denied, dry-run-would-deny, breakglass, error.
    recorded: str = ""
    workload: str = ""  # Kind/name
    time: str = ""  # RFC 3339, when it was recorded or has run since


@dataclass(frozen=True, slots=True)
class ImageChange:
    image: str
    before: str
    after: str
    rule_before: str
    rule_after: str
    #: Requirements that fail under the second decision and did not under the first, and
    #: those that no longer fail: the "why".
    now_failing: tuple[str, ...]
    now_passing: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "before": self.before,
            "after": self.after,
            "ruleBefore": self.rule_before,
            "ruleAfter": self.rule_after,
            "nowFailing": list(self.now_failing),
            "nowPassing": list(self.now_passing),
        }


@dataclass(frozen=True, slots=True)
class OutcomeChange:
    case: ReplayCase
    before: str
    after: str
    images: tuple[ImageChange, ...]

    def to_dict(self) -> dict[str, Any]:
        r = self.case.request
        return {
            "source": self.case.source,
            "ref": self.case.ref,
            "recorded": self.case.recorded,
            "workload": self.case.workload,
            "time": self.case.time,
            "cluster": r.cluster or "",
            "namespace": r.namespace or "",
            "serviceAccount": r.service_account or "",
            "before": self.before,
            "after": self.after,
            "images": [i.to_dict() for i in self.images],
        }


def _rule_name(image: ImageDecision) -> str:
    rule = image.rule
    return f"{rule.scope}[{rule.key}]" if rule.key else rule.scope


def _failing(image: ImageDecision) -> dict[str, str]:
    return {f"{r.kind}:{r.name}": f"{r.name}: {r.reason}" for r in image.failures}


def compare(case: ReplayCase, before: Decision, after: Decision) -> OutcomeChange | None:
    """The change of ``case``'s outcome from ``before`` to ``after`` (both judged on the same
    evidence, so only the policy differs), or None when the outcome is the same. Images are
    paired by position: both decisions judged the same request."""
    if before.outcome is after.outcome:
        return None
    images: list[ImageChange] = []
    for b, a in zip(before.images, after.images, strict=True):
        if b.outcome is a.outcome:
            continue
        fb, fa = _failing(b), _failing(a)
        images.append(
            ImageChange(
                image=a.reference or a.image,
                before=b.outcome.value,
                after=a.outcome.value,
                rule_before=_rule_name(b),
                rule_after=_rule_name(a),
                now_failing=tuple(fa[k] for k in fa if k not in fb),
                now_passing=tuple(fb[k] for k in fb if k not in fa),
            )
        )
    return OutcomeChange(case, before.outcome.value, after.outcome.value, tuple(images))


# ----------------------------------------------------------------------------- coverage


@dataclass(frozen=True, slots=True)
class Subject:
    """Where something runs (or was admitted): what rule selection reads, and the image."""

    cluster: str
    namespace: str
    service_account: str
    image: str


@dataclass(frozen=True, slots=True)
class Covered:
    """One namespace, service account or image, and the rule it falls to."""

    kind: str  # namespace | service-account | image
    name: str
    scope: str  # the rule's scope (default, cluster, namespace, service-account, allowlist…)
    rule: str  # e.g. kubernetesNamespaceAdmissionRules[prod], defaultAdmissionRule
    evaluation_mode: str
    where: tuple[str, ...] = ()  # for images: the namespaces it is seen in

    @property
    def specific(self) -> bool:
        return self.scope in SPECIFIC_SCOPES

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "scope": self.scope,
            "rule": self.rule,
            "evaluationMode": self.evaluation_mode,
            "specific": self.specific,
            **({"where": list(self.where)} if self.where else {}),
        }


@dataclass(frozen=True, slots=True)
class CoverageReport:
    items: tuple[Covered, ...]

    @property
    def uncovered(self) -> tuple[Covered, ...]:
        return tuple(i for i in self.items if not i.specific)

    def to_dict(self, *, everything: bool = False) -> dict[str, Any]:
        shown = self.items if everything else self.uncovered
        return {
            "uncovered": len(self.uncovered),
            "total": len(self.items),
            "items": [i.to_dict() for i in shown],
        }


_RULE_FIELD = {
    "service-account": "kubernetesServiceAccountAdmissionRules",
    "namespace": "kubernetesNamespaceAdmissionRules",
    "cluster": "clusterAdmissionRules",
}


def _rule_label(scope: str, key: str | None) -> str:
    if scope == "default":
        return "defaultAdmissionRule"
    if scope in _RULE_FIELD:
        return f"{_RULE_FIELD[scope]}[{key}]"
    return f"{scope}[{key}]" if key else scope


def _rule_for(policy: Policy, s: Subject) -> tuple[str, str, AdmissionRule | None]:
    """(scope, label, rule) for where ``s`` runs, before looking at the image."""
    selected = select_rule(
        policy,
        cluster=s.cluster or None,
        namespace=s.namespace or None,
        service_account=s.service_account or None,
    )
    return selected.scope, _rule_label(selected.scope, selected.key), selected.rule


def _image_rule(policy: Policy, s: Subject) -> tuple[str, str, str]:
    """(scope, label, evaluation mode) that judges the image of ``s``: an allowlist entry
    or the system policy before any rule, as the evaluator does."""
    try:
        ref = parse_image_reference(s.image)
    except InvalidArgument:
        return "invalid-image", "invalid-image", "ALWAYS_DENY"
    for pattern in policy.admission_whitelist_patterns:
        if pattern.matches(ref):
            return "allowlist", f"admissionWhitelistPatterns[{pattern.text}]", "ALWAYS_ALLOW"
    if policy.system_policy_enabled:
        for pattern in SYSTEM_POLICY:
            if pattern.matches(ref):
                return "system-policy", f"system policy[{pattern.text}]", "ALWAYS_ALLOW"
    scope, label, rule = _rule_for(policy, s)
    return scope, label, rule.evaluation_mode.value if rule is not None else ""


def _sa_key(s: Subject) -> str:
    name = s.service_account.removeprefix("system:serviceaccount:")
    return name if ":" in name else f"{s.namespace}:{name}"


def coverage(policy: Policy, subjects: Iterable[Subject]) -> CoverageReport:
    """Which rule each namespace, service account and image seen in ``subjects`` falls to.

    A namespace is covered by its namespace rule; a service account by its own rule (or, when
    it has none, by its namespace's); an image by an allowlist entry, the system policy, or
    the specific rule of every place it is seen. A cluster rule and the default rule are not
    specific: whatever they judge, nobody wrote a rule for it."""
    namespaces: dict[str, Subject] = {}
    accounts: dict[str, Subject] = {}
    images: dict[str, list[Subject]] = {}
    for s in subjects:
        if s.namespace:
            namespaces.setdefault(s.namespace, s)
            if s.service_account:
                accounts.setdefault(_sa_key(s), s)
        if s.image:
            images.setdefault(s.image, []).append(s)
    items: list[Covered] = []
    for name, s in sorted(namespaces.items()):
        scope, label, rule = _rule_for(policy, Subject(s.cluster, s.namespace, "", ""))
        mode = rule.evaluation_mode.value if rule is not None else ""
        items.append(Covered("namespace", name, scope, label, mode))
    for name, s in sorted(accounts.items()):
        scope, label, rule = _rule_for(policy, s)
        mode = rule.evaluation_mode.value if rule is not None else ""
        items.append(Covered("service-account", name, scope, label, mode))
    for name, seen in sorted(images.items()):
        judged = [_image_rule(policy, s) for s in seen]
        # The least specific place it runs decides: an image is covered only where every
        # place it is seen has a rule of its own.
        worst = next((j for j in judged if j[0] not in SPECIFIC_SCOPES), judged[0])
        where = tuple(sorted({s.namespace for s in seen if s.namespace}))
        items.append(Covered("image", name, worst[0], worst[1], worst[2], where))
    return CoverageReport(tuple(items))


# ----------------------------------------------------------------------------- diff


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule: str  # e.g. kubernetesNamespaceAdmissionRules[prod]
    change: str  # added | removed | changed
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "change": self.change,
            "before": self.before,
            "after": self.after,
        }


def _rules(policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultAdmissionRule": policy.default_admission_rule.to_dict()}
    for field_name, rules in (
        ("clusterAdmissionRules", policy.cluster_admission_rules),
        ("kubernetesNamespaceAdmissionRules", policy.kubernetes_namespace_admission_rules),
        (
            "kubernetesServiceAccountAdmissionRules",
            policy.kubernetes_service_account_admission_rules,
        ),
        ("istioServiceIdentityAdmissionRules", policy.istio_service_identity_admission_rules),
    ):
        for key, rule in rules.items():
            out[f"{field_name}[{key}]"] = rule.to_dict()
    out["admissionWhitelistPatterns"] = sorted(p.text for p in policy.admission_whitelist_patterns)
    gpem = policy.global_policy_evaluation_mode
    out["globalPolicyEvaluationMode"] = gpem.value if gpem is not None else "DISABLE"
    return out


def rule_changes(a: Policy, b: Policy) -> list[RuleChange]:
    """The rules (and the allowlist and global mode) ``a`` and ``b`` define differently."""
    ra, rb = _rules(a), _rules(b)
    changes: list[RuleChange] = []
    for name in sorted(ra.keys() | rb.keys()):
        before, after = ra.get(name), rb.get(name)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        wrap_b = before if isinstance(before, dict) or before is None else {"value": before}
        wrap_a = after if isinstance(after, dict) or after is None else {"value": after}
        changes.append(RuleChange(name, change, wrap_b, wrap_a))
    return changes


@dataclass(frozen=True, slots=True)
class CoverageShift:
    """A namespace, service account or image that falls to another rule under ``b``."""

    before: Covered
    after: Covered

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.before.kind,
            "name": self.before.name,
            "ruleBefore": self.before.rule,
            "ruleAfter": self.after.rule,
            "specificBefore": self.before.specific,
            "specificAfter": self.after.specific,
        }


def coverage_shifts(a: CoverageReport, b: CoverageReport) -> list[CoverageShift]:
    """The items of two coverage reports (of the same subjects) whose rule differs."""
    after = {(i.kind, i.name): i for i in b.items}
    return [
        CoverageShift(i, after[(i.kind, i.name)])
        for i in a.items
        if (i.kind, i.name) in after and after[(i.kind, i.name)].rule != i.rule
    ]


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """Counts of one replay: how many cases were judged, and how many changed outcome."""

    judged: int = 0
    changed: int = 0
    by_transition: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"judged": self.judged, "changed": self.changed, "byTransition": self.by_transition}


def summarise(judged: int, changes: Sequence[OutcomeChange]) -> ReplaySummary:
    counts: dict[str, int] = {}
    for c in changes:
        key = f"{c.before}->{c.after}"
        counts[key] = counts.get(key, 0) + 1
    return ReplaySummary(judged, len(changes), dict(sorted(counts.items())))
