"""Images are found in every workload kind, in real kubectl-made objects."""

import json
from pathlib import Path

import pytest

from chainproof.domain.workloads import workload_from_object
from chainproof.errors import InvalidArgument

FIXTURES = Path(__file__).parents[2] / "fixtures" / "k8s"
SEED = "gcr.io/hightowerlabs/payment@sha256:aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("pod.json", "Pod"),
        ("deployment.json", "Deployment"),
        ("replicaset.json", "ReplicaSet"),
        ("statefulset.json", "StatefulSet"),
        ("daemonset.json", "DaemonSet"),
        ("replicationcontroller.json", "ReplicationController"),
    ],
)
def test_every_kind_yields_its_image(fixture: str, kind: str) -> None:
    w = workload_from_object(load(fixture), namespace="prod")
    assert w.kind == kind
    assert [i.image for i in w.images] == [SEED]
    assert w.service_account == "default"


def test_job_and_cronjob() -> None:
    assert workload_from_object(load("job.json")).images[0].image.startswith("gcr.io/x/migrate@")
    assert workload_from_object(load("cronjob.json")).images[0].image == "gcr.io/x/nightly:v1"


def test_init_and_ephemeral_containers_count() -> None:
    w = workload_from_object(load("pod-init-ephemeral.json"))
    assert [i.location for i in w.images] == [
        "initContainers[0] (init)",
        "containers[0] (payment)",
        "ephemeralContainers[0] (debug)",
    ]


def test_namespace_service_account_and_breakglass_from_template() -> None:
    obj = load("deployment.json")
    obj["spec"]["template"]["spec"]["serviceAccountName"] = "payments"
    obj["spec"]["template"]["metadata"]["annotations"] = {
        "alpha.image-policy.k8s.io/break-glass": "true"
    }
    w = workload_from_object(obj, namespace="prod")
    assert (w.namespace, w.service_account, w.breakglass) == ("prod", "payments", True)
    obj["spec"]["template"]["metadata"]["annotations"] = {"kritis.grafeas.io/breakglass": "false"}
    assert not workload_from_object(obj).breakglass


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (lambda o: o.update(kind="Service"), "carries no pod spec"),
        (lambda o: o["spec"].pop("template"), "no object at spec.template"),
        (lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("image"), "image is missing"),
        (lambda o: o["spec"]["template"]["spec"].update(containers=[]), "has no containers"),
        (lambda o: o["spec"]["template"]["spec"].update(containers="x"), "must be a list"),
    ],
)
def test_malformed_objects_are_refused(mutate, says: str) -> None:
    obj = load("deployment.json")
    mutate(obj)
    with pytest.raises(InvalidArgument, match=says):
        workload_from_object(obj)


def test_image_pull_secrets_are_read_from_the_pod_spec_or_template() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "app"}],
            "imagePullSecrets": [{"name": "regcred"}, {"name": "other"}, {"name": "regcred"}],
        },
    }
    assert workload_from_object(pod).image_pull_secrets == ("regcred", "other")
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": pod["spec"]}},
    }
    assert workload_from_object(deployment).image_pull_secrets == ("regcred", "other")
    del pod["spec"]["imagePullSecrets"]
    assert workload_from_object(pod).image_pull_secrets == ()
    for bad in ({"nom": "x"}, {"name": "../x"}, "regcred"):
        pod["spec"]["imagePullSecrets"] = [bad]
        with pytest.raises(InvalidArgument, match=r"imagePullSecrets\[0\]\.name"):
            workload_from_object(pod)
