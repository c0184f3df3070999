"""The ``trustedSourceRepositories`` check: every verified provenance was built from a source
repository the policy trusts (URIs compared after :func:`normalise_source_uri`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chainproof.policy.checks.provenance import ProvenancePatterns
from chainproof.policy.evidence import ProvenanceFact
from chainproof.policy.patterns import normalise_source_uri


@dataclass(frozen=True, slots=True)
class TrustedSources(ProvenancePatterns):
    key = "trustedSourceRepositories"
    kind = "trusted-source"
    name = "trusted source repository"
    what = "source repository"
    normalise = True

    def values(self, fact: ProvenanceFact) -> Iterable[str]:
        return [normalise_source_uri(u) for u in fact.source_uris]
