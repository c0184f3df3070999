"""Every permission an operation can require, by name.

Grafeas and Binary Authorization operations carry Google's names (Container Analysis and
Binary Authorization IAM), so that a policy written for Google reads the same here. What
Google has no name for (decisions, admission, API tokens, audit logs, IAM on projects,
metrics) is ``chainproof.*``. :data:`ALL` is the closed set: a role or a route naming
anything else is a bug caught at import or start-up, not a silently open door.
"""

from __future__ import annotations

from typing import Final

# Grafeas notes (Container Analysis).
NOTES_CREATE: Final = "containeranalysis.notes.create"
NOTES_GET: Final = "containeranalysis.notes.get"
NOTES_LIST: Final = "containeranalysis.notes.list"
NOTES_UPDATE: Final = "containeranalysis.notes.update"
NOTES_DELETE: Final = "containeranalysis.notes.delete"
NOTES_ATTACH_OCCURRENCE: Final = "containeranalysis.notes.attachOccurrence"
NOTES_LIST_OCCURRENCES: Final = "containeranalysis.notes.listOccurrences"
NOTES_GET_IAM_POLICY: Final = "containeranalysis.notes.getIamPolicy"
NOTES_SET_IAM_POLICY: Final = "containeranalysis.notes.setIamPolicy"

# Grafeas occurrences.
OCCURRENCES_CREATE: Final = "containeranalysis.occurrences.create"
OCCURRENCES_GET: Final = "containeranalysis.occurrences.get"
OCCURRENCES_LIST: Final = "containeranalysis.occurrences.list"
OCCURRENCES_UPDATE: Final = "containeranalysis.occurrences.update"
OCCURRENCES_DELETE: Final = "containeranalysis.occurrences.delete"

# Binary Authorization.
ATTESTORS_CREATE: Final = "binaryauthorization.attestors.create"
ATTESTORS_GET: Final = "binaryauthorization.attestors.get"
ATTESTORS_LIST: Final = "binaryauthorization.attestors.list"
ATTESTORS_UPDATE: Final = "binaryauthorization.attestors.update"
ATTESTORS_DELETE: Final = "binaryauthorization.attestors.delete"
ATTESTORS_VERIFY_IMAGE_ATTESTED: Final = "binaryauthorization.attestors.verifyImageAttested"
POLICY_GET: Final = "binaryauthorization.policy.get"
POLICY_UPDATE: Final = "binaryauthorization.policy.update"
POLICY_EVALUATE: Final = "binaryauthorization.policy.evaluate"

# chainproof's own.
PROJECTS_CREATE: Final = "chainproof.projects.create"
PROJECTS_GET: Final = "chainproof.projects.get"
PROJECTS_LIST: Final = "chainproof.projects.list"
PROJECTS_DELETE: Final = "chainproof.projects.delete"
PROJECTS_GET_IAM_POLICY: Final = "chainproof.projects.getIamPolicy"
PROJECTS_SET_IAM_POLICY: Final = "chainproof.projects.setIamPolicy"
DECISIONS_LIST: Final = "chainproof.decisions.list"
ADMISSION_REVIEW: Final = "chainproof.admission.review"
TOKENS_CREATE: Final = "chainproof.tokens.create"
TOKENS_LIST: Final = "chainproof.tokens.list"
TOKENS_REVOKE: Final = "chainproof.tokens.revoke"
AUDIT_LOGS_LIST: Final = "chainproof.auditLogs.list"
METRICS_GET: Final = "chainproof.metrics.get"
#: OSV advisories: importing them (into the scanner's provider project) decides what every
#: project's images are found vulnerable to; reading one lists affected images of all projects.
ADVISORIES_IMPORT: Final = "chainproof.advisories.import"
ADVISORIES_GET: Final = "chainproof.advisories.get"
#: Subscriptions to outbox events: creating one makes this server send the project's events
#: to a URL or NATS subject of the creator's choosing.
SUBSCRIPTIONS_CREATE: Final = "chainproof.subscriptions.create"
SUBSCRIPTIONS_GET: Final = "chainproof.subscriptions.get"
SUBSCRIPTIONS_LIST: Final = "chainproof.subscriptions.list"
SUBSCRIPTIONS_DELETE: Final = "chainproof.subscriptions.delete"
#: The workload inventory of a project's clusters: what runs where (reverse impact, replay).
WORKLOADS_LIST: Final = "chainproof.workloads.list"
#: Continuous-validation violations: which running pods the policy now denies, and why.
VIOLATIONS_LIST: Final = "chainproof.violations.list"

ALL: Final[frozenset[str]] = frozenset(
    value for key, value in dict(globals()).items() if key.isupper() and isinstance(value, str)
)

#: Permissions whose use changes state: their use, granted or denied, is audited.
WRITES: Final[frozenset[str]] = frozenset(
    p
    for p in ALL
    if p.rsplit(".", 1)[1]
    in {
        "create",
        "update",
        "delete",
        "attachOccurrence",
        "setIamPolicy",
        "revoke",
        "review",
        "import",
    }
)


def check_known(permission: str) -> str:
    """``permission`` if chainproof defines it; ValueError (a programming error) otherwise."""
    if permission not in ALL:
        raise ValueError(f"unknown permission {permission!r}")
    return permission
