"""The ``requiredPredicates`` check: in-toto statements of given types, each signed by every
named attestor (SLSA provenance, a CycloneDX/SPDX SBOM, a vulnerability scan, or any URI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.attest.predicates import POLICY_ALIASES, alias_accepts
from chainproof.domain.names import is_attestor_name
from chainproof.policy._fields import FieldReader, Problems, index
from chainproof.policy.checks.attested_by import check_attested_by
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult


@dataclass(frozen=True, slots=True)
class PredicateRequirement:
    predicate_type: str  # as written: an alias of attest.predicates.POLICY_ALIASES, or a URI
    attestors: tuple[str, ...]

    def accepts(self, predicate_type: str | None) -> bool:
        """An alias accepts every version of its kinds; a URI only itself."""
        if predicate_type is None:
            return False
        if self.predicate_type in POLICY_ALIASES:
            return alias_accepts(self.predicate_type, predicate_type)
        return predicate_type == self.predicate_type


@dataclass(frozen=True, slots=True)
class RequiredPredicates:
    key: ClassVar[str] = "requiredPredicates"
    requirements: tuple[PredicateRequirement, ...]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        found = tuple(
            _read_predicate(checks.problems, path, item)
            for path, item in checks.object_list(cls.key)
        )
        return cls(found) if found else None

    def to_dict(self) -> Any:
        return [
            {"predicateType": p.predicate_type, "attestors": list(p.attestors)}
            for p in self.requirements
        ]

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [
            check_attested_by(ctx, attestor, requirement=req, kind="predicate")
            for req in self.requirements
            for attestor in req.attestors
        ]

    @property
    def attestors(self) -> frozenset[str]:
        return frozenset(a for req in self.requirements for a in req.attestors)


def _read_predicate(problems: Problems, path: str, data: object) -> PredicateRequirement:
    r = FieldReader(problems, path, data, ("predicateType", "attestors"))
    ptype = r.string("predicateType", required=True)
    if ptype and ptype not in POLICY_ALIASES and "://" not in ptype:
        problems.add(
            r.at("predicateType"),
            f"{ptype!r} is neither a URI nor one of {', '.join(POLICY_ALIASES)}",
        )
    attestors = r.string_list("attestors")
    if r.ok and not attestors:
        problems.add(r.at("attestors"), "must name at least one attestor")
    for i, name in enumerate(attestors):
        if not is_attestor_name(name):
            problems.add(
                index(r.at("attestors"), i),
                f"{name!r} is not of the form projects/PROJECT/attestors/ID",
            )
    return PredicateRequirement(ptype, attestors)
