"""The ``trustedBuilders`` check: every verified provenance names a builder the policy trusts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chainproof.policy.checks.provenance import ProvenancePatterns
from chainproof.policy.evidence import ProvenanceFact
from chainproof.policy.patterns import normalise_uri_path


@dataclass(frozen=True, slots=True)
class TrustedBuilders(ProvenancePatterns):
    key = "trustedBuilders"
    kind = "trusted-builder"
    name = "trusted builder"
    what = "builder"

    def values(self, fact: ProvenanceFact) -> Iterable[str]:
        # A builder ID is a URI too: ``…/runner/../../evil`` must not match ``…/runner/**``.
        return [normalise_uri_path(fact.builder_id)]
