"""The admission webhook configurations the Kubernetes API server is given, as data.

:func:`webhook_configuration` renders the ValidatingWebhookConfiguration that sends every
resource carrying a pod spec (:data:`WORKLOAD_RULES`) to chainproof's ``/webhook/admission``,
or the MutatingWebhookConfiguration that pins tags to digests at ``/webhook/mutate``; never
for kube-system or chainproof's own namespace. :func:`kubernetes_name` and
:func:`service_dns_names` are the Service naming rules the serving certificate
(:mod:`chainproof.crypto.certificates`) follows too. Pure: a mapping out, printed by the CLI.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from chainproof.errors import InvalidArgument

WEBHOOK_PATH = "/webhook/admission"
MUTATING_PATH = "/webhook/mutate"

#: What the webhook judges: every resource that carries a pod spec, per API group.
WORKLOAD_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # pods/ephemeralcontainers is how `kubectl debug` adds a container to a running pod.
    ("", "v1", ("pods", "pods/ephemeralcontainers", "replicationcontrollers")),
    ("apps", "v1", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", "v1", ("jobs", "cronjobs")),
)


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a Service answers to inside the cluster, shortest first."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def kubernetes_name(value: str, what: str) -> str:
    """``value`` as a Service or namespace name must be: one lower-case DNS label."""
    label = value.strip()
    if not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label):
        raise InvalidArgument(
            f"{what} {value!r} is not a Kubernetes name: expected lower-case letters, digits "
            "and '-', at most 63 characters (e.g. chainproof)"
        )
    if label != label.lower() or label.startswith("-") or label.endswith("-"):
        raise InvalidArgument(f"{what} {value!r} must be lower case and not start or end in '-'")
    return label


def webhook_configuration(
    *,
    service: str,
    namespace: str,
    ca_bundle: bytes,
    name: str = "chainproof",
    failure_policy: Literal["Fail", "Ignore"] = "Fail",
    timeout_seconds: int = 5,
    side_effects: Literal["None", "NoneOnDryRun"] = "NoneOnDryRun",
    port: int = 443,
    path: str = WEBHOOK_PATH,
    exclude_namespaces: tuple[str, ...] = (),
    mutating: bool = False,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1) as a mapping, or
    with ``mutating`` the MutatingWebhookConfiguration that pins tags to digests."""
    service = kubernetes_name(service, "service name")
    namespace = kubernetes_name(namespace, "namespace")
    if not 1 <= timeout_seconds <= 30:
        raise InvalidArgument(
            f"--timeout-seconds must be between 1 and 30 (the API server's limit), "
            f"got {timeout_seconds}"
        )
    skipped = list(dict.fromkeys(("kube-system", namespace, *exclude_namespaces)))
    rules = [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": ["CREATE", "UPDATE"],
            "resources": list(resources),
            "scope": "Namespaced",
        }
        for group, version, resources in WORKLOAD_RULES
    ]
    if mutating and path == WEBHOOK_PATH:
        path = MUTATING_PATH
    webhook: dict[str, Any] = {
        "name": "resolve.chainproof.dev" if mutating else "admission.chainproof.dev",
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {
            "service": {
                "name": service,
                "namespace": namespace,
                "path": path,
                "port": port,
            },
            "caBundle": base64.b64encode(ca_bundle).decode(),
        },
        "rules": rules,
        # Never let chainproof judge its own pods (it could not start to admit
        # itself) or the control plane's.
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": skipped,
                }
            ]
        },
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "sideEffects": side_effects,
        "timeoutSeconds": timeout_seconds,
    }
    if mutating:
        # Pinning is idempotent, and a later mutating webhook (a sidecar injector) may add a
        # container with a tag: ask to be called again after it.
        webhook["reinvocationPolicy"] = "IfNeeded"
        webhook["sideEffects"] = "None"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration",
        "metadata": {
            "name": f"{name}-resolve" if mutating else name,
            "labels": {"app.kubernetes.io/name": "chainproof"},
        },
        "webhooks": [webhook],
    }
