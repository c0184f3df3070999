"""The ``vex`` check: the image's vulnerability findings come with VEX (seed 002: "vulnerability
scan reports should be in VEX format").

Passes when the image has a vulnerability scan and at least one VEX statement that concerns it
(an assessment ingested onto its findings, or a verified OpenVEX attestation about it). With
``requireEveryFinding``, every finding must carry an assessment (any status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult


@dataclass(frozen=True, slots=True)
class VexCheck:
    key: ClassVar[str] = "vex"
    every_finding: bool = False

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        f = FieldReader(
            checks.problems, checks.at(cls.key), checks.raw(cls.key), ("requireEveryFinding",)
        )
        return cls(f.boolean("requireEveryFinding", default=False))

    def to_dict(self) -> Any:
        return {"requireEveryFinding": True} if self.every_finding else {}

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        name = "vulnerability scan with VEX"
        image = ctx.image.canonical
        sources = tuple(dict.fromkeys(v.source for v in ctx.evidence.vex))
        if not ctx.evidence.scans:
            return [
                RequirementResult(
                    "vex", name, False, f"no vulnerability scan is recorded for {image}", sources
                )
            ]
        if not ctx.evidence.vex:
            return [
                RequirementResult(
                    "vex",
                    name,
                    False,
                    f"no VEX statement concerns {image}: ingest an OpenVEX, CycloneDX VEX or "
                    "CSAF document for it",
                )
            ]
        if self.every_finding:
            assessed = {v.finding for v in ctx.evidence.vex if v.finding}
            missing = [f for f in ctx.evidence.vulnerabilities if f.occurrence not in assessed]
            if missing:
                shown = ", ".join(f"{f.cve} in {f.package}" for f in missing[:5])
                return [
                    RequirementResult(
                        "vex",
                        name,
                        False,
                        f"{len(missing)} findings of {image} have no VEX assessment: {shown}",
                        sources,
                    )
                ]
        return [
            RequirementResult(
                "vex",
                name,
                True,
                f"{len(ctx.evidence.vex)} VEX statements concern {image}",
                sources,
            )
        ]
