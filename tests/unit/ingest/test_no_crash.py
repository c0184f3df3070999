"""No input crashes a converter: properties over arbitrary JSON, and a bounded fuzz of each
parser, mutating real documents byte by byte. Every outcome is a Conversion or a DocumentError
(a 400); anything else is a bug."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainproof.ingest import Conversion, DocumentError, Format, convert
from unit.ingest.ingest_fixtures import context, fixture

SEEDS = {
    Format.CYCLONEDX_JSON: "sbom/alpine-cyclonedx.json",
    Format.SPDX_JSON: "sbom/alpine-spdx.json",
    Format.TRIVY_JSON: "scans/trivy/alpine-310.json",
    Format.GRYPE_JSON: "scans/grype/imgs-presenter.json",
    Format.OPENVEX: "vex/open-vex-not-affected.json",
    Format.CSAF_VEX: "vex/rhsa-csaf.json",
    Format.DSSE_ENVELOPE: "provenance/oci-dsse-att.json",
    Format.INTOTO_STATEMENT: "provenance/kubectl-linux-amd64-in-toto.json",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


def _outcome(raw: bytes, fmt: Format | None) -> None:
    try:
        result = convert(raw, context(raw, image=None), fmt)
    except DocumentError:
        return
    assert isinstance(result, Conversion)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(list(SEEDS)), doc=json_values)
def test_arbitrary_json_never_crashes(fmt, doc):
    _outcome(json.dumps(doc).encode(), fmt)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(list(SEEDS)), key=st.text(max_size=20), value=json_values)
def test_real_documents_with_a_field_replaced_never_crash(fmt, key, value):
    doc = json.loads(fixture(SEEDS[fmt]))
    if isinstance(doc, dict):
        target = key if key in doc or not doc else sorted(doc)[len(key) % len(doc)]
        doc[target] = value
    _outcome(json.dumps(doc).encode(), fmt)


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_with_detection_never_crash(raw):
    _outcome(raw, None)


@pytest.mark.parametrize("fmt", list(SEEDS))
def test_bounded_mutation_fuzz(fmt):
    """200 byte-level mutations of a real document per parser (fixed seed: reproducible)."""
    base = fixture(SEEDS[fmt])
    rng = random.Random(f"chainproof-{fmt.value}")
    for _ in range(200):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.4:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos : pos + rng.randint(1, 16)]
            else:
                data[pos:pos] = rng.choice([b"{", b"}", b"[", b"]", b'"', b",", b"null", b"0"])
        _outcome(bytes(data), fmt)
        _outcome(bytes(data), None)


def test_deeply_nested_document_is_refused_not_recursed():
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DocumentError):
        convert(raw, context(raw), Format.TRIVY_JSON)


def test_xml_entity_expansion_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b'<bom xmlns="http://cyclonedx.org/schema/bom/1.5">&lol2;</bom>'
    )
    with pytest.raises(DocumentError) as err:
        convert(bomb, context(bomb))
    assert "refused" in str(err.value)
