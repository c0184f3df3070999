"""chainproof's evidence checks: what a rule may require beyond Binary Authorization's attestors.

A rule carries them under the key ``chainproofChecks`` (see ``docs/policy.md``), one module per
check, each a :class:`~chainproof.policy.checks.base.Check`:

- ``requiredPredicates`` (:mod:`.predicates`): in-toto predicate types (SLSA provenance,
  CycloneDX/SPDX SBOM, vulnerability scan, or any URI), each signed by every named attestor;
- ``vulnerabilities`` (:mod:`.vulnerabilities`): severity thresholds for fixable and unfixable
  findings, allowed and blocked CVEs, after VEX ``not_affected``/``fixed`` statements;
- ``freshness`` (:mod:`.freshness`): the newest vulnerability scan is at most N hours old;
- ``trustedBuilders`` / ``trustedSourceRepositories`` (:mod:`.trusted_builders`,
  :mod:`.trusted_sources`): read from verified SLSA provenance (:mod:`.provenance`);
- ``trustedRepositories`` (:mod:`.trusted_repositories`): image name patterns;
- ``cel`` (:mod:`.cel`): a CEL expression over the verified statements.

:mod:`.registry` lists them and reads a rule's object; :mod:`.attested_by` owns the attestor
requirement shared with ``requireAttestationsBy`` and Kritis. Choosing the rule, and combining
results into a decision, belong to :mod:`chainproof.policy.evaluate`.
"""

from chainproof.policy.checks.attested_by import check_attested_by
from chainproof.policy.checks.base import Check, CheckContext
from chainproof.policy.checks.registry import CHECKS, ChainproofChecks, read_checks
from chainproof.policy.checks.vulnerabilities import Threshold

__all__ = [
    "CHECKS",
    "ChainproofChecks",
    "Check",
    "CheckContext",
    "Threshold",
    "check_attested_by",
    "read_checks",
]
