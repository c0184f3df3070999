"""Public keys that only verify, and the registry that builds them by key type.

This module owns the contract every trusted key follows (:class:`PublicKey`), the result of one
verification (:class:`SignatureCheck`), the description of a key as an attestor stores it
(:class:`KeySpec`) and the registry that turns such a description into a key
(:func:`load_public_key`). Concrete key types (``PGP`` in :mod:`chainproof.crypto.pgp`, ``PKIX``
in :mod:`chainproof.crypto.pkix`) register themselves here with :func:`register_key_type`, so
no code ever branches over key types.

It does not own signing (see :mod:`chainproof.crypto.signing` and
:mod:`chainproof.crypto.gpg_signer`; a verifier never imports them), trying several signatures
against several keys (:mod:`chainproof.crypto.verify`) or what a signed payload means
(:mod:`chainproof.attest`). Nothing here reads the clock: ``now`` is always a parameter.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chainproof.errors import ChainproofError, InvalidArgument

__all__ = [
    "KeySpec",
    "PublicKey",
    "SignatureCheck",
    "key_types",
    "load_public_key",
    "register_key_type",
    "require_aware",
]


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of checking one signature against one key.

    ``key_id`` names the key that was tried. When ``verified`` is false, ``reason`` says why in
    words a person can act on. ``signed_content`` holds the bytes the signature covers: the
    data that was passed in, or, for an OpenPGP message that carries its own content
    (clearsigned or inline-signed), the content recovered from it. ``signer`` names the exact
    component that signed when it differs from the key id (an OpenPGP signing subkey).
    """

    key_id: str
    verified: bool
    reason: str = ""
    signed_content: bytes | None = None
    signer: str | None = None

    @classmethod
    def failed(cls, key_id: str, reason: str) -> SignatureCheck:
        return cls(key_id=key_id, verified=False, reason=reason)


def require_aware(now: datetime) -> datetime:
    """Return ``now`` if it carries a time zone; raise InvalidArgument otherwise."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidArgument(
            f"verification time {now.isoformat()} has no time zone: pass an aware datetime, "
            "for example datetime.now(timezone.utc)"
        )
    return now


class PublicKey(abc.ABC):
    """A trusted public key that can only verify.

    The public :meth:`verify` enforces the contract (an aware ``now``, bytes in, a
    :class:`SignatureCheck` out, never an exception for a bad signature); implementations only
    fill in :meth:`_verify`.
    """

    #: The registry name of this key type, e.g. ``"PGP"`` or ``"PKIX"``.
    key_type: str

    @property
    @abc.abstractmethod
    def key_id(self) -> str:
        """The identifier an attestor and its signatures use for this key."""

    @abc.abstractmethod
    def matches_hint(self, hint: str) -> bool:
        """Whether a signature's key id hint names this key. A hint only orders the search."""

    @abc.abstractmethod
    def _verify(self, signature: bytes, data: bytes | None, now: datetime) -> SignatureCheck:
        """Check ``signature`` over ``data``; may raise, :meth:`verify` turns that into a result."""

    def verify(self, signature: bytes, data: bytes | None, *, now: datetime) -> SignatureCheck:
        """Check ``signature`` over ``data`` at time ``now``.

        ``data`` may be ``None`` only for key types whose signatures carry their content (an
        OpenPGP clearsigned or inline-signed message); the content then comes back in
        :attr:`SignatureCheck.signed_content`.
        """
        require_aware(now)
        if not signature:
            return SignatureCheck.failed(self.key_id, "the signature is empty")
        try:
            return self._verify(signature, data, now)
        except ChainproofError as exc:
            return SignatureCheck.failed(self.key_id, exc.message)
        except (ValueError, TypeError, RuntimeError) as exc:
            # Parsers of foreign libraries signal malformed input this way; it is a reason to
            # refuse the signature, not a crash of the verifier.
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            return SignatureCheck.failed(
                self.key_id, f"the signature could not be read: {first_line}"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key_id}>"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A public key as an attestor stores it.

    ``key_type`` selects the implementation (``"PGP"`` or ``"PKIX"``); ``material`` is the
    ASCII-armored OpenPGP key or the PEM SubjectPublicKeyInfo. ``key_id`` is optional for PGP (it
    must then equal the primary key fingerprint) and, for PKIX, any string the attestor names
    (defaulting to ``sha256:<hex of the DER SubjectPublicKeyInfo>``). ``algorithm`` is the
    Binary Authorization signature algorithm name of a PKIX key.
    """

    key_type: str
    material: str | bytes
    key_id: str | None = None
    algorithm: str | None = None


KeyLoader = Callable[[KeySpec], PublicKey]

_LOADERS: dict[str, KeyLoader] = {}


def register_key_type(key_type: str) -> Callable[[KeyLoader], KeyLoader]:
    """Register ``loader`` as the builder of keys of ``key_type`` (upper case)."""

    def decorate(loader: KeyLoader) -> KeyLoader:
        name = key_type.upper()
        if name in _LOADERS:
            raise ValueError(f"key type {name!r} is registered twice")
        _LOADERS[name] = loader
        return loader

    return decorate


def key_types() -> tuple[str, ...]:
    """The key types that can be loaded, sorted."""
    _load_builtin_types()
    return tuple(sorted(_LOADERS))


def load_public_key(spec: KeySpec) -> PublicKey:
    """Build the verifying key described by ``spec``; raise InvalidArgument if it is unusable."""
    _load_builtin_types()
    loader = _LOADERS.get(spec.key_type.upper())
    if loader is None:
        raise InvalidArgument(
            f"unknown public key type {spec.key_type!r}: expected one of "
            + ", ".join(sorted(_LOADERS))
        )
    return loader(spec)


def _load_builtin_types() -> None:
    # The built-in implementations register themselves on import; importing them lazily keeps
    # this module free of an import cycle.
    from chainproof.crypto import pgp, pkix  # noqa: F401
