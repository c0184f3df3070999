"""Checking a set of signatures against a set of trusted keys.

This module owns the one rule every signed container in chainproof follows (Grafeas ATTESTATION
occurrences and DSSE envelopes alike): a signature's key id is only a *hint*. It decides the
order in which keys are tried, never whether a key is tried, and never trust by itself. Every
signature is tried against every trusted key until one verifies it — pairs whose hint names the
key first, so that a valid signature among many is found with little work — and verification
stops as soon as the threshold of distinct keys is met; a key counts once towards the
threshold however many signatures it made. A :class:`VerificationBudget` bounds the number of
checks a caller pays for across many verifications.

It returns a :class:`SignaturesVerification` naming the keys that verified and, for everything
that did not, the reason. It does not decide what the signed bytes mean (:mod:`chainproof.attest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chainproof.crypto.keys import PublicKey, SignatureCheck, require_aware
from chainproof.errors import InvalidArgument

__all__ = [
    "BudgetExhausted",
    "SignatureInput",
    "SignaturesVerification",
    "VerificationBudget",
    "verify_signatures",
]


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


class VerificationBudget:
    """How many signature checks (one signature against one key) the caller will pay for.

    One budget is shared by every verification of one admission review, so that no amount of
    stored signatures makes a review unbounded. :meth:`stop` may be called from another thread
    (the review's deadline has come): the next check then raises, and the verifier unwinds.
    """

    def __init__(self, max_checks: int) -> None:
        if max_checks <= 0:
            raise InvalidArgument(f"a verification budget needs at least 1 check, got {max_checks}")
        self.max_checks = max_checks
        self.spent = 0
        self._stopped: str | None = None

    def stop(self, reason: str) -> None:
        self._stopped = reason

    def spend(self) -> None:
        """Pay for one check; raise :class:`BudgetExhausted` when nothing is left."""
        if self._stopped is not None:
            raise BudgetExhausted(self._stopped)
        if self.spent >= self.max_checks:
            raise BudgetExhausted(
                f"the verification budget of {self.max_checks} signature checks per review was "
                "spent before every signature was checked (too many signatures are stored for "
                "this image: remove the ones that do not verify)"
            )
        self.spent += 1


class BudgetExhausted(Exception):
    """Verification stopped before it was complete; nothing about the rest is known."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _attempts(
    signatures: Sequence[SignatureInput], keys: Sequence[PublicKey]
) -> list[tuple[int, PublicKey]]:
    """Every (signature, key) pair once, cheapest-to-succeed first: each signature against the
    keys its hint names, then signatures without a hint against every key, then the rest.
    Hints order the work; they never decide whether a pair is tried."""
    hinted: list[tuple[int, PublicKey]] = []
    unhinted: list[tuple[int, PublicKey]] = []
    mismatched: list[tuple[int, PublicKey]] = []
    for index, item in enumerate(signatures):
        for key in keys:
            if not item.key_id_hint:
                unhinted.append((index, key))
            elif key.matches_hint(item.key_id_hint):
                hinted.append((index, key))
            else:
                mismatched.append((index, key))
    return hinted + unhinted + mismatched


def verify_signatures(
    data: bytes | None,
    signatures: Sequence[SignatureInput],
    keys: Sequence[PublicKey],
    *,
    now: datetime,
    threshold: int = 1,
    budget: VerificationBudget | None = None,
) -> SignaturesVerification:
    """Try each signature over ``data`` against each trusted key; see the module docstring.

    ``data`` is ``None`` when the signatures carry their own content (OpenPGP clearsigned or
    inline-signed messages). Raises InvalidArgument for a threshold below 1: a check that
    needs no signature would allow everything. Work stops once ``threshold`` distinct keys
    verified; each check is paid from ``budget`` (raising :class:`BudgetExhausted` when spent).
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
    by_signature: dict[int, SignatureCheck] = {}
    failures: dict[int, list[SignatureCheck]] = {}
    for index, key in _attempts(signatures, keys):
        if len(verified) >= threshold:
            break
        if index in by_signature or key.key_id in verified:
            continue  # this signature is accounted for; that key already counts once
        if budget is not None:
            budget.spend()
        check = key.verify(signatures[index].signature, data, now=now)
        if check.verified:
            verified.setdefault(check.key_id, check)
            by_signature[index] = check
        else:
            failures.setdefault(index, []).append(check)
    reasons: list[str] = []
    if len(verified) < threshold:
        for index, item in enumerate(signatures):
            if index in by_signature:
                continue
            label = f"signature {index + 1}" + (
                f" (key id {item.key_id_hint!r})" if item.key_id_hint else ""
            )
            reasons.append(f"{label}: {_summarize(failures.get(index, []))}")
    if len(verified) < threshold and verified:
        reasons.append(
            f"{len(verified)} trusted key(s) verified ({', '.join(verified)}), "
            f"but {threshold} are required"
        )
    ordered = tuple(by_signature[i] for i in sorted(by_signature))
    return SignaturesVerification(threshold, ordered, tuple(reasons))


def _summarize(failures: Sequence[SignatureCheck]) -> str:
    if not failures:
        return "not checked: every trusted key it could match already verified another signature"
    distinct = list(dict.fromkeys(f.reason for f in failures))
    if len(distinct) == 1:
        return distinct[0]
    return "; ".join(f"key {f.key_id}: {f.reason}" for f in failures)
