"""A bounded fuzz run of the parsers that read outside input (issue 9, "Done when"): JSON
bodies, signed JSON payloads, DSSE envelopes, PGP armor, filters, workloads, policy and attestor
documents, and AdmissionReview envelopes (read, then planned: judged, admitted or refused).

Each parser may refuse its input only with InvalidArgument (a 400 with a reason); any other
exception is a crash that the server would have turned into a 500, or a review that failed
for the wrong reason. Examples are bounded (see ``_RUN``) so the run fits in ``make test``;
``HYPOTHESIS_FUZZ_EXAMPLES`` raises the count for a longer campaign.
"""

from __future__ import annotations

import base64
import contextlib
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainproof.crypto.dsse import DsseEnvelope
from chainproof.crypto.pgp import PgpPublicKey
from chainproof.domain.admission_review import (
    JUDGED_OPERATIONS,
    Admit,
    JudgeWorkload,
    plan_review,
    read_review,
)
from chainproof.domain.filters import Target, parse_filter
from chainproof.domain.jsontext import parse_request_json, parse_signed_json
from chainproof.domain.workloads import SUPPORTED_KINDS, workload_from_object
from chainproof.errors import InvalidArgument
from chainproof.policy.attestors import parse_attestor
from chainproof.policy.binauthz import parse_policy

_EXAMPLES = int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "150"))
_RUN = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=()) | st.sampled_from("\x00\ud800"),
    max_size=40,
)
_keys = (
    st.sampled_from(
        [
            "kind",
            "metadata",
            "spec",
            "template",
            "containers",
            "initContainers",
            "image",
            "volumes",
            "reference",
            "name",
            "namespace",
            "serviceAccountName",
            "annotations",
            "payload",
            "payloadType",
            "signatures",
            "sig",
            "keyid",
            "defaultAdmissionRule",
            "evaluationMode",
            "enforcementMode",
            "requireAttestationsBy",
            "userOwnedGrafeasNote",
            "noteReference",
            "publicKeys",
            "jobTemplate",
            "ephemeralContainers",
        ]
    )
    | _text
)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=30,
)
_bytes = st.binary(max_size=300) | _text.map(lambda t: t.encode("utf-8", "surrogatepass"))
_json_text = st.one_of(
    _bytes,
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 3000)),
    st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, st.integers(0, 3000)),
    st.sampled_from([b"NaN", b"1e999", b'"\\ud800"', b'{"a":1,"a":2}', b"9" * 5000]),
)


def _only_invalid_argument(call: Any, *args: Any) -> None:
    with contextlib.suppress(InvalidArgument):
        call(*args)


@_RUN
@given(_json_text)
def test_request_json(raw: bytes) -> None:
    _only_invalid_argument(parse_request_json, raw)


@_RUN
@given(_json_text)
def test_signed_json(raw: bytes) -> None:
    _only_invalid_argument(parse_signed_json, raw, "payload")


@_RUN
@given(
    st.one_of(
        _json,
        st.fixed_dictionaries(
            {
                "payloadType": _scalars,
                "payload": _scalars
                | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
                "signatures": st.lists(st.dictionaries(_keys, _scalars, max_size=3), max_size=3)
                | _scalars,
            }
        ),
    )
)
def test_dsse_envelope(doc: Any) -> None:
    _only_invalid_argument(DsseEnvelope.from_json, doc if isinstance(doc, dict) else {"x": doc})


@_RUN
@given(_bytes)
def test_dsse_envelope_text(raw: bytes) -> None:
    _only_invalid_argument(DsseEnvelope.from_json, raw)


@_RUN
@given(
    st.one_of(
        _bytes,
        _bytes.map(
            lambda b: (
                b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
                + b
                + b"\n-----END PGP PUBLIC KEY BLOCK-----\n"
            )
        ),
        st.binary(max_size=200).map(
            lambda b: (
                b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
                + base64.encodebytes(b)
                + b"=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
            )
        ),
    )
)
def test_pgp_armor(raw: bytes) -> None:
    _only_invalid_argument(PgpPublicKey.from_armored, raw)


