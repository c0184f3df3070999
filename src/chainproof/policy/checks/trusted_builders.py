"""The ``trustedBuilders`` check: every verified provenance names a builder the policy trusts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chainproof.policy.checks.provenance import ProvenancePatterns
from chainproof.policy.evidence import ProvenanceFact


@dataclass(frozen=True, slots=True)
class TrustedBuilders(ProvenancePatterns):
    key = "trustedBuilders"
    kind = "trusted-builder"
    name = "trusted builder"
    what = "builder"

    def values(self, fact: ProvenanceFact) -> Iterable[str]:
        return [fact.builder_id]
