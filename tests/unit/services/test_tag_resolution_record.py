"""The decision record keeps what the mutating webhook resolved (from its annotation)."""

from __future__ import annotations

import json

from chainproof.domain.image_patch import RESOLVED_ANNOTATION, image_pointers, pin_patch
from chainproof.domain.workloads import workload_from_object
from chainproof.policy import Outcome
from chainproof.policy.decision import Decision
from chainproof.services.judge.admission import _tag_resolutions
from chainproof.services.judge.decision_log import DecisionEntry, decision_record
from unit.services.judge_fixtures import NOW

DIGEST = "sha256:" + "e" * 64


def test_resolutions_travel_from_the_patch_to_the_decision_record():
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    ops = pin_patch(image_pointers(pod, "Pod"), {"nginx": DIGEST}, annotations_present=False)
    assert ops[0] == {
        "op": "replace",
        "path": "/spec/containers/0/image",
        "value": f"nginx:latest@{DIGEST}",
    }
    pod["metadata"]["annotations"] = ops[1]["value"]
    pod["spec"]["containers"][0]["image"] = ops[0]["value"]
    resolutions = _tag_resolutions(workload_from_object(pod))
    assert resolutions == {"containers[0] (web)": f"nginx -> nginx:latest@{DIGEST}"}
    record = decision_record(
        DecisionEntry("app", Decision((), Outcome.ALLOWED, NOW), tag_resolutions=resolutions), NOW
    )
    assert record.data["tagResolutions"] == resolutions


def test_garbage_annotation_is_ignored():
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {RESOLVED_ANNOTATION: "{not json"}},
        "spec": {"containers": [{"name": "web", "image": "nginx@" + DIGEST}]},
    }
    assert _tag_resolutions(workload_from_object(pod)) == {}
    pod["metadata"]["annotations"][RESOLVED_ANNOTATION] = json.dumps(["x"])
    assert _tag_resolutions(workload_from_object(pod)) == {}
