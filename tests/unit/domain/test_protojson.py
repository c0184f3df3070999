"""The fast JSON codec must agree with protobuf's json_format: same output, and never accept
what json_format refuses."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.domain import protojson
from chainproof.domain.messages import NotePB, OccurrencePB

D = "sha256:" + "a" * 64
CORPUS: list[tuple[Any, dict[str, Any]]] = [
    (
        OccurrencePB,
        {
            "name": "projects/p/occurrences/1",
            "resourceUri": f"gcr.io/x/a@{D}",
            "noteName": "projects/p/notes/cve",
            "kind": "VULNERABILITY",
            "createTime": "2026-01-02T03:04:05.123456789Z",
            "updateTime": "2026-01-02T03:04:05Z",
            "vulnerability": {
                "severity": "HIGH",
                "effectiveSeverity": 4,
                "cvssScore": 7.5,
                "fixAvailable": True,
                "packageIssue": [
                    {
                        "affectedCpeUri": "cpe:/o:debian:debian_linux:12",
                        "affectedPackage": "openssl",
                        "affectedVersion": {
                            "kind": "NORMAL",
                            "name": "3.0",
                            "revision": "1",
                            "epoch": 2,
                        },
                        "fixedVersion": {"kind": "MAXIMUM"},
                        "fixAvailable": True,
                    }
                ],
                "vexAssessment": {"state": "NOT_AFFECTED", "vulnerabilityId": "CVE-2024-1"},
                "relatedUrls": [{"url": "https://x", "label": "l"}],
            },
        },
    ),
    (
        OccurrencePB,
        {
            "resourceUri": "r",
            "noteName": "projects/p/notes/qa",
            "attestation": {
                "serializedPayload": "cGF5bG9hZA==",
                "signatures": [{"signature": "c2ln", "publicKeyId": "k"}],
            },
        },
    ),
    (
        OccurrencePB,
        {
            "resourceUri": "r",
            "noteName": "projects/p/notes/qa",
            "dsseAttestation": {
                "envelope": {
                    "payload": "e30=",
                    "payloadType": "application/vnd.in-toto+json",
                    "signatures": [{"sig": "c2ln", "keyid": ""}],
                }
            },
        },
    ),
    (
        OccurrencePB,
        {
            "resourceUri": "r",
            "noteName": "projects/p/notes/d",
            "deployment": {
                "deployTime": "2026-11-22T10:00:00Z",
                "platform": "CUSTOM",
                "resourceUri": ["a", "b"],
            },
        },
    ),
    (
        OccurrencePB,
        {
            "resourceUri": "r",
            "noteName": "projects/p/notes/d",
            "discovery": {
                "analysisStatus": "FINISHED_SUCCESS",
                "lastScanTime": "2026-11-22T10:00:00.5Z",
            },
        },
    ),
    (
        OccurrencePB,
        {
            "resourceUri": "r",
            "noteName": "projects/p/notes/b",
            "build": {
                "provenance": {
                    "id": "b1",
                    "startTime": "2026-11-22T10:00:00Z",
                    "builtArtifacts": [{"checksum": "x", "id": "y"}],
                }
            },
        },
    ),
    (
        NotePB,
        {
            "shortDescription": "QA",
            "attestation": {"hint": {"humanReadableName": "qa"}},
            "relatedNoteNames": ["projects/p/notes/x"],
            "expirationTime": "2030-01-01T00:00:00Z",
        },
    ),
    (
        NotePB,
        {
            "vulnerability": {
                "severity": "CRITICAL",
                "cvssScore": 9.8,
                "details": [{"affectedCpeUri": "c", "affectedPackage": "p"}],
            }
        },
    ),
    (NotePB, {"build": {"builderVersion": "1"}, "kind": "BUILD"}),
    (NotePB, {"image": {"resourceUrl": "x", "fingerprint": {"v1Name": "n", "v2Blob": ["a", "b"]}}}),
]


def reference_parse(cls: Any, data: Any) -> Any:
    msg = cls()
    json_format.ParseDict(data, msg)
    return msg


def fast_parse(cls: Any, data: Any) -> Any:
    msg = cls()
    protojson.parse_into(data, msg)
    return msg


@pytest.mark.parametrize(("cls", "data"), CORPUS)
def test_render_matches_json_format(cls: Any, data: dict[str, Any]) -> None:
    msg = reference_parse(cls, data)
    expected = json_format.MessageToDict(msg)
    # Unsupported is allowed: the caller falls back to json_format.
    with contextlib.suppress(protojson.Unsupported):
        assert protojson.render_message(msg) == expected


@pytest.mark.parametrize(("cls", "data"), CORPUS)
def test_parse_matches_json_format(cls: Any, data: dict[str, Any]) -> None:
    expected = reference_parse(cls, data)
    with contextlib.suppress(protojson.Unsupported):
        assert fast_parse(cls, data) == expected


def built(cls: Any, data: Any) -> Any:
    try:
        return protojson.build(cls, data)
    except protojson.Unsupported:
        return None


def parsed(cls: Any, data: Any) -> Any:
    try:
        return fast_parse(cls, data)
    except protojson.Unsupported:
        return None


@pytest.mark.parametrize(("cls", "data"), CORPUS)
def test_build_agrees_with_parse_into(cls: Any, data: dict[str, Any]) -> None:
    """The constructor path (strict_from_json's) takes exactly what parse_into takes."""
    assert built(cls, data) == parsed(cls, data)


FLOATS = [0.0, 7.5, 9.8, 0.1, 3, 5.300000190734863, 1e-45, 3.4028234e38, -2.5, 123456789.0]


@pytest.mark.parametrize("score", FLOATS)
def test_float32_fields_agree_with_json_format(score: float) -> None:
    """Scanner findings and VULNERABILITY notes carry float32 scores (cvssScore, baseScore):
    the fast path parses and renders them as json_format does, shortest decimal included."""
    occurrence = {
        "resourceUri": "r",
        "noteName": "projects/p/notes/n",
        "vulnerability": {"cvssScore": score, "severity": "HIGH"},
    }
    note = {
        "vulnerability": {
            "cvssScore": score,
            "cvssV3": {"baseScore": score, "exploitabilityScore": score},
            "severity": "CRITICAL",
        }
    }
    for cls, data in ((OccurrencePB, occurrence), (NotePB, note)):
        expected = reference_parse(cls, data)
        got = fast_parse(cls, data)
        assert got == expected
        assert protojson.render_message(got) == json_format.MessageToDict(expected)


def test_the_common_shapes_take_the_fast_path() -> None:
    # Not a timing test: it checks the fast path is actually used for typical occurrences.
    for cls, data in CORPUS[1:5]:
        fast_parse(cls, data)
        protojson.render_message(reference_parse(cls, data))


def test_empty_details_still_select_the_oneof() -> None:
    msg = fast_parse(NotePB, {"attestation": {}})
    assert msg.WhichOneof("type") == "attestation"


MUTATIONS = [
    lambda d: d.update(bogus=1),
    lambda d: d.update(resourceUri=5),
    lambda d: d.update(resourceUri=None),
    lambda d: d.update(resource_uri="x"),
    lambda d: d.update(kind="NOPE"),
    lambda d: d.update(kind=99),
    lambda d: d.update(kind=True),
    lambda d: d.update(createTime="yesterday"),
    lambda d: d.update(createTime="2026-13-01T00:00:00Z"),
    lambda d: d.update(createTime="2026-01-01T00:00:00.1234567891Z"),
    lambda d: d.update(createTime="2026-01-01T00:00:00+02:00"),
    lambda d: d.update(build={"provenance": {"id": "x"}}),
    lambda d: d.update(attestation={"serializedPayload": "not base64!"}),
    lambda d: d.update(attestation={"serializedPayload": "cGF5bG9hZA"}),
    lambda d: d.update(attestation={"signatures": {"signature": "c2ln"}}),
    lambda d: d.update(attestation={"signatures": [5]}),
    lambda d: d.update(vulnerability={"cvssScore": "high"}),
    lambda d: d.update(vulnerability={"cvssScore": "7.5"}),
    lambda d: d.update(vulnerability={"cvssScore": True}),
    lambda d: d.update(vulnerability={"cvssScore": 1e39}),
    lambda d: d.update(vulnerability={"cvssScore": -1e39}),
    lambda d: d.update(vulnerability={"cvssScore": float("nan")}),
    lambda d: d.update(vulnerability={"cvssScore": float("inf")}),
    lambda d: d.update(vulnerability={"cvssScore": 2**200}),
    lambda d: d.update(vulnerability={"cvssScore": 9.8}),
    lambda d: d.update(vulnerability={"cvssScore": 3}),
    lambda d: d.update(vulnerability={"cvssScore": 3.4028235e38}),
    lambda d: d.update(vulnerability={"packageIssue": [{"affectedVersion": {"epoch": "12"}}]}),
    lambda d: d.update(vulnerability={"packageIssue": [{"affectedVersion": {"epoch": 2**40}}]}),
    lambda d: d.update(vulnerability={"packageIssue": [{"affectedVersion": {"epoch": 1.5}}]}),
    lambda d: d.update(vulnerability={"packageIssue": [{"fixAvailable": "yes"}]}),
    lambda d: d.update(deployment={"resourceUri": "not-a-list"}),
    lambda d: d.update(noteName=["x"]),
]


@given(
    base=st.sampled_from([d for cls, d in CORPUS if cls is OccurrencePB]),
    mutations=st.lists(st.sampled_from(range(len(MUTATIONS))), min_size=1, max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_fast_parser_never_disagrees_with_json_format(
    base: dict[str, Any], mutations: list[int]
) -> None:
    data = copy.deepcopy(base)
    for i in mutations:
        MUTATIONS[i](data)
    try:
        expected = reference_parse(OccurrencePB, data)
    except json_format.ParseError:
        expected = None
    # Both fast paths give one verdict: the same message, or both defer.
    assert built(OccurrencePB, data) == parsed(OccurrencePB, data)
    try:
        got = fast_parse(OccurrencePB, data)
    except protojson.Unsupported:
        return  # the caller defers to json_format, which decides
    assert expected is not None, f"fast path accepted what json_format refuses: {data}"
    assert got == expected
