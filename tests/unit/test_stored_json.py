"""store/sql/tx.load_json reads stored documents as json.loads would: orjson for what
dump_json writes, json.loads for text orjson refuses (another writer's NaN or big integer)."""

from __future__ import annotations

import json
import math

import pytest

from chainproof.store.sql.tx import dump_json, load_json

DOCUMENTS = [
    {"name": "projects/p/occurrences/1", "vulnerability": {"cvssScore": 7.5, "severity": "HIGH"}},
    {"text": 'ünïcødé \u2028 \U0001f600 \\ "quoted"', "empty": {}, "list": [1, -2, 0.1, None]},
    {"big": 2**63 - 1, "small": -(2**63), "float": 1e-300, "true": True, "false": False},
    [],
    "a string",
    12,
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_what_dump_json_writes_reads_back_as_json_loads_reads_it(document: object) -> None:
    text = dump_json(document)
    assert load_json(text) == json.loads(text) == document
    assert load_json(text.encode()) == document


def test_text_orjson_refuses_goes_to_the_standard_library() -> None:
    got = load_json('{"n": NaN, "big": 123456789012345678901234567890}')
    assert math.isnan(got["n"]) and got["big"] == 123456789012345678901234567890
    with pytest.raises(json.JSONDecodeError):
        load_json("{not json")
