"""Pure cryptography of chainproof: trusted public keys and signature verification.

What lives here:

* :mod:`~chainproof.crypto.keys`: the :class:`PublicKey` contract (verify only), the
  :class:`SignatureCheck` result and the registry :func:`load_public_key` (by key type);
* :mod:`~chainproof.crypto.pgp`: OpenPGP keys (pysequoia), key type ``PGP``;
* :mod:`~chainproof.crypto.pkix`: PEM keys with Binary Authorization algorithm names, ``PKIX``;
* :mod:`~chainproof.crypto.verify`: many signatures against many keys, key ids as hints only;
* :mod:`~chainproof.crypto.dsse`: DSSE envelopes and their verification.

Signing is kept apart so that a verifier never imports it: :mod:`~chainproof.crypto.signing`
(PKIX keys and DSSE) and :mod:`~chainproof.crypto.gpg_signer` (through the ``gpg`` binary).
Nothing here performs I/O or reads the clock (except ``gpg_signer``, which runs ``gpg``).
"""

from chainproof.crypto.dsse import DsseEnvelope, DsseSignature, pae, verify_envelope
from chainproof.crypto.keys import (
    KeySpec,
    PublicKey,
    SignatureCheck,
    key_types,
    load_public_key,
    register_key_type,
)
from chainproof.crypto.pgp import PgpPublicKey
from chainproof.crypto.pkix import ALGORITHMS, PkixPublicKey, pkix_fingerprint
from chainproof.crypto.verify import SignatureInput, SignaturesVerification, verify_signatures

__all__ = [
    "ALGORITHMS",
    "DsseEnvelope",
    "DsseSignature",
    "KeySpec",
    "PgpPublicKey",
    "PkixPublicKey",
    "PublicKey",
    "SignatureCheck",
    "SignatureInput",
    "SignaturesVerification",
    "key_types",
    "load_public_key",
    "pae",
    "pkix_fingerprint",
    "register_key_type",
    "verify_envelope",
    "verify_signatures",
]
