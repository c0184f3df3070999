"""The predefined roles: named bundles of permissions.

Names follow Google's predefined roles (Container Analysis, Binary Authorization) where one
exists, with the same intent: ``notes.attacher`` may attach occurrences to a note and nothing
else, ``occurrences.editor`` records facts, ``attestorsVerifier`` checks attestations.
chainproof adds a role for the admission caller (the Kubernetes API server), one for reading
decisions and audit logs, and ``roles/chainproof.admin`` with every permission.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as p

_NOTES_READ = {p.NOTES_GET, p.NOTES_LIST, p.NOTES_LIST_OCCURRENCES}
_OCC_READ = {p.OCCURRENCES_GET, p.OCCURRENCES_LIST}

_ROLES: dict[str, frozenset[str]] = {
    "roles/containeranalysis.admin": frozenset(
        x for x in p.ALL if x.startswith("containeranalysis.")
    ),
    "roles/containeranalysis.notes.editor": frozenset(
        _NOTES_READ | {p.NOTES_CREATE, p.NOTES_UPDATE, p.NOTES_DELETE}
    ),
    "roles/containeranalysis.notes.viewer": frozenset(_NOTES_READ),
    "roles/containeranalysis.notes.occurrences.viewer": frozenset(
        {p.NOTES_GET, p.NOTES_LIST_OCCURRENCES}
    ),
    "roles/containeranalysis.notes.attacher": frozenset({p.NOTES_GET, p.NOTES_ATTACH_OCCURRENCE}),
    "roles/containeranalysis.occurrences.editor": frozenset(
        _OCC_READ | {p.OCCURRENCES_CREATE, p.OCCURRENCES_UPDATE, p.OCCURRENCES_DELETE}
    ),
    "roles/containeranalysis.occurrences.viewer": frozenset(_OCC_READ),
    "roles/binaryauthorization.attestorsAdmin": frozenset(
        {
            p.ATTESTORS_CREATE,
            p.ATTESTORS_GET,
            p.ATTESTORS_LIST,
            p.ATTESTORS_UPDATE,
            p.ATTESTORS_DELETE,
            p.ATTESTORS_VERIFY_IMAGE_ATTESTED,
        }
    ),
    "roles/binaryauthorization.attestorsEditor": frozenset(
        {p.ATTESTORS_CREATE, p.ATTESTORS_GET, p.ATTESTORS_LIST, p.ATTESTORS_UPDATE}
    ),
    "roles/binaryauthorization.attestorsViewer": frozenset({p.ATTESTORS_GET, p.ATTESTORS_LIST}),
    "roles/binaryauthorization.attestorsVerifier": frozenset(
        {p.ATTESTORS_GET, p.ATTESTORS_VERIFY_IMAGE_ATTESTED}
    ),
    "roles/binaryauthorization.policyEditor": frozenset({p.POLICY_GET, p.POLICY_UPDATE}),
    "roles/binaryauthorization.policyViewer": frozenset({p.POLICY_GET}),
    "roles/binaryauthorization.policyEvaluator": frozenset({p.POLICY_GET, p.POLICY_EVALUATE}),
    # The Kubernetes API server calling the admission webhooks: it may ask for a decision
    # (which records that decision) and nothing else.
    "roles/chainproof.admissionCaller": frozenset({p.ADMISSION_REVIEW}),
    "roles/chainproof.decisionsViewer": frozenset({p.DECISIONS_LIST}),
    # Issues API tokens for CI; a token never carries more than its creator holds.
    "roles/chainproof.tokenCreator": frozenset({p.TOKENS_CREATE, p.TOKENS_LIST, p.TOKENS_REVOKE}),
    "roles/chainproof.auditViewer": frozenset({p.AUDIT_LOGS_LIST}),
    "roles/chainproof.metricsViewer": frozenset({p.METRICS_GET}),
    # Feeds OSV advisories to the scanner (granted on its provider project).
    "roles/chainproof.advisoriesImporter": frozenset({p.ADVISORIES_IMPORT}),
    # Manages where a project's events go (webhooks, NATS subjects) and reads dead letters.
    "roles/chainproof.subscriptionsAdmin": frozenset(
        {
            p.SUBSCRIPTIONS_CREATE,
            p.SUBSCRIPTIONS_GET,
            p.SUBSCRIPTIONS_LIST,
            p.SUBSCRIPTIONS_DELETE,
        }
    ),
    "roles/chainproof.subscriptionsViewer": frozenset({p.SUBSCRIPTIONS_GET, p.SUBSCRIPTIONS_LIST}),
    # Reads what runs where in the project's clusters.
    "roles/chainproof.workloadsViewer": frozenset({p.WORKLOADS_LIST}),
    # Reads which running pods violate the policy (continuous validation).
    "roles/chainproof.violationsViewer": frozenset({p.VIOLATIONS_LIST}),
    "roles/chainproof.viewer": frozenset(
        _NOTES_READ
        | _OCC_READ
        | {
            p.ATTESTORS_GET,
            p.ATTESTORS_LIST,
            p.POLICY_GET,
            p.DECISIONS_LIST,
            p.WORKLOADS_LIST,
            p.VIOLATIONS_LIST,
        }
        | {p.PROJECTS_GET, p.PROJECTS_LIST}
    ),
    "roles/chainproof.admin": p.ALL,
}

for _role, _perms in _ROLES.items():
    for _perm in _perms:
        p.check_known(_perm)

#: Role name → the permissions it grants.
ROLES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(_ROLES)
ADMIN: Final = "roles/chainproof.admin"


def permissions_of(role: str) -> frozenset[str]:
    """The permissions ``role`` grants; an unknown role grants nothing."""
    return ROLES.get(role, frozenset())


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(
            f"role {role!r} is not a chainproof role; expected one of: {', '.join(sorted(ROLES))}"
        )
    return role
