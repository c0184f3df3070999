"""Sealed secrets: what opens, and every way a sealed secret must refuse to open."""

from __future__ import annotations

import base64
import os

import pytest

from chainproof.crypto.sealing import (
    KEY_BYTES,
    PREFIX,
    SealError,
    SecretBox,
    format_key,
    is_sealed,
    parse_key,
)

NAME = "projects/p/subscriptions/hook"
SECRET = "whsec_" + base64.b64encode(b"\x07" * 32).decode()


def box() -> SecretBox:
    return SecretBox(os.urandom(KEY_BYTES))


def test_a_sealed_secret_opens_for_its_resource_and_shows_nothing_of_the_secret() -> None:
    b = box()
    token = b.seal(SECRET, NAME, os.urandom(12))
    assert is_sealed(token) and token.startswith(f"{PREFIX}{b.key_id}.")
    assert SECRET not in token and SECRET[6:] not in token
    assert b.open(token, NAME) == SECRET
    # A fresh nonce each time: the same secret never seals to the same text.
    assert b.seal(SECRET, NAME, os.urandom(12)) != token


def test_a_secret_copied_into_another_subscription_does_not_open_there() -> None:
    b = box()
    token = b.seal(SECRET, NAME, os.urandom(12))
    with pytest.raises(SealError, match="sealed for another resource"):
        b.open(token, "projects/p/subscriptions/other")
    with pytest.raises(SealError, match="sealed for another resource"):
        b.open(token, "projects/q/subscriptions/hook")


def test_another_key_is_named_not_reported_as_a_bad_tag() -> None:
    mine, theirs = box(), box()
    token = theirs.seal(SECRET, NAME, os.urandom(12))
    with pytest.raises(SealError) as caught:
        mine.open(token, NAME)
    assert theirs.key_id in str(caught.value) and mine.key_id in str(caught.value)
    assert "secret_key_file" in str(caught.value)


def test_any_altered_byte_is_refused() -> None:
    b = box()
    token = b.seal(SECRET, NAME, os.urandom(12))
    head, body = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
        with pytest.raises(SealError):
            b.open(f"{head}.{text}", NAME)


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("whsec_AAAA", "not a sealed secret"),
        (PREFIX, "reads sealed.v1"),
        (PREFIX + "abc", "reads sealed.v1"),
        ("KEYID.AAAA", "not a sealed secret"),
    ],
)
def test_malformed_tokens_say_what_was_expected(token: str, why: str) -> None:
    with pytest.raises(SealError, match=why):
        box().open(token, NAME)


def test_short_or_non_base64_data_is_refused() -> None:
    b = box()
    with pytest.raises(SealError, match="too short"):
        b.open(f"{PREFIX}{b.key_id}.AAAA", NAME)
    with pytest.raises(SealError, match="base64url"):
        b.open(f"{PREFIX}{b.key_id}.A", NAME)


def test_keys_are_exactly_32_bytes_of_base64() -> None:
    key = os.urandom(KEY_BYTES)
    assert parse_key(format_key(key)) == key
    assert parse_key("  " + format_key(key) + "\n\n") == key
    with pytest.raises(SealError, match="holds 16 bytes; expected 32"):
        parse_key(base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(SealError, match="not base64"):
        parse_key("not base64 at all!")
    with pytest.raises(SealError, match="32 bytes"):
        SecretBox(b"short")
    with pytest.raises(SealError, match="nonce"):
        box().seal(SECRET, NAME, b"123")
    assert repr(SecretBox(key)) == "SecretBox()"  # a log line never carries the key
