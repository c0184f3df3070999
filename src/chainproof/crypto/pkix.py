"""PKIX public keys (PEM SubjectPublicKeyInfo) with Binary Authorization algorithm names.

This module owns :class:`PkixPublicKey`, registered as key type ``PKIX``, and the table of
signature algorithms (:data:`ALGORITHMS`), one entry per name Binary Authorization and Cloud
KMS use, aliases included:

* RSASSA-PSS: ``RSA_PSS_{2048,3072,4096}_SHA256``, ``RSA_PSS_4096_SHA512`` (and the
  ``RSA_SIGN_PSS_…`` spellings). Any salt length verifies; Cloud KMS and our signer use the
  digest length, OpenSSL's default is the maximum.
* RSASSA-PKCS1-v1_5: ``RSA_SIGN_PKCS1_{2048,3072,4096}_SHA256``, ``RSA_SIGN_PKCS1_4096_SHA512``.
* ECDSA: ``ECDSA_P256_SHA256`` / ``EC_SIGN_P256_SHA256``, ``ECDSA_P384_SHA384`` /
  ``EC_SIGN_P384_SHA384``, ``ECDSA_P521_SHA512`` / ``EC_SIGN_P521_SHA512``. Signatures are DER
  (what ``openssl dgst -sign`` and KMS produce); a raw ``r || s`` of the exact length is also
  accepted.
* Ed25519: ``ED25519`` / ``EC_SIGN_ED25519`` (pure Ed25519 over the message).

The key's type, RSA modulus size or curve must match the algorithm name; a mismatch is refused
when the key is loaded. A PKIX key id is any string the attestor names (usually a URI); without
one it is :func:`pkix_fingerprint`, ``sha256:<hex of the DER SubjectPublicKeyInfo>``, and that
form is always accepted as a hint too.

Signing lives in :mod:`chainproof.crypto.signing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chainproof.crypto.keys import KeySpec, PublicKey, SignatureCheck, register_key_type
from chainproof.errors import InvalidArgument

__all__ = [
    "ALGORITHMS",
    "PkixAlgorithm",
    "PkixPublicKey",
    "algorithm_for_key",
    "pkix_fingerprint",
]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class PkixAlgorithm:
    """One signature algorithm: what key it needs and how a signature is checked.

    ``family`` is ``RSA_PSS``, ``RSA_PKCS1``, ``ECDSA`` or ``ED25519``; ``rsa_bits`` and
    ``curve`` say which key fits; ``hash_name`` is the digest (``None`` for Ed25519).
    """

    name: str
    family: str
    hash_name: str | None = None
    rsa_bits: int | None = None
    curve: str | None = None

    @property
    def canonical_name(self) -> str:
        """The Binary Authorization v1 spelling that this name is an alias of (or itself)."""
        return _CANONICAL.get(self.name, self.name)

    def key_problem(self, key: PublicKeyTypes) -> str | None:
        """Why ``key`` cannot be used with this algorithm, or ``None`` when it can."""
        return _KEY_CHECKS[self.family](self, key)

    def verify(self, key: PublicKeyTypes, signature: bytes, data: bytes) -> None:
        """Raise InvalidSignature unless ``signature`` over ``data`` verifies with ``key``."""
        _VERIFIERS[self.family](self, key, signature, data)

    def digest(self) -> hashes.HashAlgorithm:
        if self.hash_name is None:
            raise InvalidArgument(f"algorithm {self.name} signs the message itself, not a digest")
        return _HASHES[self.hash_name]()


def _describe(key: PublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA {key.key_size}-bit key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__}"


def _rsa_problem(alg: PkixAlgorithm, key: PublicKeyTypes) -> str | None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size == alg.rsa_bits:
        return None
    return f"algorithm {alg.name} needs an RSA {alg.rsa_bits}-bit key, but this is {_describe(key)}"


def _ec_problem(alg: PkixAlgorithm, key: PublicKeyTypes) -> str | None:
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == alg.curve:
        return None
    return f"algorithm {alg.name} needs an EC key on {alg.curve}, but this is {_describe(key)}"


def _ed25519_problem(alg: PkixAlgorithm, key: PublicKeyTypes) -> str | None:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    return f"algorithm {alg.name} needs an Ed25519 key, but this is {_describe(key)}"


def _verify_rsa_pss(alg: PkixAlgorithm, key: PublicKeyTypes, sig: bytes, data: bytes) -> None:
    assert isinstance(key, rsa.RSAPublicKey)
    digest = alg.digest()
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO)
    key.verify(sig, data, pss, digest)


def _verify_rsa_pkcs1(alg: PkixAlgorithm, key: PublicKeyTypes, sig: bytes, data: bytes) -> None:
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(sig, data, padding.PKCS1v15(), alg.digest())


def _verify_ecdsa(alg: PkixAlgorithm, key: PublicKeyTypes, sig: bytes, data: bytes) -> None:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    size = (key.curve.key_size + 7) // 8
    if len(sig) == 2 * size:
        # IEEE P1363 form (r || s), as some KMS clients and JOSE write it. Its first byte is
        # 0x30 (a DER SEQUENCE's tag) once in 256 signatures, and a DER signature of exactly
        # this length is possible (short r and s): read as r || s first, then, if that does
        # not verify and it may be DER, as DER. Either reading must verify under the key.
        raw = encode_dss_signature(
            int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
        )
        try:
            key.verify(raw, data, ec.ECDSA(alg.digest()))
            return
        except InvalidSignature:
            if sig[0] != 0x30:
                raise
    key.verify(sig, data, ec.ECDSA(alg.digest()))


def _verify_ed25519(alg: PkixAlgorithm, key: PublicKeyTypes, sig: bytes, data: bytes) -> None:
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(sig, data)


_KEY_CHECKS: dict[str, Callable[[PkixAlgorithm, PublicKeyTypes], str | None]] = {
    "RSA_PSS": _rsa_problem,
    "RSA_PKCS1": _rsa_problem,
    "ECDSA": _ec_problem,
    "ED25519": _ed25519_problem,
}
_VERIFIERS: dict[str, Callable[[PkixAlgorithm, PublicKeyTypes, bytes, bytes], None]] = {
    "RSA_PSS": _verify_rsa_pss,
    "RSA_PKCS1": _verify_rsa_pkcs1,
    "ECDSA": _verify_ecdsa,
    "ED25519": _verify_ed25519,
}


def _build_table() -> tuple[dict[str, PkixAlgorithm], dict[str, str]]:
    table: dict[str, PkixAlgorithm] = {}
    canonical: dict[str, str] = {}

    def add(alg: PkixAlgorithm, *aliases: str) -> None:
        table[alg.name] = alg
        for alias in aliases:
            table[alias] = PkixAlgorithm(alias, alg.family, alg.hash_name, alg.rsa_bits, alg.curve)
            canonical[alias] = alg.name

    for bits, digest in ((2048, "SHA256"), (3072, "SHA256"), (4096, "SHA256"), (4096, "SHA512")):
        add(
            PkixAlgorithm(f"RSA_PSS_{bits}_{digest}", "RSA_PSS", digest, rsa_bits=bits),
            f"RSA_SIGN_PSS_{bits}_{digest}",
        )
        add(PkixAlgorithm(f"RSA_SIGN_PKCS1_{bits}_{digest}", "RSA_PKCS1", digest, rsa_bits=bits))
    for size, curve, digest in (
        ("256", "secp256r1", "SHA256"),
        ("384", "secp384r1", "SHA384"),
        ("521", "secp521r1", "SHA512"),
    ):
        add(
            PkixAlgorithm(f"ECDSA_P{size}_{digest}", "ECDSA", digest, curve=curve),
            f"EC_SIGN_P{size}_{digest}",
        )
    add(PkixAlgorithm("ED25519", "ED25519"), "EC_SIGN_ED25519")
    return table, canonical


#: Every accepted algorithm name (aliases included) → its definition.
ALGORITHMS: dict[str, PkixAlgorithm]
ALGORITHMS, _CANONICAL = _build_table()

_DEFAULT_FOR_CURVE = {
    "secp256r1": "ECDSA_P256_SHA256",
    "secp384r1": "ECDSA_P384_SHA384",
    "secp521r1": "ECDSA_P521_SHA512",
}


def algorithm_for_key(key: PublicKeyTypes) -> PkixAlgorithm:
    """The algorithm an EC or Ed25519 key implies; RSA keys must be told (PSS or PKCS#1)."""
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _DEFAULT_FOR_CURVE:
        return ALGORITHMS[_DEFAULT_FOR_CURVE[key.curve.name]]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ALGORITHMS["ED25519"]
    raise InvalidArgument(
        f"cannot infer the signature algorithm of {_describe(key)}: name one of "
        + ", ".join(sorted(ALGORITHMS))
    )


def pkix_fingerprint(key: PublicKeyTypes) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo: a key id that needs no configuration."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


class PkixPublicKey(PublicKey):
    """A PEM public key bound to one signature algorithm and a key id."""

    key_type = "PKIX"

    def __init__(
        self, key: PublicKeyTypes, algorithm: PkixAlgorithm, key_id: str | None = None
    ) -> None:
        problem = algorithm.key_problem(key)
        if problem:
            raise InvalidArgument(problem)
        self._key = key
        self.algorithm = algorithm
        self.fingerprint = pkix_fingerprint(key)
        self._key_id = key_id.strip() if key_id and key_id.strip() else self.fingerprint

    @classmethod
    def from_pem(
        cls, pem: str | bytes, algorithm: str | None = None, key_id: str | None = None
    ) -> PkixPublicKey:
        """Load a PEM SubjectPublicKeyInfo; raise InvalidArgument saying what is wrong."""
        raw = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidArgument(
                "not a PEM public key: expected '-----BEGIN PUBLIC KEY-----' (for example the "
                f"output of openssl pkey -pubout): {exc}"
            ) from exc
        if algorithm is None or not algorithm.strip():
            alg = algorithm_for_key(key)
        else:
            found = ALGORITHMS.get(algorithm.strip().upper())
            if found is None:
                raise InvalidArgument(
                    f"unknown PKIX signature algorithm {algorithm!r}: expected one of "
                    + ", ".join(sorted(ALGORITHMS))
                )
            alg = found
        return cls(key, alg, key_id)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> PublicKeyTypes:
        return self._key

    def public_pem(self) -> str:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def matches_hint(self, hint: str) -> bool:
        hint = hint.strip()
        return hint == self._key_id or hint.lower() == self.fingerprint

    def _verify(self, signature: bytes, data: bytes | None, now: datetime) -> SignatureCheck:
        if data is None:
            return SignatureCheck.failed(
                self.key_id, "a PKIX signature needs the signed data, and none was given"
            )
        try:
            self.algorithm.verify(self._key, signature, data)
        except InvalidSignature:
            return SignatureCheck.failed(
                self.key_id,
                f"the signature does not verify with key {self.key_id} ({self.algorithm.name})",
            )
        return SignatureCheck(key_id=self.key_id, verified=True, signed_content=data)


@register_key_type("PKIX")
def _load_pkix(spec: KeySpec) -> PublicKey:
    return PkixPublicKey.from_pem(spec.material, spec.algorithm, spec.key_id)
