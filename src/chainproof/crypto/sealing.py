"""Secrets kept at rest sealed under a server key: AES-256-GCM, bound to what they belong to.

A webhook subscription's HMAC secret must be recoverable (chainproof signs every delivery
with it), so it cannot be hashed like an API token; stored as given, anyone who reads the
database — a backup, a replica, a dump attached to a support ticket — could forge events
that receivers trust. Sealed, the database holds only

    sealed.v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>

and the key lives outside it (a file, ``notifications.secret_key_file``). The *context* — the
name of the resource the secret belongs to — is authenticated with it (GCM's associated
data), so a sealed secret copied into another subscription's row does not open there. The key
ID (a fingerprint, never the key) lets a server that holds another key say so precisely
instead of failing with "bad tag"; it is also how a :class:`SecretKeyRing` — the sealing key
and the keys that only open, during a rotation — picks the key that opens a token.

Pure: the nonce comes from the caller (the service draws it from ``os.urandom``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed.v1."
KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16


class SealError(ValueError):
    """A sealed secret that this key cannot open (another key, another context, tampered,
    or not a sealed secret at all)."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def sealed_key_id(token: str) -> str:
    """The ID of the key ``token`` was sealed under (read from the token, not checked)."""
    return _split(token)[0]


def _split(token: str) -> tuple[str, str]:
    if not is_sealed(token):
        raise SealError(f"not a sealed secret: expected {PREFIX}<key id>.<data>")
    kid, dot, body = token[len(PREFIX) :].partition(".")
    if not dot or not kid:
        raise SealError(f"a sealed secret reads {PREFIX}<key id>.<data>")
    return kid, body


def key_id_of(key: bytes) -> str:
    """The key's public fingerprint: 16 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(b"chainproof secret box\x00" + key).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    """A key as kept in its file: the base64 of 32 random bytes (whitespace ignored)."""
    try:
        key = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealError(f"the key is not base64 ({exc}); expected the base64 of 32 bytes") from exc
    if len(key) != KEY_BYTES:
        raise SealError(f"the key holds {len(key)} bytes; expected {KEY_BYTES} (AES-256)")
    return key


def format_key(key: bytes) -> str:
    if len(key) != KEY_BYTES:
        raise SealError(f"a key holds {KEY_BYTES} bytes, not {len(key)}")
    return base64.b64encode(key).decode() + "\n"


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens secrets under one AES-256 key."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise SealError(f"a key holds {KEY_BYTES} bytes, not {len(self.key)}")

    @property
    def key_id(self) -> str:
        return key_id_of(self.key)

    def _aad(self, context: str, key_id: str) -> bytes:
        return f"{PREFIX}{key_id}\x00{context}".encode()

    def seal(self, secret: str, context: str, nonce: bytes) -> str:
        """``secret`` sealed for ``context`` (the owning resource's name); ``nonce``: 12
        fresh random bytes, never used twice under one key."""
        if len(nonce) != NONCE_BYTES:
            raise SealError(f"a nonce holds {NONCE_BYTES} bytes, not {len(nonce)}")
        kid = self.key_id
        sealed = AESGCM(self.key).encrypt(nonce, secret.encode(), self._aad(context, kid))
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{kid}.{body}"

    def open(self, token: str, context: str) -> str:
        """The secret ``token`` seals for ``context``; :class:`SealError` saying why not."""
        kid, body = _split(token)
        if kid != self.key_id:
            raise SealError(
                f"sealed under key {kid}, but this server holds key {self.key_id}: give every "
                "replica the same notifications.secret_key_file"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SealError("the sealed data is not base64url") from exc
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise SealError("the sealed data is too short to hold a nonce and a tag")
        try:
            plain = AESGCM(self.key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(context, kid)
            )
        except InvalidTag as exc:
            raise SealError(
                f"it does not open for {context}: it was sealed for another resource, or altered"
            ) from exc
        return plain.decode()


@dataclass(frozen=True)
class SecretKeyRing:
    """The key that seals (``current``) and the keys that only open (``others``): what a
    key rotation holds while secrets sealed under the old key are sealed again under the
    new one, and while replicas learn the new key before any of them seals with it."""

    current: SecretBox
    others: tuple[SecretBox, ...] = ()

    def __post_init__(self) -> None:
        # The same key named twice (a file listed as current and as another) is one key.
        seen = {self.current.key_id}
        unique = []
        for box in self.others:
            if box.key_id not in seen:
                seen.add(box.key_id)
                unique.append(box)
        object.__setattr__(self, "others", tuple(unique))

    @property
    def key_id(self) -> str:
        return self.current.key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key ID held, the sealing key's first."""
        return (self.current.key_id, *(b.key_id for b in self.others))

    def seal(self, secret: str, context: str, nonce: bytes) -> str:
        return self.current.seal(secret, context, nonce)

    def open(self, token: str, context: str) -> str:
        """Open ``token`` with whichever held key it names; :class:`SealError` saying which
        keys are held when it names none of them."""
        kid = sealed_key_id(token)
        for box in (self.current, *self.others):
            if box.key_id == kid:
                return box.open(token, context)
        held = f"key {self.key_id}"
        if self.others:
            held = f"keys {', '.join(self.key_ids)} ({self.key_id} seals)"
        raise SealError(
            f"sealed under key {kid}, but this server holds {held}: give every replica the "
            "same notifications.secret_key_file (and, while rotating, the old key in "
            "notifications.extra_secret_key_files)"
        )

    def stale(self, token: str) -> bool:
        """Whether ``token`` is sealed under a held key other than the sealing one (so
        should be sealed again); False for the sealing key's and for keys not held."""
        kid = sealed_key_id(token)
        return kid != self.key_id and kid in self.key_ids
