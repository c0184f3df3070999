"""The mutating webhook pins tags to digests from a real registry (docker-registry + skopeo)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
import pytest

from chainproof.domain.webhook_config import webhook_configuration
from integration.test_webhook_support import admission_review, load_fixture, pod_spec, with_images
from live import live_server


def apply_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace on object members and list indexes (all the webhook emits)."""
    out = copy.deepcopy(obj)
    for op in ops:
        assert op["op"] in ("add", "replace")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        here: Any = out
        for part in parts[:-1]:
            here = here[int(part)] if isinstance(here, list) else here[part]
        last = parts[-1]
        if isinstance(here, list):
            here[int(last)] = op["value"]
        else:
            if op["op"] == "replace":
                assert last in here, op
            here[last] = op["value"]
    return out


def mutate(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/webhook/mutate?timeout=10s", json=body)
    assert r.status_code == 200, r.text
    response: dict[str, Any] = r.json()["response"]
    assert response["uid"] == body["request"]["uid"]
    return response


@pytest.fixture(scope="module")
def pushed(oci_registry):
    return {
        "web": oci_registry.push_umoci_image("mutate/web", "1.0", label="web"),
        "side": oci_registry.push_umoci_image("mutate/side", "2.0", label="side"),
    }


@pytest.fixture(scope="module")
def client(oci_registry):
    registry = {"resolve_tags": True, "hosts": [{"host": oci_registry.host, "insecure": True}]}
    with (
        live_server(grpc_enabled=False, registry=registry) as srv,
        httpx.Client(base_url=srv.base_url, timeout=20) as c,
    ):
        yield c


def test_pod_tags_are_pinned_to_the_digests_the_registry_serves(client, oci_registry, pushed):
    web, side = f"{oci_registry.host}/mutate/web:1.0", f"{oci_registry.host}/mutate/side:2.0"
    pod = with_images(load_fixture("pod.json"), web, side)
    response = mutate(client, admission_review(pod))
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    images = [c["image"] for c in pod_spec(patched)["containers"]]
    assert images == [f"{web}@{pushed['web']}", f"{side}@{pushed['side']}"]
    record = json.loads(patched["metadata"]["annotations"]["chainproof.dev/resolved-images"])
    assert record["containers[0] (c0)"] == f"{web} -> {web}@{pushed['web']}"


def test_deployment_template_is_pinned_and_annotated(client, oci_registry, pushed):
    web = f"{oci_registry.host}/mutate/web:1.0"
    deployment = with_images(load_fixture("deployment.json"), web)
    response = mutate(client, admission_review(deployment))
    patched = apply_patch(deployment, json.loads(base64.b64decode(response["patch"])))
    assert pod_spec(patched)["containers"][0]["image"] == f"{web}@{pushed['web']}"
    assert (
        "chainproof.dev/resolved-images" in patched["spec"]["template"]["metadata"]["annotations"]
    )


def test_digests_deletes_and_subresources_are_left_alone(client, oci_registry, pushed):
    pinned = f"{oci_registry.host}/mutate/web@{pushed['web']}"
    response = mutate(client, admission_review(with_images(load_fixture("pod.json"), pinned)))
    assert "patch" not in response
    tagged = with_images(load_fixture("pod.json"), f"{oci_registry.host}/mutate/web:1.0")
    assert "patch" not in mutate(client, admission_review(tagged, operation="DELETE"))
    assert "patch" not in mutate(client, admission_review(tagged, sub_resource="status"))


def test_a_tag_that_cannot_be_resolved_is_denied_naming_the_registry(client, oci_registry):
    missing = with_images(load_fixture("pod.json"), f"{oci_registry.host}/mutate/web:nope")
    response = mutate(client, admission_review(missing))
    assert response["allowed"] is False
    assert f"registry {oci_registry.host}" in response["status"]["message"]
    down = with_images(load_fixture("pod.json"), "127.0.0.1:9/mutate/web:1.0")
    response = mutate(client, admission_review(down))
    assert response["allowed"] is False
    assert "registry 127.0.0.1:9" in response["status"]["message"]


def test_resolution_off_patches_nothing(oci_registry, pushed):
    tagged = with_images(load_fixture("pod.json"), f"{oci_registry.host}/mutate/web:1.0")
    with live_server(grpc_enabled=False) as srv, httpx.Client(base_url=srv.base_url) as c:
        response = mutate(c, admission_review(tagged))
        validating = c.post("/webhook/admission?timeout=10s", json=admission_review(tagged))
    assert response == {"uid": response["uid"], "allowed": True}
    assert validating.json()["response"]["allowed"] is False  # tags stay denied


def test_mutating_configuration():
    config = webhook_configuration(
        service="chainproof", namespace="chainproof", ca_bundle=b"pem", mutating=True
    )
    assert config["kind"] == "MutatingWebhookConfiguration"
    hook = config["webhooks"][0]
    assert hook["clientConfig"]["service"]["path"] == "/webhook/mutate"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
