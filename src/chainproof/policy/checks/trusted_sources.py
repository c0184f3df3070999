"""The ``trustedSourceRepositories`` check: every verified provenance was built from a source
repository the policy trusts (URIs compared after :func:`normalise_source_uri`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.checks.provenance import judge_provenance, read_patterns
from chainproof.policy.decision import RequirementResult
from chainproof.policy.patterns import StringPattern, normalise_source_uri


@dataclass(frozen=True, slots=True)
class TrustedSources:
    key: ClassVar[str] = "trustedSourceRepositories"
    patterns: tuple[StringPattern, ...]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        patterns = read_patterns(checks, cls.key, normalise=True)
        return cls(patterns) if patterns else None

    def to_dict(self) -> Any:
        return [p.text for p in self.patterns]

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [
            judge_provenance(
                ctx,
                kind="trusted-source",
                name="trusted source repository",
                patterns=self.patterns,
                values=lambda f: [normalise_source_uri(u) for u in f.source_uris],
                what="source repository",
            )
        ]
