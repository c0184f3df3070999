"""Signed JSON is read one way only: a key given twice, NaN, deep nesting and lone surrogates
are refused by every payload parser (simple signing, in-toto, DSSE envelope) — issue 9 item 8.

Two readers of the same signed bytes must see the same claim. Python's parser keeps the last
of two equal keys, Go's encoding/json the last too, but others (and humans reading the
payload) take the first: ``{"critical": {"image": {"docker-manifest-digest": GOOD,
"docker-manifest-digest": EVIL}}}`` must not be a way to sign one digest and claim another.
"""

# Duplicate keys cannot be made with json.dumps; %-formatting keeps the JSON braces readable.
# ruff: noqa: UP031

from __future__ import annotations

import base64
import json

import pytest

from chainproof.attest import parse_simple_signing, parse_statement
from chainproof.crypto.dsse import DsseEnvelope
from chainproof.errors import InvalidArgument

from .conftest import HEX_A, HEX_B, REPO

GOOD = f"sha256:{HEX_A}"
EVIL = f"sha256:{HEX_B}"


def simple_signing_with_two_digests() -> bytes:
    return (
        '{"critical": {"identity": {"docker-reference": "%s"}, '
        '"image": {"docker-manifest-digest": "%s", "docker-manifest-digest": "%s"}, '
        '"type": "atomic container signature"}, "optional": null}' % (REPO, GOOD, EVIL)
    ).encode()


def test_simple_signing_refuses_a_key_given_twice() -> None:
    with pytest.raises(InvalidArgument, match="docker-manifest-digest' twice"):
        parse_simple_signing(simple_signing_with_two_digests())


def test_simple_signing_refuses_a_duplicated_top_level_key() -> None:
    one = json.dumps(
        {
            "identity": {"docker-reference": REPO},
            "image": {"docker-manifest-digest": GOOD},
            "type": "atomic container signature",
        }
    )
    two = one.replace(GOOD, EVIL)
    raw = ('{"critical": %s, "critical": %s}' % (one, two)).encode()
    with pytest.raises(InvalidArgument, match="'critical' twice"):
        parse_simple_signing(raw)


def test_in_toto_statement_refuses_a_key_given_twice() -> None:
    subject = '[{"name": "%s", "digest": {"sha256": "%s"}}]'
    raw = (
        '{"_type": "https://in-toto.io/Statement/v1", "subject": %s, "subject": %s, '
        '"predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}'
        % (subject % (REPO, HEX_A), subject % (REPO, HEX_B))
    ).encode()
    with pytest.raises(InvalidArgument, match="'subject' twice"):
        parse_statement(raw)


def test_in_toto_digest_map_refuses_a_key_given_twice() -> None:
    raw = (
        '{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "%s", '
        '"digest": {"sha256": "%s", "sha256": "%s"}}], '
        '"predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}' % (REPO, HEX_A, HEX_B)
    ).encode()
    with pytest.raises(InvalidArgument, match="'sha256' twice"):
        parse_statement(raw)


def test_dsse_envelope_refuses_a_key_given_twice() -> None:
    a = base64.b64encode(b"one").decode()
    b = base64.b64encode(b"two").decode()
    raw = (
        '{"payloadType": "application/vnd.in-toto+json", "payload": "%s", "payload": "%s", '
        '"signatures": [{"keyid": "", "sig": "AA=="}]}' % (a, b)
    )
    with pytest.raises(InvalidArgument, match="'payload' twice"):
        DsseEnvelope.from_json(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"critical": NaN}', "NaN is not a JSON value"),
        (b'{"critical": 1e400}', "beyond the range of a double"),
        (b'{"critical": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"critical": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "too deeply"),
        (b'{"critical": ' + b"[" * 100 + b"]" * 100 + b"}", "at most 64 levels"),
        (b'{"critical": ' + b"9" * 5000 + b"}", "too long"),
    ],
)
def test_signed_payloads_refuse_what_is_not_plain_json(raw: bytes, message: str) -> None:
    # Each of these once escaped as a ValueError/RecursionError (a crash) or was taken as is.
    for parse in (parse_simple_signing, parse_statement, DsseEnvelope.from_json):
        with pytest.raises(InvalidArgument, match=message):
            parse(raw)  # type: ignore[operator]
