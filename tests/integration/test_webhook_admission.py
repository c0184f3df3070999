"""The admission webhook against a live server, on kubectl-made objects (tests/fixtures/k8s)
wrapped in AdmissionReviews as the API server sends them.

The judge is configured over REST: an attestor with a PKIX ECDSA key, simple-signing
attestations signed with it, DISCOVERY and VULNERABILITY occurrences, and a policy requiring
the attestation and a vulnerability threshold (see test_webhook_support).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from integration.test_webhook_support import (
    ALLOWLISTED_TAG,
    GOOD,
    GOOD_SIDECAR,
    KINDS,
    TAGGED,
    UNSIGNED,
    VULNERABLE,
    Judge,
    admission_review,
    digest,
    load_fixture,
    poll,
    review,
    rfc3339,
    setup_standard_judge,
    with_images,
)
from live import LiveServer, live_server

PROJECT = "prod"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False, admission={"project": PROJECT}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def judge(client: httpx.Client) -> Judge:
    return setup_standard_judge(client, PROJECT)


def _pod(*images: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    pod = with_images(load_fixture("pod.json"), *images)
    pod["metadata"]["name"] = f"p-{uuid.uuid4().hex[:8]}"
    if annotations:
        pod["metadata"]["annotations"] = annotations
    return pod


# ----------------------------------------------------------------------------- every kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_admitted_with_evidence(kind: str, judge: Judge) -> None:
    obj = with_images(load_fixture(KINDS[kind]), GOOD, GOOD_SIDECAR)
    assert obj["kind"] == kind
    response = review(judge.client, admission_review(obj))
    assert response["allowed"] is True, response
    assert response["auditAnnotations"]["outcome"] == "allowed"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_denied_without_evidence(kind: str, judge: Judge) -> None:
    obj = with_images(load_fixture(KINDS[kind]), UNSIGNED)
    response = review(judge.client, admission_review(obj))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert f"no attestation by projects/{PROJECT}/attestors/qa for {UNSIGNED}" in message
    assert kind in message


def test_unmodified_fixtures_are_judged_as_kubectl_printed_them(judge: Judge) -> None:
    # As kubectl printed them: the seed image (never attested here) and a tag-only CronJob.
    deployment = review(judge.client, admission_review(load_fixture("deployment.json")))
    assert deployment["allowed"] is False
    assert "gcr.io/hightowerlabs/payment@sha256:aba48d60" in deployment["status"]["message"]
    cron = review(judge.client, admission_review(load_fixture("cronjob.json")))
    assert cron["allowed"] is False
    assert "gcr.io/x/nightly:v1 has no digest" in cron["status"]["message"]


def test_v1beta1_review_gets_a_v1beta1_answer(judge: Judge) -> None:
    body = admission_review(_pod(GOOD), version="admission.k8s.io/v1beta1")
    assert review(judge.client, body)["allowed"] is True  # review() checks apiVersion + uid
    body = admission_review(_pod(UNSIGNED), version="admission.k8s.io/v1beta1")
    assert review(judge.client, body)["allowed"] is False


# ----------------------------------------------------------------------------- containers


def test_init_and_ephemeral_containers_are_judged(judge: Judge) -> None:
    fixture = load_fixture("pod-init-ephemeral.json")
    fixture["spec"]["containers"][0]["image"] = GOOD
    # As printed: attested init image, allowlisted busybox debug container.
    assert review(judge.client, admission_review(fixture))["allowed"] is True

    bad_init = load_fixture("pod-init-ephemeral.json")
    bad_init["spec"]["containers"][0]["image"] = GOOD
    bad_init["spec"]["initContainers"][0]["image"] = UNSIGNED
    response = review(judge.client, admission_review(bad_init))
    assert response["allowed"] is False
    assert "initContainers[0] (init)" in response["status"]["message"]

    bad_debug = load_fixture("pod-init-ephemeral.json")
    bad_debug["spec"]["containers"][0]["image"] = GOOD
    bad_debug["spec"]["ephemeralContainers"][0]["image"] = TAGGED
    # kubectl debug adds it through the ephemeralcontainers subresource, as an UPDATE.
    body = admission_review(bad_debug, operation="UPDATE", sub_resource="ephemeralcontainers")
    response = review(judge.client, body)
    assert response["allowed"] is False
    assert "ephemeralContainers[0] (debug)" in response["status"]["message"]
    assert f"{TAGGED.replace(':1.0', '')}@sha256:<digest>" in response["status"]["message"]


def test_multi_container_pod_names_the_failing_image(judge: Judge) -> None:
    response = review(judge.client, admission_review(_pod(GOOD, VULNERABLE, GOOD_SIDECAR)))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "containers[1] (c1)" in message
    assert VULNERABLE in message
    assert "CVE-2024-9999" in message and "maximumFixableSeverity MEDIUM" in message
    assert "containers[0]" not in message and "containers[2]" not in message


def test_tag_only_images_are_denied_with_how_to_pin_unless_allowlisted(judge: Judge) -> None:
    response = review(judge.client, admission_review(_pod(TAGGED)))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "gcr.io/acme/payment:1.0 has no digest" in message
    assert "gcr.io/acme/payment@sha256:<digest>" in message
    assert review(judge.client, admission_review(_pod(ALLOWLISTED_TAG)))["allowed"] is True


# ----------------------------------------------------------------------------- operations


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_not_judged(operation: str, judge: Judge) -> None:
    body = admission_review(_pod(UNSIGNED), operation=operation)
    body["request"]["object"] = None
    body["request"]["oldObject"] = _pod(UNSIGNED)
    response = review(judge.client, body)
    assert response == {"uid": body["request"]["uid"], "allowed": True}


def test_update_is_judged(judge: Judge) -> None:
    response = review(judge.client, admission_review(_pod(UNSIGNED), operation="UPDATE"))
    assert response["allowed"] is False


def test_objects_being_deleted_and_other_kinds_are_not_judged(judge: Judge) -> None:
    dying = _pod(UNSIGNED)
    dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert review(judge.client, admission_review(dying, operation="UPDATE"))["allowed"] is True
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    assert review(judge.client, admission_review(config_map))["allowed"] is True
    status = admission_review(_pod(UNSIGNED), operation="UPDATE", sub_resource="status")
    assert review(judge.client, status)["allowed"] is True


# ----------------------------------------------------------------------------- breakglass, dry run


@pytest.mark.parametrize(
    "annotation", ["alpha.image-policy.k8s.io/break-glass", "kritis.grafeas.io/breakglass"]
)
def test_breakglass_admits_and_is_recorded(annotation: str, judge: Judge) -> None:
    pod = _pod(UNSIGNED, annotations={annotation: "true"})
    body = admission_review(pod, namespace="breakglass")
    response = review(judge.client, body)
    assert response["allowed"] is True
    assert response["auditAnnotations"]["outcome"] == "breakglass"
    assert response["warnings"][0].startswith("breakglass: admitted")
    uid = body["request"]["uid"]
    entries = poll(
        lambda: judge.decisions(namespace="breakglass", outcome="breakglass"),
        lambda items: any(d["requestUid"] == uid for d in items),
    )
    entry = next(d for d in entries if d["requestUid"] == uid)
    assert entry["breakglass"] is True
    assert entry["workload"] == f"Pod/{pod['metadata']['name']}"
    assert entry["decision"]["outcome"] == "denied"  # what the policy said, kept for audit


def test_breakglass_on_a_template_annotation(judge: Judge) -> None:
    deployment = with_images(load_fixture("deployment.json"), UNSIGNED)
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "kritis.grafeas.io/breakglass": "true"
    }
    assert review(judge.client, admission_review(deployment))["allowed"] is True
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "kritis.grafeas.io/breakglass": "false"
    }
    assert review(judge.client, admission_review(deployment))["allowed"] is False


def test_dry_run_enforcement_admits_with_warnings(judge: Judge) -> None:
    body = admission_review(_pod(GOOD, UNSIGNED), namespace="audit")
    response = review(judge.client, body)
    assert response["allowed"] is True
    assert response["auditAnnotations"]["outcome"] == "dry-run-would-deny"
    warnings = response["warnings"]
    assert warnings[0].startswith("dry run: the policy would deny")
    assert any("containers[1] (c1)" in w and "no attestation" in w for w in warnings)
    assert all(len(w) <= 256 for w in warnings)
    assert sum(len(w) for w in warnings) <= 4096
    uid = body["request"]["uid"]
    entries = poll(
        lambda: judge.decisions(namespace="audit", outcome="dry-run-would-deny"),
        lambda items: any(d["requestUid"] == uid for d in items),
    )
    assert any(d["requestUid"] == uid for d in entries)


def test_many_failures_keep_warnings_and_message_within_kubernetes_limits(judge: Judge) -> None:
    images = [f"gcr.io/acme/many{i}@{digest(format(i % 16, 'x'))}" for i in range(40)]
    response = review(judge.client, admission_review(_pod(*images), namespace="audit"))
    assert response["allowed"] is True
    assert all(len(w) <= 256 and "\n" not in w for w in response["warnings"])
    assert sum(len(w) for w in response["warnings"]) <= 4096
    denied = review(judge.client, admission_review(_pod(*images)))
    assert len(denied["status"]["message"]) <= 4000
    assert "chainproof decisions list" in denied["status"]["message"]


# ----------------------------------------------------------------------------- side effects


def test_deployment_occurrences_only_for_admitted_non_dry_run_requests(judge: Judge) -> None:
    fresh = f"gcr.io/acme/fresh@{digest('f')}"
    judge.attest("qa", fresh)
    judge.scan(fresh, {"CVE-2024-1111": "LOW"})

    def for_fresh() -> list[dict[str, Any]]:
        return [o for o in judge.deployments() if "gcr.io/acme/fresh@" in o["resourceUri"]]

    dry = admission_review(_pod(fresh), dry_run=True)
    assert review(judge.client, dry)["allowed"] is True
    never = f"gcr.io/acme/never-signed@{digest('9')}"
    denied = admission_review(_pod(fresh, never))
    assert review(judge.client, denied)["allowed"] is False
    assert for_fresh() == []  # neither wrote one (checked again after the real admission)

    pod = _pod(fresh)
    assert review(judge.client, admission_review(pod))["allowed"] is True
    found = poll(for_fresh, lambda items: len(items) == 1)
    assert len(found) == 1
    occurrence = found[0]
    assert occurrence["kind"] == "DEPLOYMENT"
    assert occurrence["deployment"]["config"] == f"Pod/default/{pod['metadata']['name']}"
    assert occurrence["deployment"]["resourceUri"] == [fresh]
    assert all(never not in o["resourceUri"] for o in judge.deployments())

    uid = dry["request"]["uid"]
    logged = poll(
        lambda: judge.decisions(image=fresh), lambda ds: any(d["requestUid"] == uid for d in ds)
    )
    assert next(d for d in logged if d["requestUid"] == uid)["dryRun"] is True


# ----------------------------------------------------------------------------- decision log


def test_decision_log_is_queryable_by_image_namespace_outcome_and_time(judge: Judge) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    ns = f"log-{uuid.uuid4().hex[:6]}"
    uids = []
    for images in ((GOOD,), (UNSIGNED,), (GOOD, VULNERABLE)):
        body = admission_review(_pod(*images), namespace=ns)
        uids.append(body["request"]["uid"])
        review(judge.client, body)

    entries = poll(lambda: judge.decisions(namespace=ns), lambda items: len(items) == 3)
    assert sorted(d["requestUid"] for d in entries) == sorted(uids)
    assert {d["outcome"] for d in entries} == {"allowed", "denied"}

    denied = judge.decisions(namespace=ns, outcome="denied")
    assert sorted(d["requestUid"] for d in denied) == sorted(uids[1:])
    by_image = judge.decisions(namespace=ns, image="https://" + VULNERABLE)
    assert [d["requestUid"] for d in by_image] == [uids[2]]
    assert VULNERABLE in by_image[0]["images"]
    assert judge.decisions(namespace=ns, since=rfc3339(start))
    later = rfc3339(datetime.now(UTC) + timedelta(minutes=1))
    assert judge.decisions(namespace=ns, since=later) == []
    assert len(judge.decisions(namespace=ns, until=later)) == 3
    entry = next(d for d in entries if d["requestUid"] == uids[1])
    assert entry["cluster"] == "" and entry["operation"] == "CREATE"
    assert entry["decision"]["policy"] == f"projects/{PROJECT}/policy"
    assert entry["decision"]["policyEtag"]
    assert "no attestation" in entry["message"]


# ----------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b"", "empty"),
        (b"[]", "must be a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}', "apiVersion"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "AdmissionReview"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",'
            b' "request": {"operation": "CREATE"}}',
            "uid",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",'
            b' "request": {"uid": "u", "operation": "CREATE", "kind": {"kind": "Pod"}}}',
            "request.object",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",'
            b' "request": {"uid": "u", "operation": "CREATE", "kind": "Pod"}}',
            "request.kind",
        ),
    ],
)
def test_malformed_reviews_get_400_with_the_reason(
    body: bytes, expected: str, judge: Judge
) -> None:
    r = judge.client.post(
        "/webhook/admission?timeout=10s",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert expected in r.json()["error"]["message"]


def test_unreadable_workload_is_denied_with_the_reason(judge: Judge) -> None:
    pod = _pod(GOOD)
    del pod["spec"]["containers"][0]["image"]
    body = admission_review(pod)
    response = review(judge.client, body)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert "containers[0].image is missing" in response["status"]["message"]
    uid = body["request"]["uid"]
    logged = poll(
        lambda: judge.decisions(outcome="error"),
        lambda ds: any(d["requestUid"] == uid for d in ds),
    )
    assert any(d["requestUid"] == uid for d in logged)
    # The server is fine afterwards.
    assert review(judge.client, admission_review(_pod(GOOD)))["allowed"] is True


# ----------------------------------------------------------------------------- ImageReview


def _image_review(*images: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "imagepolicy.k8s.io/v1alpha1",
        "kind": "ImageReview",
        "spec": {
            "containers": [{"image": i} for i in images],
            "annotations": annotations or {},
            "namespace": "default",
        },
    }


def test_image_review_allowed_and_denied(judge: Judge) -> None:
    r = judge.client.post("/webhook/imagepolicy", json=_image_review(GOOD, GOOD_SIDECAR))
    body = r.json()
    assert r.status_code == 200 and body["kind"] == "ImageReview"
    assert body["apiVersion"] == "imagepolicy.k8s.io/v1alpha1"
    assert body["status"]["allowed"] is True

    body = judge.client.post("/webhook/imagepolicy", json=_image_review(GOOD, UNSIGNED)).json()
    assert body["status"]["allowed"] is False
    assert (
        f"no attestation by projects/{PROJECT}/attestors/qa for {UNSIGNED}"
        in (body["status"]["reason"])
    )

    glass = _image_review(UNSIGNED, annotations={"alpha.image-policy.k8s.io/break-glass": "true"})
    body = judge.client.post("/webhook/imagepolicy", json=glass).json()
    assert body["status"]["allowed"] is True
    assert body["status"]["auditAnnotations"]["outcome"] == "breakglass"

    bad = judge.client.post("/webhook/imagepolicy", json={"kind": "ImageReview", "spec": {}})
    assert bad.status_code == 400
    assert "containers" in bad.json()["error"]["message"]
