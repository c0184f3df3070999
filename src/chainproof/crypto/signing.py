"""Signing for the command line: PKIX key generation, PKIX signatures and DSSE envelopes.

This module owns everything that touches a PKIX *private* key: :func:`generate_pkix_key`
(ECDSA P-256 by default; P-384, P-521, Ed25519, RSA 2048/3072/4096 with PSS or PKCS#1),
:class:`PkixSigner` (sign bytes the way the matching verifier in :mod:`chainproof.crypto.pkix`
checks them, RSA-PSS with a salt as long as the digest like Cloud KMS) and :func:`sign_envelope`
(a DSSE envelope signed by one or more signers).

Verifiers never import this module. GnuPG signing is in :mod:`chainproof.crypto.gpg_signer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from chainproof.crypto.dsse import DsseEnvelope, DsseSignature, pae
from chainproof.crypto.pkix import ALGORITHMS, PkixAlgorithm, PkixPublicKey
from chainproof.errors import InvalidArgument

__all__ = [
    "DEFAULT_PKIX_ALGORITHM",
    "GeneratedKey",
    "PkixSigner",
    "Signer",
    "generate_pkix_key",
    "sign_envelope",
]

DEFAULT_PKIX_ALGORITHM = "ECDSA_P256_SHA256"

_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
}


def _new_rsa(alg: PkixAlgorithm) -> PrivateKeyTypes:
    assert alg.rsa_bits is not None
    return rsa.generate_private_key(public_exponent=65537, key_size=alg.rsa_bits)


def _new_ec(alg: PkixAlgorithm) -> PrivateKeyTypes:
    assert alg.curve is not None
    return ec.generate_private_key(_CURVES[alg.curve]())


def _new_ed25519(alg: PkixAlgorithm) -> PrivateKeyTypes:
    return ed25519.Ed25519PrivateKey.generate()


_GENERATORS: dict[str, Callable[[PkixAlgorithm], PrivateKeyTypes]] = {
    "RSA_PSS": _new_rsa,
    "RSA_PKCS1": _new_rsa,
    "ECDSA": _new_ec,
    "ED25519": _new_ed25519,
}


def _sign_rsa_pss(alg: PkixAlgorithm, key: PrivateKeyTypes, data: bytes) -> bytes:
    assert isinstance(key, rsa.RSAPrivateKey)
    digest = alg.digest()
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.DIGEST_LENGTH)
    return key.sign(data, pss, digest)


def _sign_rsa_pkcs1(alg: PkixAlgorithm, key: PrivateKeyTypes, data: bytes) -> bytes:
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), alg.digest())


def _sign_ecdsa(alg: PkixAlgorithm, key: PrivateKeyTypes, data: bytes) -> bytes:
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(data, ec.ECDSA(alg.digest()))


def _sign_ed25519(alg: PkixAlgorithm, key: PrivateKeyTypes, data: bytes) -> bytes:
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(data)


_SIGNERS: dict[str, Callable[[PkixAlgorithm, PrivateKeyTypes, bytes], bytes]] = {
    "RSA_PSS": _sign_rsa_pss,
    "RSA_PKCS1": _sign_rsa_pkcs1,
    "ECDSA": _sign_ecdsa,
    "ED25519": _sign_ed25519,
}


def _algorithm(name: str) -> PkixAlgorithm:
    found = ALGORITHMS.get(name.strip().upper())
    if found is None:
        raise InvalidArgument(
            f"unknown PKIX signature algorithm {name!r}: expected one of "
            + ", ".join(sorted(ALGORITHMS))
        )
    return found


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key pair in PEM (PKCS#8 private key, unencrypted unless a password was given)."""

    algorithm: str
    private_pem: bytes
    public_pem: bytes
    fingerprint: str


def generate_pkix_key(
    algorithm: str = DEFAULT_PKIX_ALGORITHM, *, password: bytes | None = None
) -> GeneratedKey:
    """Generate a key pair for ``algorithm`` (a Binary Authorization name, or ``ED25519``)."""
    alg = _algorithm(algorithm)
    private = _GENERATORS[alg.family](alg)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = PkixPublicKey(private.public_key(), alg)
    return GeneratedKey(
        algorithm=alg.canonical_name,
        private_pem=private_pem,
        public_pem=public.public_pem().encode(),
        fingerprint=public.fingerprint,
    )


class Signer(Protocol):
    """Anything that signs bytes and names the key id verifiers will see."""

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class PkixSigner:
    """Signs with a PKIX private key as :class:`chainproof.crypto.pkix.PkixPublicKey` verifies."""

    def __init__(
        self, private_key: PrivateKeyTypes, algorithm: str | None = None, key_id: str | None = None
    ) -> None:
        public = (
            PkixPublicKey(private_key.public_key(), _algorithm(algorithm), key_id)
            if algorithm
            else PkixPublicKey.from_pem(
                private_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                key_id=key_id,
            )
        )
        self._private = private_key
        self.public_key = public
        self.algorithm = public.algorithm

    @classmethod
    def from_pem(
        cls,
        pem: bytes | str,
        algorithm: str | None = None,
        key_id: str | None = None,
        password: bytes | None = None,
    ) -> PkixSigner:
        raw = pem.encode() if isinstance(pem, str) else pem
        try:
            private = serialization.load_pem_private_key(raw, password=password)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"not a usable PEM private key (wrong password, or not PKCS#8/PKCS#1/SEC1): {exc}"
            ) from exc
        return cls(private, algorithm, key_id)

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def sign(self, data: bytes) -> bytes:
        return _SIGNERS[self.algorithm.family](self.algorithm, self._private, data)


def sign_envelope(payload: bytes, payload_type: str, signers: Sequence[Signer]) -> DsseEnvelope:
    """A DSSE envelope over ``payload`` signed by every signer (at least one)."""
    if not signers:
        raise InvalidArgument("a DSSE envelope needs at least one signer")
    encoded = pae(payload_type, payload)
    return DsseEnvelope(
        payload=payload,
        payload_type=payload_type,
        signatures=tuple(DsseSignature(s.sign(encoded), s.key_id) for s in signers),
    )
