"""The registry of checks and a rule's parsed ``chainproofChecks``.

:data:`CHECKS` lists every check class in the order a rule's checks are judged (and written
back). :func:`read_checks` asks each class for its key; :class:`ChainproofChecks` holds the
checks a rule asks for and judges them in that order. To add a check, write its module next to
the others (a frozen dataclass with ``key``, ``parse``, ``to_dict`` and ``judge``) and add its
class here; ``docs/policy.md`` documents what authors write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from chainproof.policy._fields import FieldReader, Problems
from chainproof.policy.checks.base import Check, CheckContext
from chainproof.policy.checks.cel import CelCheck
from chainproof.policy.checks.freshness import Freshness
from chainproof.policy.checks.image_index import ImageIndexCheck
from chainproof.policy.checks.packages import PackageRules
from chainproof.policy.checks.predicates import RequiredPredicates
from chainproof.policy.checks.sbom import SbomCheck
from chainproof.policy.checks.trusted_builders import TrustedBuilders
from chainproof.policy.checks.trusted_repositories import TrustedRepositories
from chainproof.policy.checks.trusted_sources import TrustedSources
from chainproof.policy.checks.vex_statements import VexCheck
from chainproof.policy.checks.vulnerabilities import VulnerabilityCheck
from chainproof.policy.decision import RequirementResult

#: Every check, in judging order: signed statements first (beside ``requireAttestationsBy``),
#: then what the evidence says, then the free-form CEL expression.
CHECKS: tuple[type[Check], ...] = (
    RequiredPredicates,
    ImageIndexCheck,
    VulnerabilityCheck,
    Freshness,
    TrustedBuilders,
    TrustedSources,
    TrustedRepositories,
    SbomCheck,
    VexCheck,
    PackageRules,
    CelCheck,
)

C = TypeVar("C", bound=Check)


@dataclass(frozen=True, slots=True)
class ChainproofChecks:
    """The checks one rule asks for, in :data:`CHECKS` order (none: an empty tuple)."""

    checks: tuple[Check, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.checks

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def get(self, kind: type[C]) -> C | None:
        """The rule's check of class ``kind``, if it has one."""
        for check in self.checks:
            if isinstance(check, kind):
                return check
        return None

    @property
    def attestors(self) -> frozenset[str]:
        """Attestors the checks name (the service fetches them before judging):
        ``requiredPredicates`` and every check's ``attestedBy``."""
        names: set[str] = set()
        for check in self.checks:
            names |= getattr(check, "attestors", frozenset())
        return frozenset(names)

    @property
    def requires_nothing(self) -> bool:
        """No check here requires anything of the image (``imageIndex`` only qualifies the
        attestor requirements: alone, it requires nothing)."""
        return all(isinstance(c, ImageIndexCheck) for c in self.checks)

    @property
    def every_platform(self) -> bool:
        """Whether the rule wants evidence on every platform manifest of an image index."""
        index = self.get(ImageIndexCheck)
        return index is not None and index.every_platform

    def to_dict(self) -> dict[str, Any]:
        return {check.key: check.to_dict() for check in self.checks}

    def judge(self, ctx: CheckContext) -> list[RequirementResult]:
        results: list[RequirementResult] = []
        for check in self.checks:
            results.extend(check.judge(ctx))
        return results


def read_checks(problems: Problems, path: str, data: object) -> ChainproofChecks:
    """A rule's ``chainproofChecks`` object, every problem reported with its path."""
    reader = FieldReader(problems, path, data, (c.key for c in CHECKS))
    found = (cls.parse(reader) for cls in CHECKS)
    return ChainproofChecks(tuple(c for c in found if c is not None))
