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
    SecretKeyRing,
    format_key,
    is_sealed,
    parse_key,
    sealed_key_id,
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


def test_a_ring_seals_with_its_current_key_and_opens_with_whichever_key_a_token_names() -> None:
    old, new = box(), box()
    ring = SecretKeyRing(new, (old,))
    from_old = old.seal(SECRET, NAME, os.urandom(12))
    fresh = ring.seal(SECRET, NAME, os.urandom(12))
    assert sealed_key_id(fresh) == new.key_id and sealed_key_id(from_old) == old.key_id
    assert ring.open(from_old, NAME) == ring.open(fresh, NAME) == SECRET
    assert ring.stale(from_old) and not ring.stale(fresh)
    assert ring.key_ids == (new.key_id, old.key_id)
    # The old key alone opens what it sealed, not what the new one sealed.
    with pytest.raises(SealError, match=f"sealed under key {new.key_id}"):
        old.open(fresh, NAME)


def test_a_ring_names_the_keys_it_holds_when_a_token_names_none_of_them() -> None:
    mine, extra, theirs = box(), box(), box()
    token = theirs.seal(SECRET, NAME, os.urandom(12))
    ring = SecretKeyRing(mine, (extra,))
    assert not ring.stale(token)  # not held: nothing to seal again with
    with pytest.raises(SealError) as caught:
        ring.open(token, NAME)
    text = str(caught.value)
    assert theirs.key_id in text and mine.key_id in text and extra.key_id in text
    assert "extra_secret_key_files" in text


def test_a_token_relabelled_with_a_held_key_id_does_not_open() -> None:
    # The key ID only picks the key; the tag still decides. A token an attacker sealed
    # under a key of their own, labelled with the server's key ID, is refused.
    mine, attacker = box(), box()
    forged = attacker.seal(SECRET, NAME, os.urandom(12)).replace(attacker.key_id, mine.key_id)
    ring = SecretKeyRing(mine, (box(),))
    with pytest.raises(SealError, match="does not open"):
        ring.open(forged, NAME)


def test_an_old_key_opens_only_for_the_resource_it_sealed_for() -> None:
    old, new = box(), box()
    token = old.seal(SECRET, NAME, os.urandom(12))
    with pytest.raises(SealError, match="sealed for another resource"):
        SecretKeyRing(new, (old,)).open(token, "projects/p/subscriptions/other")


def test_a_key_listed_twice_is_one_key() -> None:
    b, other = box(), box()
    ring = SecretKeyRing(b, (SecretBox(b.key), other, SecretBox(other.key)))
    assert ring.key_ids == (b.key_id, other.key_id)
    token = b.seal(SECRET, NAME, os.urandom(12))
    assert not ring.stale(token)
