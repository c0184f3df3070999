"""Checking a set of signatures against a set of trusted keys.

This module owns the one rule every signed container in chainproof follows (Grafeas ATTESTATION
occurrences and DSSE envelopes alike): a signature's key id is only a *hint*. It decides the
order in which keys are tried, never whether a key is tried, and never trust by itself. Every
signature is tried against every trusted key until one verifies it; a key counts once towards
the threshold however many signatures it made.

It returns a :class:`SignaturesVerification` naming the keys that verified and, for everything
that did not, the reason. It does not decide what the signed bytes mean (:mod:`chainproof.attest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chainproof.crypto.keys import PublicKey, SignatureCheck, require_aware
from chainproof.errors import InvalidArgument

__all__ = ["SignatureInput", "SignaturesVerification", "verify_signatures"]


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """One signature as a container carries it, with the key id it claims (maybe empty)."""

    signature: bytes
    key_id_hint: str = ""


@dataclass(frozen=True, slots=True)
class SignaturesVerification:
    """Which trusted keys verified, and why the rest did not.

    ``checks`` holds one successful :class:`SignatureCheck` per distinct key that verified, in
    the order of the signatures. ``reasons`` holds one line per signature that no trusted key
    verified (or one line saying why nothing could be checked at all).
    """

    threshold: int
    checks: tuple[SignatureCheck, ...]
    reasons: tuple[str, ...]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(c.key_id for c in self.checks)

    @property
    def verified(self) -> bool:
        return len(self.checks) >= self.threshold


def _ordered(keys: Sequence[PublicKey], hint: str) -> list[PublicKey]:
    if not hint:
        return list(keys)
    hinted = [k for k in keys if k.matches_hint(hint)]
    return hinted + [k for k in keys if not k.matches_hint(hint)]


def verify_signatures(
    data: bytes | None,
    signatures: Sequence[SignatureInput],
    keys: Sequence[PublicKey],
    *,
    now: datetime,
    threshold: int = 1,
) -> SignaturesVerification:
    """Try each signature over ``data`` against each trusted key; see the module docstring.

    ``data`` is ``None`` when the signatures carry their own content (OpenPGP clearsigned or
    inline-signed messages). Raises InvalidArgument for a threshold below 1: a check that
    needs no signature would allow everything.
    """
    if threshold <= 0:
        raise InvalidArgument(
            f"signature threshold must be at least 1, got {threshold}: a threshold of 0 "
            "would accept unsigned content"
        )
    require_aware(now)
    if not signatures:
        return SignaturesVerification(threshold, (), ("the attestation carries no signatures",))
    if not keys:
        return SignaturesVerification(
            threshold, (), ("no trusted public keys were given to verify the signatures with",)
        )

    verified: dict[str, SignatureCheck] = {}
    reasons: list[str] = []
    for index, item in enumerate(signatures, start=1):
        label = f"signature {index}" + (
            f" (key id {item.key_id_hint!r})" if item.key_id_hint else ""
        )
        failures: list[SignatureCheck] = []
        for key in _ordered(keys, item.key_id_hint):
            check = key.verify(item.signature, data, now=now)
            if check.verified:
                verified.setdefault(check.key_id, check)
                break
            failures.append(check)
        else:
            reasons.append(f"{label}: {_summarize(failures)}")
    if len(verified) < threshold and verified:
        reasons.append(
            f"{len(verified)} trusted key(s) verified ({', '.join(verified)}), "
            f"but {threshold} are required"
        )
    return SignaturesVerification(threshold, tuple(verified.values()), tuple(reasons))


def _summarize(failures: Sequence[SignatureCheck]) -> str:
    distinct = list(dict.fromkeys(f.reason for f in failures))
    if len(distinct) == 1:
        return distinct[0]
    return "; ".join(f"key {f.key_id}: {f.reason}" for f in failures)