_filter_text = st.lists(
    st.sampled_from(
        [
            "kind",
            "=",
            "!=",
            '"ATTESTATION"',
            "AND",
            "OR",
            "NOT",
            "(",
            ")",
            "-",
            "resourceUrl",
            "noteName",
            '"projects/p/notes/n"',
            "noteId",
            '"\\"',
            '"\x00"',
            "x:y",
            '"\\q"',
        ]
    )
    | _text,
    max_size=12,
).map(" ".join)


@_RUN
@given(_filter_text, st.sampled_from(list(Target)))
def test_filters(text: str, target: Target) -> None:
    _only_invalid_argument(parse_filter, text, target)


_pod_spec = st.fixed_dictionaries(
    {},
    optional={
        "containers": st.lists(st.dictionaries(_keys, _json, max_size=3), max_size=3) | _json,
        "initContainers": _json,
        "volumes": st.lists(st.fixed_dictionaries({"name": _text, "image": _json}), max_size=2)
        | _json,
        "serviceAccountName": _scalars,
    },
)


@_RUN
@given(
    st.sampled_from(["Pod", "Deployment", "CronJob", "Job", "pod", None, 3]),
    _pod_spec,
    st.dictionaries(_keys, _json, max_size=3),
)
def test_workloads(kind: Any, spec: dict[str, Any], meta: dict[str, Any]) -> None:
    obj: dict[str, Any] = {"kind": kind, "metadata": meta}
    if kind in ("Pod", "pod"):
        obj["spec"] = spec
    elif kind == "CronJob":
        obj["spec"] = {"jobTemplate": {"spec": {"template": {"spec": spec}}}}
    else:
        obj["spec"] = {"template": {"metadata": meta, "spec": spec}}
    _only_invalid_argument(workload_from_object, obj)


@_RUN
@given(_json)
def test_policy_documents(doc: Any) -> None:
    _only_invalid_argument(parse_policy, doc)
    _only_invalid_argument(parse_policy, {"defaultAdmissionRule": doc})


@_RUN
@given(_json)
def test_attestor_documents(doc: Any) -> None:
    _only_invalid_argument(parse_attestor, doc)
    _only_invalid_argument(parse_attestor, {"userOwnedGrafeasNote": doc})


# ------------------------------------------------------------------ AdmissionReview envelopes

_kind_names = st.sampled_from([*sorted(SUPPORTED_KINDS), "pod", "POD", "ConfigMap", ""]) | _text
_operations = st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""]) | _text


def _workload_object(kind: Any, spec: Any, meta: Any) -> dict[str, Any]:
    if kind == "Pod":
        return {"kind": kind, "metadata": meta, "spec": spec}
    if kind == "CronJob":
        return {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    return {"kind": kind, "metadata": meta, "spec": {"template": {"metadata": meta, "spec": spec}}}


_images = st.sampled_from(["nginx", "gcr.io/a/b@sha256:" + "a" * 64, "nginx:1", "UPPER", "a b", ""])
_containers = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["app", "side"]), "image": st.one_of(_images, _images, _json)}
    ),
    min_size=1,
    max_size=3,
)
_realistic_spec = st.fixed_dictionaries(
    {"containers": _containers | _json},
    optional={
        "initContainers": _containers,
        "ephemeralContainers": _containers,
        "volumes": st.lists(
            st.fixed_dictionaries(
                {"name": _text, "image": st.fixed_dictionaries({"reference": _images})}
            ),
            max_size=2,
        ),
        "serviceAccountName": st.sampled_from(["default", "ci", "Bad_Name"]) | _scalars,
    },
)
_meta = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["app", ""]) | _scalars,
        "namespace": st.sampled_from(["prod", "dev"]) | _scalars,
        "annotations": st.dictionaries(_text, _text, max_size=2) | _json,
        "deletionTimestamp": st.sampled_from(["2026-01-01T00:00:00Z", ""]) | _scalars,
    },
)


