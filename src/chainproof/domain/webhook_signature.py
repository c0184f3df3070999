"""HMAC signatures on webhook bodies, in the Standard Webhooks scheme.

A receiver checks that a body came from this chainproof and was not replayed: the sender
signs ``"{id}.{timestamp}.{body}"`` with HMAC-SHA256 under the subscription's secret and sends
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64>``.
Any Standard Webhooks library verifies these; ``verify`` here is the same check, used by our
tests and by anyone writing a receiver in Python. Pure: time is a parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

from chainproof.errors import InvalidArgument

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
#: How far a timestamp may be from the receiver's clock (replay window).
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidArgument(f"a webhook secret starts with {SECRET_PREFIX!r} then base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError as exc:
        raise InvalidArgument(
            f"the webhook secret is not valid base64 after {SECRET_PREFIX!r}"
        ) from exc
    if len(key) < 24:
        raise InvalidArgument("a webhook secret needs at least 24 random bytes")
    return key


def check_secret(secret: str) -> str:
    """``secret`` if it is a usable secret (``whsec_`` and at least 24 bytes of base64);
    InvalidArgument saying what is wrong otherwise."""
    _key(secret)
    return secret


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, message_id: str, now: datetime, body: bytes) -> dict[str, str]:
    ts = int(now.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(secret, message_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether the headers sign ``body`` under ``secret`` within the replay window. Several
    space-separated signatures may be sent (during secret rotation); one valid one is enough."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id = lower.get("webhook-id", "")
    ts_text = lower.get("webhook-timestamp", "")
    if not message_id or not ts_text.isdigit():
        return False
    ts = int(ts_text)
    if abs(now.timestamp() - ts) > tolerance_s:
        return False
    expected = signature(secret, message_id, ts, body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in lower.get("webhook-signature", "").split()
    )
