"""The ``trustedRepositories`` check: the image lives under a registry/repository pattern."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader, index
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult
from chainproof.policy.patterns import ImageNamePattern, compile_image_pattern


@dataclass(frozen=True, slots=True)
class TrustedRepositories:
    key: ClassVar[str] = "trustedRepositories"
    patterns: tuple[ImageNamePattern, ...]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        patterns: list[ImageNamePattern] = []
        for i, text in enumerate(checks.string_list(cls.key)):
            try:
                patterns.append(compile_image_pattern(text))
            except InvalidArgument as exc:
                checks.problems.add(index(checks.at(cls.key), i), exc.message)
        return cls(tuple(patterns)) if patterns else None

    def to_dict(self) -> Any:
        return [p.text for p in self.patterns]

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        for pattern in self.patterns:
            if pattern.matches(ctx.image):
                return [
                    RequirementResult(
                        "trusted-repository",
                        "trusted repository",
                        True,
                        f"{ctx.image.name} matches {pattern.text}",
                    )
                ]
        trusted = ", ".join(p.text for p in self.patterns)
        return [
            RequirementResult(
                "trusted-repository",
                "trusted repository",
                False,
                f"{ctx.image.name} is not in a trusted registry or repository (trusted: "
                f"{trusted}): push the image to one of them",
            )
        ]
