"""Rule selection: service account, then namespace, then cluster, then the default."""

from __future__ import annotations

import pytest

from chainproof.policy import select_rule
from unit.policy.policy_factories import policy, rule

P = policy(
    rule("ALWAYS_DENY"),
    clusterAdmissionRules={"us-central1-a.prod": rule("ALWAYS_ALLOW")},
    kubernetesNamespaceAdmissionRules={"payments": rule("ALWAYS_ALLOW")},
    kubernetesServiceAccountAdmissionRules={"payments:deployer": rule("ALWAYS_ALLOW")},
)


@pytest.mark.parametrize(
    ("cluster", "namespace", "service_account", "scope", "key"),
    [
        ("us-central1-a.prod", "payments", "deployer", "service-account", "payments:deployer"),
        (
            "us-central1-a.prod",
            "payments",
            "system:serviceaccount:payments:deployer",
            "service-account",
            "payments:deployer",
        ),
        (
            "us-central1-a.prod",
            "payments",
            "payments:deployer",
            "service-account",
            "payments:deployer",
        ),
        ("us-central1-a.prod", "payments", "other", "namespace", "payments"),
        (None, "payments", None, "namespace", "payments"),
        ("us-central1-a.prod", "web", "deployer", "cluster", "us-central1-a.prod"),
        ("us-central1-a.prod", None, None, "cluster", "us-central1-a.prod"),
        ("europe-west1.prod", "web", "deployer", "default", None),
        (None, None, None, "default", None),
        # a service-account key only counts within its own namespace
        (None, "web", "deployer", "default", None),
    ],
)
def test_rule_precedence(
    cluster: str | None,
    namespace: str | None,
    service_account: str | None,
    scope: str,
    key: str | None,
) -> None:
    selected = select_rule(P, cluster=cluster, namespace=namespace, service_account=service_account)
    assert (selected.scope, selected.key) == (scope, key)
    assert selected.why  # always says why
