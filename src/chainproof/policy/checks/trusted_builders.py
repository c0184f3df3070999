"""The ``trustedBuilders`` check: every verified provenance names a builder the policy trusts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.checks.provenance import judge_provenance, read_patterns
from chainproof.policy.decision import RequirementResult
from chainproof.policy.patterns import StringPattern


@dataclass(frozen=True, slots=True)
class TrustedBuilders:
    key: ClassVar[str] = "trustedBuilders"
    patterns: tuple[StringPattern, ...]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        patterns = read_patterns(checks, cls.key)
        return cls(patterns) if patterns else None

    def to_dict(self) -> Any:
        return [p.text for p in self.patterns]

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [
            judge_provenance(
                ctx,
                kind="trusted-builder",
                name="trusted builder",
                patterns=self.patterns,
                values=lambda f: [f.builder_id],
                what="builder",
            )
        ]
