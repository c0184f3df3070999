"""``attestedBy``: a check that counts only evidence signed by the attestors it names.

The ``sbom``, ``packages``, ``vulnerabilities`` and ``freshness`` checks accept
``attestedBy: [projects/P/attestors/A, …]``. With it, the check sees only facts whose signature
the judge verified under one of those attestors (:meth:`ImageEvidence.signed_by`): an SBOM,
packages, scans, findings and VEX statements nobody signed do not count, and neither do those
of any other attestor. The attestors named join the rule's trusted attestors, so the scoping
of ADR 0060 holds as for every check: evidence counts only for the rules that trust its signer.
"""

from __future__ import annotations

from dataclasses import replace

from chainproof.domain.names import is_attestor_name
from chainproof.policy._fields import FieldReader, index
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.evidence import ImageEvidence

KEY = "attestedBy"


def read_attested_by(f: FieldReader) -> tuple[str, ...]:
    """The check's ``attestedBy`` list (a single name is accepted too), each name checked."""
    raw = f.raw(KEY) if f.has(KEY) else None
    if isinstance(raw, str):
        names: tuple[str, ...] = (raw,)
    else:
        names = f.string_list(KEY)
        if f.has(KEY) and isinstance(raw, list) and not raw:
            f.problems.add(f.at(KEY), "must name at least one attestor (or be left out)")
    for i, name in enumerate(names):
        if not is_attestor_name(name):
            where = f.at(KEY) if isinstance(raw, str) else index(f.at(KEY), i)
            f.problems.add(where, f"{name!r} is not of the form projects/PROJECT/attestors/ID")
    return tuple(dict.fromkeys(names))


def scoped(ctx: CheckContext, attested_by: tuple[str, ...]) -> CheckContext:
    """The context a check with ``attested_by`` judges in: only the evidence those attestors
    signed (everything the rule may count, without ``attestedBy``)."""
    if not attested_by:
        return ctx
    evidence: ImageEvidence = ctx.evidence.signed_by(frozenset(attested_by))
    return replace(ctx, evidence=evidence)


def signed_phrase(attested_by: tuple[str, ...]) -> str:
    """`` signed by A or B`` for explanations ("" without ``attestedBy``)."""
    return f" signed by {' or '.join(attested_by)}" if attested_by else ""
