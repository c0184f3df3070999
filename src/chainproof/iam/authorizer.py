"""The one authorization decision for REST, gRPC, the UI and the CLI's server calls.

:meth:`Authorizer.decide` answers "may this principal use this permission on this
resource?" from what it is given: the IAM policies on the resource and its parents (the
caller loads them), the grants the credential carries itself (an API token's role), and the
bootstrap administrators from settings. Nothing is allowed by default: no binding, no
access. The decision says which role on which resource granted it, or exactly what was
missing, so a 403 can name the permission and the resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainproof.errors import PermissionDenied
from chainproof.iam import permissions as perms
from chainproof.iam.policy import IamPolicy
from chainproof.iam.principals import ANY_PROJECT, Principal
from chainproof.iam.roles import permissions_of

#: The collection of projects, for operations on no project in particular (list, create).
PROJECTS_COLLECTION = "projects"


@dataclass(frozen=True, slots=True)
class Resource:
    """What a permission is checked on: the project collection, a project, or a note."""

    project: str = ""
    note: str = ""

    @property
    def name(self) -> str:
        if not self.project:
            return PROJECTS_COLLECTION
        if self.note:
            return f"projects/{self.project}/notes/{self.note}"
        return f"projects/{self.project}"


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    permission: str
    resource: str
    member: str
    #: "roles/x on projects/p" when allowed; what is missing when denied.
    reason: str

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise PermissionDenied(self.reason)


class Authorizer:
    """Decides; never loads. ``bootstrap_admins`` hold roles/chainproof.admin everywhere."""

    def __init__(
        self,
        bootstrap_admins: Iterable[str] = (),
        static_bindings: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        self._admins = frozenset(bootstrap_admins)
        #: (member, project, role) granted by settings (e.g. the admission callers).
        self._static = tuple(static_bindings)

    def decide(
        self,
        principal: Principal,
        permission: str,
        resource: Resource,
        policies: Sequence[tuple[str, IamPolicy]] = (),
    ) -> AccessDecision:
        """``policies``: (resource name, policy) for the resource and each parent of it."""
        perms.check_known(permission)

        def allow(reason: str) -> AccessDecision:
            return AccessDecision(True, permission, resource.name, principal.member, reason)

        if principal.authenticated and principal.member in self._admins:
            return allow("bootstrap administrator (settings)")
        for grant in principal.grants:
            if (
                grant.project == ANY_PROJECT
                or (resource.project and grant.project == resource.project)
            ) and permission in permissions_of(grant.role):
                where = "every project" if grant.project == ANY_PROJECT else grant.project
                return allow(f"{grant.role} on {where} (carried by the credential)")
        members = principal.members()
        for member, project, role in self._static:
            if (
                member in members
                and project == resource.project
                and permission in permissions_of(role)
            ):
                return allow(f"{member} is granted {role} on projects/{project} (settings)")
        for name, policy in policies:
            by_member = policy.permissions_by_member
            for m in members:
                if permission in by_member.get(m, ()):
                    return allow(f"{m} is granted it on {name}")
        who = principal.member if principal.authenticated else "an anonymous caller"
        return AccessDecision(
            False,
            permission,
            resource.name,
            principal.member,
            f"permission {permission} is required on {resource.name}, and {who} does not "
            "have it; ask an administrator of the project for a role that grants it",
        )