@st.composite
def _reviews_of_workloads(draw: st.DrawFn) -> dict[str, Any]:
    # Mostly what an API server sends, with one or two parts made odd: the interesting cases
    # are the ones that get past the envelope checks.
    supported = st.sampled_from(sorted(SUPPORTED_KINDS))
    kind = draw(st.one_of(supported, supported, supported, _kind_names))
    object_kind = draw(st.sampled_from([kind] * 6 + [None, "Pod", "pod"]))
    obj = _workload_object(object_kind, draw(_realistic_spec), draw(_meta))
    if object_kind is None:
        obj.pop("kind")
    request: dict[str, Any] = {
        "uid": draw(st.sampled_from(["u-1", "u-2", "x", "u-3", "u-4", ""])),
        "operation": draw(st.sampled_from(["CREATE", "UPDATE", "CREATE"]) | _operations),
        "kind": {"group": "", "version": "v1", "kind": kind},
        "object": obj,
        "namespace": draw(st.sampled_from(["prod", "prod", "dev", ""]) | _text),
    }
    optional = {
        "subResource": st.sampled_from(["", "ephemeralcontainers", "status"]),
        "oldObject": st.just(obj) | _objects,
        "dryRun": st.sampled_from([False, True, False, None, "true"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            request[key] = draw(strategy)
    version = draw(
        st.sampled_from(["admission.k8s.io/v1"] * 4 + ["admission.k8s.io/v1beta1", "v1"])
    )
    return {"kind": "AdmissionReview", "apiVersion": version, "request": request}


@st.composite
def _valid_reviews(draw: st.DrawFn) -> dict[str, Any]:
    # The envelope exactly as an API server sends it; only the workload inside varies.
    kind = draw(st.sampled_from(sorted(SUPPORTED_KINDS)))
    obj = _workload_object(kind, draw(_realistic_spec), draw(_meta))
    request = {
        "uid": "u-1",
        "operation": draw(st.sampled_from(["CREATE", "UPDATE"])),
        "kind": {"group": "", "version": "v1", "kind": kind},
        "namespace": draw(st.sampled_from(["prod", "dev"])),
        "object": obj,
        "oldObject": draw(st.just(obj) | st.none()),
        "dryRun": draw(st.booleans()),
    }
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}


_objects = st.one_of(
    _json,
    st.builds(_workload_object, _kind_names, _pod_spec, st.dictionaries(_keys, _json, max_size=3)),
)
_requests = st.fixed_dictionaries(
    {},
    optional={
        "uid": _scalars,
        "operation": _operations | _scalars,
        "namespace": _text | _scalars,
        "subResource": st.sampled_from(["", "ephemeralcontainers", "status"]) | _scalars,
        "kind": st.fixed_dictionaries({"kind": _kind_names}) | _json,
        "object": _objects,
        "oldObject": _objects,
        "dryRun": st.booleans() | _scalars,
    },
)
_odd_reviews = st.one_of(
    _json,
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["AdmissionReview", "admissionreview"]) | _scalars,
            "apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
            | _scalars,
            "request": _requests | _json,
        }
    ),
)


@_RUN
@given(_valid_reviews() | _reviews_of_workloads() | _odd_reviews)
def test_admission_review_envelopes(doc: Any) -> None:
    try:
        review = read_review(doc)
        plan = plan_review(review)
    except InvalidArgument:
        return
    judged_kind = review.kind in SUPPORTED_KINDS and review.sub_resource in (
        "",
        "ephemeralcontainers",
    )
    if isinstance(plan, Admit) and judged_kind and review.operation in JUDGED_OPERATIONS:
        # Admitted unjudged although it creates or changes a workload: only an object on its
        # way out whose images stay the same may be.
        meta = review.obj.get("metadata") if isinstance(review.obj, dict) else None
        assert review.operation == "UPDATE"
        assert isinstance(meta, dict) and meta.get("deletionTimestamp")
    if isinstance(plan, JudgeWorkload):
        # Judged in the namespace the API server gave, never one the object claims.
        assert review.namespace and plan.workload.namespace == review.namespace


@_RUN
@given(_json_text)
def test_admission_review_bytes(raw: bytes) -> None:
    def read(raw: bytes) -> None:
        plan_review(read_review(parse_request_json(raw)))

    _only_invalid_argument(read, raw)
