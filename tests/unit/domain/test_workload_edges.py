"""Every image a node would pull is judged, and names that select rules are valid
Kubernetes names (issue 9 items 2 and 7)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chainproof.domain.workloads import workload_from_object
from chainproof.errors import InvalidArgument

FIXTURES = Path(__file__).parents[2] / "fixtures" / "k8s"
UNVETTED = "docker.io/mallory/tools@sha256:" + "e" * 64


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def with_image_volume(obj: dict[str, Any], spec_path: tuple[str, ...]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    spec = obj
    for key in spec_path:
        spec = spec[key]
    spec["volumes"] = [
        {"name": "config", "emptyDir": {}},
        {"name": "tools", "image": {"reference": UNVETTED, "pullPolicy": "IfNotPresent"}},
    ]
    return obj


@pytest.mark.parametrize(
    ("fixture", "spec_path"),
    [
        ("pod.json", ("spec",)),
        ("deployment.json", ("spec", "template", "spec")),
        ("cronjob.json", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
)
def test_image_volumes_are_judged_like_containers(fixture: str, spec_path: tuple[str, ...]) -> None:
    w = workload_from_object(with_image_volume(load(fixture), spec_path))
    assert UNVETTED in [i.image for i in w.images]
    assert [i.location for i in w.images if i.image == UNVETTED] == ["volumes[1] (tools)"]


@pytest.mark.parametrize("source", [{}, {"reference": ""}, {"reference": 7}, "x"])
def test_an_image_volume_without_a_reference_cannot_be_read(source: Any) -> None:
    pod = load("pod.json")
    pod["spec"]["volumes"] = [{"name": "v", "image": source}]
    with pytest.raises(InvalidArgument, match=r"volumes\[0\]\.image\.reference"):
        workload_from_object(pod)


@pytest.mark.parametrize(
    "name", ["Default", "a/b", "prod:deployer", "x" * 254, "-a", "a\x00b", "", 7]
)
def test_service_account_names_must_be_kubernetes_names(name: Any) -> None:
    pod = load("pod.json")
    pod["spec"]["serviceAccountName"] = name
    if name == "":
        # An empty name means "default" to Kubernetes.
        assert workload_from_object(pod).service_account == "default"
        return
    with pytest.raises(InvalidArgument, match="not a valid Kubernetes name"):
        workload_from_object(pod)


def test_valid_service_account_names_pass() -> None:
    pod = load("pod.json")
    pod["spec"]["serviceAccountName"] = "ci.deployer-2"
    assert workload_from_object(pod).service_account == "ci.deployer-2"
