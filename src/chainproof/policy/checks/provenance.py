"""Build provenance as the checks read it: facts the service extracted plus those read off
verified SLSA attestations (v1, v0.2, v0.1), and the one rule both provenance checks apply —
every provenance about the digest must be trusted, not just one of them.

Used by :mod:`.trusted_builders`, :mod:`.trusted_sources` and the CEL activation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from chainproof.attest.predicates import predicate_kind
from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader, index
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import ImageEvidence, ProvenanceFact, VerifiedAttestation
from chainproof.policy.patterns import StringPattern, compile_string_pattern


def provenance_facts(evidence: ImageEvidence) -> tuple[ProvenanceFact, ...]:
    """Facts the service extracted, plus those read off verified SLSA attestations."""
    facts = list(evidence.provenance)
    known = {f.occurrence for f in facts if f.occurrence}
    for att in evidence.attestations:
        if att.occurrence in known or att.predicate is None:
            continue
        if predicate_kind(att.predicate_type or "") != "slsa-provenance":
            continue
        fact = _fact_from_slsa(att)
        if fact is not None:
            facts.append(fact)
    return tuple(facts)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _fact_from_slsa(att: VerifiedAttestation) -> ProvenanceFact | None:
    p = att.predicate
    # SLSA v1 first, then v0.2/v0.1.
    builder = _get(p, "runDetails", "builder", "id") or _get(p, "builder", "id")
    if not isinstance(builder, str):
        return None
    sources: list[str] = []
    ext = _get(p, "buildDefinition", "externalParameters")
    for candidate in (
        _get(ext, "source"),
        _get(ext, "source", "uri"),
        _get(ext, "workflow", "repository"),
        _get(p, "invocation", "configSource", "uri"),
    ):
        if isinstance(candidate, str):
            sources.append(candidate)
    if not sources:
        deps = _get(p, "buildDefinition", "resolvedDependencies") or _get(p, "materials") or []
        if isinstance(deps, list):
            sources.extend(
                d["uri"]
                for d in deps
                if isinstance(d, Mapping)
                and isinstance(d.get("uri"), str)
                and d["uri"].startswith("git+")
            )
    return ProvenanceFact(builder, tuple(sources), att.occurrence, att.attestor)


def judge_provenance(
    ctx: CheckContext,
    *,
    kind: str,
    name: str,
    patterns: Sequence[StringPattern],
    values: Callable[[ProvenanceFact], Iterable[str]],
    what: str,
) -> RequirementResult:
    image = ctx.image.canonical
    facts = provenance_facts(ctx.evidence)
    consulted = tuple(f.occurrence for f in facts if f.occurrence)
    trusted = ", ".join(p.text for p in patterns)
    if not facts:
        return RequirementResult(
            kind,
            name,
            False,
            f"no verified SLSA provenance for {image}: attest the build's provenance with a "
            "trusted attestor",
        )
    # Every provenance about this digest must agree: one trusted build does not excuse another
    # claim, for the same bytes, by a builder or source nobody trusts.
    for fact in facts:
        items = list(values(fact))
        if not items:
            return RequirementResult(
                kind,
                name,
                False,
                f"provenance {fact.occurrence or '(unnamed)'} for {image} names no {what}; the "
                f"policy trusts only {trusted}",
                consulted,
            )
        for item in items:
            if not any(p.matches(item) for p in patterns):
                return RequirementResult(
                    kind,
                    name,
                    False,
                    f"provenance {fact.occurrence or '(unnamed)'} for {image} names {what} "
                    f"{item!r}, which the policy does not trust (trusted: {trusted})",
                    consulted,
                )
    return RequirementResult(
        kind, name, True, f"{len(facts)} verified provenance statements, all trusted", consulted
    )


def read_patterns(
    checks: FieldReader, key: str, *, normalise: bool = False
) -> tuple[StringPattern, ...]:
    """The string patterns listed under ``key``, each bad one reported with its index."""
    out: list[StringPattern] = []
    for i, text in enumerate(checks.string_list(key)):
        try:
            out.append(compile_string_pattern(text, normalise=normalise))
        except InvalidArgument as exc:
            checks.problems.add(index(checks.at(key), i), exc.message)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ProvenancePatterns:
    """A check that every verified provenance names values matching one of ``patterns``.

    Subclasses say which key they read, how their result is named, and which values of a
    provenance fact they compare (:meth:`values`).
    """

    key: ClassVar[str]
    kind: ClassVar[str]
    name: ClassVar[str]
    what: ClassVar[str]
    normalise: ClassVar[bool] = False
    patterns: tuple[StringPattern, ...]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        patterns = read_patterns(checks, cls.key, normalise=cls.normalise)
        return cls(patterns) if patterns else None

    def to_dict(self) -> Any:
        return [p.text for p in self.patterns]

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [
            judge_provenance(
                ctx,
                kind=self.kind,
                name=self.name,
                patterns=self.patterns,
                values=self.values,
                what=self.what,
            )
        ]

    def values(self, fact: ProvenanceFact) -> Iterable[str]:
        raise NotImplementedError
