"""policy/replay.py: outcome comparison, coverage and rule diff, pure, on real evaluations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chainproof.domain.bounds import parse_since
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, Evidence, evaluate, parse_policy
from chainproof.policy.replay import (
    ReplayCase,
    Subject,
    compare,
    coverage,
    coverage_shifts,
    rule_changes,
    summarise,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
IMAGE = "registry.example.com/app@sha256:" + "ab" * 32
ALLOW = {"evaluationMode": "ALWAYS_ALLOW", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
DENY = {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
DRY_DENY = {"evaluationMode": "ALWAYS_DENY", "enforcementMode": "DRYRUN_AUDIT_LOG_ONLY"}

A = parse_policy(
    {"defaultAdmissionRule": DENY, "kubernetesNamespaceAdmissionRules": {"web": ALLOW}}
)
B = parse_policy(
    {
        "defaultAdmissionRule": DENY,
        "kubernetesServiceAccountAdmissionRules": {"web:builder": DRY_DENY},
        "clusterAdmissionRules": {"eu-west1.prod": ALLOW},
        "admissionWhitelistPatterns": [{"namePattern": "registry.example.com/tools/*"}],
    }
)


def case(namespace: str, account: str = "", cluster: str = "", image: str = IMAGE) -> ReplayCase:
    return ReplayCase(
        "admission",
        "d1",
        AdmissionRequest((image,), cluster or None, namespace, account or None),
        "allowed",
    )


def judge(policy: object, c: ReplayCase):  # type: ignore[no-untyped-def]
    return evaluate(policy, c.request, Evidence(), NOW)  # type: ignore[arg-type]


def test_compare_reports_a_change_with_its_rules_and_reasons() -> None:
    c = case("web")
    change = compare(c, judge(A, c), judge(B, c))
    assert change is not None
    assert (change.before, change.after) == ("allowed", "denied")
    (image,) = change.images
    assert (image.rule_before, image.rule_after) == ("namespace[web]", "default")
    assert len(image.now_failing) == 1 and "denies every image" in image.now_failing[0]
    assert image.now_passing == ()
    back = compare(c, judge(B, c), judge(A, c))
    assert back is not None and back.images[0].now_passing == image.now_failing
    assert summarise(3, [change, back]).by_transition == {
        "allowed->denied": 1,
        "denied->allowed": 1,
    }


def test_compare_is_none_when_the_outcome_holds_and_dry_run_counts_as_its_own() -> None:
    c = case("other")
    assert compare(c, judge(A, c), judge(B, c)) is None  # denied by default in both
    dry = case("web", "builder")
    change = compare(dry, judge(A, dry), judge(B, dry))
    assert change is not None and change.after == "dry-run-would-deny"
    assert change.images[0].rule_after == "service-account[web:builder]"


def test_coverage_names_the_rule_each_falls_to() -> None:
    subjects = [
        Subject("", "web", "builder", IMAGE),
        Subject("", "web", "", "registry.example.com/tools/kubectl@sha256:" + "cd" * 32),
        Subject("eu-west1.prod", "batch", "worker", IMAGE),
        Subject("", "ops", "", "not a reference"),
    ]
    report = coverage(B, subjects)
    items = {(i.kind, i.name): i for i in report.items}
    assert items[("service-account", "web:builder")].rule == (
        "kubernetesServiceAccountAdmissionRules[web:builder]"
    )
    assert items[("service-account", "web:builder")].specific
    assert items[("namespace", "web")].rule == "defaultAdmissionRule"
    assert not items[("namespace", "web")].specific
    assert items[("namespace", "batch")].rule == "clusterAdmissionRules[eu-west1.prod]"
    assert not items[("namespace", "batch")].specific  # a cluster rule is not specific
    tools = items[("image", "registry.example.com/tools/kubectl@sha256:" + "cd" * 32)]
    assert tools.scope == "allowlist" and tools.specific
    # Seen under a service-account rule and under a cluster rule: the weaker one decides.
    app = items[("image", IMAGE)]
    assert app.rule == "clusterAdmissionRules[eu-west1.prod]" and app.where == ("batch", "web")
    assert items[("image", "not a reference")].scope == "invalid-image"
    uncovered = {(i.kind, i.name) for i in report.uncovered}
    assert ("service-account", "web:builder") not in uncovered and ("namespace", "web") in uncovered
    assert report.to_dict()["uncovered"] == len(report.uncovered) < report.to_dict()["total"]


def test_rule_changes_and_shifts() -> None:
    changes = {(c.rule, c.change) for c in rule_changes(A, B)}
    assert changes == {
        ("kubernetesNamespaceAdmissionRules[web]", "removed"),
        ("kubernetesServiceAccountAdmissionRules[web:builder]", "added"),
        ("clusterAdmissionRules[eu-west1.prod]", "added"),
        ("admissionWhitelistPatterns", "changed"),
    }
    assert rule_changes(A, A) == []
    subjects = [Subject("", "web", "builder", IMAGE)]
    shifts = coverage_shifts(coverage(A, subjects), coverage(B, subjects))
    names = {(s.before.kind, s.before.name): s.after.rule for s in shifts}
    assert names[("namespace", "web")] == "defaultAdmissionRule"
    assert names[("image", IMAGE)] == "kubernetesServiceAccountAdmissionRules[web:builder]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 10, 25, tzinfo=UTC)),
        ("36h", datetime(2026, 10, 30, 12, tzinfo=UTC)),
        ("90s", datetime(2026, 10, 31, 23, 58, 30, tzinfo=UTC)),
        ("2026-10-01T00:00:00Z", datetime(2026, 10, 1, tzinfo=UTC)),
    ],
)
def test_since_ages_and_times(text: str, expected: datetime) -> None:
    assert parse_since(text, "since", NOW) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "-7d", "0d", "7w", "367d", "soon", "7d;drop"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InvalidArgument, match="since"):
        parse_since(text, "since", NOW)
