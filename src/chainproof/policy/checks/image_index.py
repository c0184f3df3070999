"""Multi-architecture images: whether a rule's attestors must vouch for every platform.

A pod may name an image *index* (a multi-architecture image): the node then pulls the
per-platform manifest that fits it. By default evidence on the index digest is enough — the
index names its children by digest, so signing it covers what it lists. A rule that wants more
says so in its ``chainproofChecks``::

    imageIndex:
      everyPlatform: true   # every per-platform manifest must carry evidence too

Then every attestor the rule names needs verified evidence on each per-platform manifest as
well as on the index. For compatibility an attestor's own ``requireSignedChildren: true`` asks
the same of that attestor's evidence under every rule that names it (the stricter of the two
settings applies). buildx attestation manifests (``unknown/unknown`` entries annotated
``vnd.docker.reference.type: attestation-manifest``) are not platforms and are skipped by the
reader.

This module owns the check's key and :func:`every_platform_attestors` (which attestors the
requirement covers, asked by the service before gathering and by the evaluator) and
:func:`platform_requirements` (the results, one per attestor, naming the first unsigned
platform manifests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.domain.images import ImageReference
from chainproof.policy._fields import FieldReader
from chainproof.policy.attestors import Attestor
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import ImageEvidence

#: Unsigned platform manifests named in one reason, at most (the decision lists them all).
_NAMED = 4


@dataclass(frozen=True, slots=True)
class ImageIndexCheck:
    key: ClassVar[str] = "imageIndex"
    every_platform: bool

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        if not checks.has(cls.key):
            return None
        f = FieldReader(
            checks.problems, checks.at(cls.key), checks.raw(cls.key), ("everyPlatform",)
        )
        if not f.has("everyPlatform") and f.ok:
            checks.problems.add(f.at("everyPlatform"), "is required (true or false)")
        return cls(f.boolean("everyPlatform", default=False))

    def to_dict(self) -> Any:
        return {"everyPlatform": self.every_platform}

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        # A setting, not a requirement of its own: the evaluator judges it beside the attestor
        # requirements (it needs the rule's attestors), through platform_requirements.
        return []


def every_platform_attestors(
    trusted: Sequence[str], every_platform: bool, attestors: Mapping[str, Attestor]
) -> tuple[str, ...]:
    """The rule's attestors whose evidence each platform manifest of an index must carry:
    all of them when the rule says ``everyPlatform``, else those whose own document asks for
    it (``requireSignedChildren``, kept for compatibility)."""
    if every_platform:
        return tuple(trusted)
    return tuple(
        n for n in trusted if (a := attestors.get(n)) is not None and a.require_signed_children
    )


def platform_requirements(
    image: ImageReference, evidence: ImageEvidence, names: Sequence[str]
) -> list[RequirementResult]:
    """One result per attestor in ``names``: does every platform manifest carry its evidence?"""
    results: list[RequirementResult] = []
    for name in names:
        what = f"evidence by {name} on every platform manifest"
        if evidence.platforms is None:
            results.append(
                RequirementResult(
                    "platforms",
                    what,
                    False,
                    f"whether {image.canonical} is an image index, and what it lists, was not "
                    "read, so evidence on its platform manifests cannot be shown",
                )
            )
            continue
        if not evidence.platforms:
            results.append(
                RequirementResult(
                    "platforms", what, True, f"{image.canonical} is a single-platform manifest"
                )
            )
            continue
        unsigned = [p for p in evidence.platforms if not p.attested_by.get(name)]
        sources = tuple(s for p in evidence.platforms for s in p.attested_by.get(name, ()))
        if not unsigned:
            results.append(
                RequirementResult(
                    "platforms",
                    what,
                    True,
                    f"all {len(evidence.platforms)} platform manifests of the index carry "
                    f"verified evidence by {name}",
                    sources,
                )
            )
            continue
        named = ", ".join(p.describe() for p in unsigned[:_NAMED])
        more = f" and {len(unsigned) - _NAMED} more" if len(unsigned) > _NAMED else ""
        results.append(
            RequirementResult(
                "platforms",
                what,
                False,
                f"{image.canonical} is an image index and the rule requires evidence by {name} "
                f"on every platform manifest; {len(unsigned)} of {len(evidence.platforms)} carry "
                f"none: {named}{more}; sign each platform manifest (cosign sign --recursive)",
                sources + tuple(f"{image.name}@{p.digest}" for p in unsigned),
            )
        )
    return results
