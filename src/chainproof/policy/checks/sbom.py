"""The ``sbom`` check: the image has an SBOM, in one of the formats the rule accepts.

An SBOM counts when an SBOM_REFERENCE occurrence records it for the image (ingest writes one
per CycloneDX or SPDX document) or a verified in-toto statement with a CycloneDX or SPDX
predicate names the image. ``formats`` defaults to both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.attest.predicates import predicate_kind
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.attested_evidence import KEY, read_attested_by, scoped, signed_phrase
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult

FORMATS = {"cyclonedx": "CycloneDX", "spdx": "SPDX"}


@dataclass(frozen=True, slots=True)
class SbomCheck:
    key: ClassVar[str] = "sbom"
    formats: tuple[str, ...] = ("CycloneDX", "SPDX")
    attested_by: tuple[str, ...] = ()

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        f = FieldReader(checks.problems, checks.at(cls.key), checks.raw(cls.key), ("formats", KEY))
        named = f.string_list("formats")
        formats: list[str] = []
        for i, name in enumerate(named):
            known = FORMATS.get(name.lower())
            if known is None:
                checks.problems.add(f"{f.at('formats')}[{i}]", f"{name!r} is not CycloneDX or SPDX")
                continue
            formats.append(known)
        return cls(tuple(dict.fromkeys(formats)) or tuple(FORMATS.values()), read_attested_by(f))

    def to_dict(self) -> Any:
        out: dict[str, Any] = {"formats": list(self.formats)}
        if self.attested_by:
            out[KEY] = list(self.attested_by)
        return out

    @property
    def attestors(self) -> frozenset[str]:
        return frozenset(self.attested_by)

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        ctx = scoped(ctx, self.attested_by)
        wanted = " or ".join(self.formats)
        name = f"{wanted} SBOM{signed_phrase(self.attested_by)}"
        found = [s for s in ctx.evidence.sboms if s.format in self.formats]
        consulted = tuple(s.occurrence for s in ctx.evidence.sboms if s.occurrence)
        if found:
            s = found[0]
            signer = f" signed by {s.attestor}" if s.attestor else ""
            return [
                RequirementResult(
                    "sbom",
                    name,
                    True,
                    f"{s.format} {s.version} SBOM {s.occurrence}{signer}",
                    consulted,
                )
            ]
        for att in ctx.evidence.attestations:
            kind = predicate_kind(att.predicate_type or "")
            if kind in FORMATS and FORMATS[kind] in self.formats:
                return [
                    RequirementResult(
                        "sbom",
                        name,
                        True,
                        f"verified {FORMATS[kind]} attestation {att.occurrence}",
                        (att.occurrence,),
                    )
                ]
        other = sorted({s.format for s in ctx.evidence.sboms})
        seen = f" (found only {', '.join(other)})" if other else ""
        return [
            RequirementResult(
                "sbom",
                name,
                False,
                f"no {wanted} SBOM{signed_phrase(self.attested_by)} is recorded for "
                f"{ctx.image.canonical}{seen}: "
                + (
                    "sign it (an in-toto statement in a DSSE envelope) with that attestor's key "
                    "and `chainproof ingest --attestor` the envelope"
                    if self.attested_by
                    else "generate one (syft, cyclonedx-py, trivy) and `chainproof ingest` it"
                ),
                consulted,
            )
        ]
