"""The authorization decision: roles, bindings, grants, wide members, denial messages."""

from __future__ import annotations

import pytest

from chainproof.errors import PermissionDenied
from chainproof.iam import permissions as p
from chainproof.iam.authorizer import Authorizer, Resource
from chainproof.iam.policy import EMPTY_POLICY, IamPolicy
from chainproof.iam.principals import ANY_PROJECT, Grant, Principal, anonymous, user
from chainproof.iam.roles import ADMIN, ROLES

ALICE = user("alice@example.com", via="oidc")
PROJECT = Resource("prod")


def test_nothing_is_allowed_without_a_binding() -> None:
    d = Authorizer().decide(ALICE, p.NOTES_GET, PROJECT, [("projects/prod", EMPTY_POLICY)])
    assert not d.allowed
    assert "containeranalysis.notes.get" in d.reason and "projects/prod" in d.reason
    with pytest.raises(PermissionDenied, match=r"notes\.get.*projects/prod"):
        d.raise_if_denied()


def test_binding_grants_exactly_the_roles_permissions() -> None:
    policy = IamPolicy.of([("roles/containeranalysis.occurrences.editor", [ALICE.member])])
    az = Authorizer()
    for perm in sorted(p.ALL):
        allowed = az.decide(ALICE, perm, PROJECT, [("projects/prod", policy)]).allowed
        assert allowed == (perm in ROLES["roles/containeranalysis.occurrences.editor"]), perm


def test_all_users_includes_anonymous_all_authenticated_does_not() -> None:
    az = Authorizer()
    anyone = IamPolicy.of([("roles/containeranalysis.notes.viewer", ["allUsers"])])
    signed_in = IamPolicy.of([("roles/containeranalysis.notes.viewer", ["allAuthenticatedUsers"])])
    assert az.decide(anonymous(), p.NOTES_GET, PROJECT, [("projects/prod", anyone)]).allowed
    assert not az.decide(anonymous(), p.NOTES_GET, PROJECT, [("projects/prod", signed_in)]).allowed
    assert az.decide(ALICE, p.NOTES_GET, PROJECT, [("projects/prod", signed_in)]).allowed


def test_domain_member_matches_users_of_that_domain() -> None:
    pol = IamPolicy.of([("roles/containeranalysis.notes.viewer", ["domain:example.com"])])
    mallory = user("mallory@example.org", via="oidc")
    assert Authorizer().decide(ALICE, p.NOTES_GET, PROJECT, [("projects/prod", pol)]).allowed
    assert not Authorizer().decide(mallory, p.NOTES_GET, PROJECT, [("projects/prod", pol)]).allowed


def test_credential_grants_apply_to_their_project_only() -> None:
    token = Principal("token:ci", via="api-token", grants=(Grant("prod", ADMIN),))
    az = Authorizer()
    assert az.decide(token, p.POLICY_UPDATE, Resource("prod")).allowed
    assert not az.decide(token, p.POLICY_UPDATE, Resource("staging")).allowed
    # A project grant never reaches the collection of projects.
    assert not az.decide(token, p.PROJECTS_LIST, Resource()).allowed


def test_local_admin_grant_reaches_everything() -> None:
    admin = anonymous(grants=(Grant(ANY_PROJECT, ADMIN),))
    az = Authorizer()
    for perm in p.ALL:
        assert az.decide(admin, perm, Resource("any")).allowed
    assert az.decide(admin, p.PROJECTS_LIST, Resource()).allowed


def test_bootstrap_admins_but_never_an_anonymous_one() -> None:
    az = Authorizer(bootstrap_admins=["user:alice@example.com", "anonymous"])
    assert az.decide(ALICE, p.PROJECTS_SET_IAM_POLICY, PROJECT).allowed
    assert not az.decide(anonymous(), p.PROJECTS_SET_IAM_POLICY, PROJECT).allowed


def test_note_policy_adds_to_the_project_policy() -> None:
    note_policy = IamPolicy.of(
        [("roles/containeranalysis.notes.attacher", ["user:qa@example.com"])]
    )
    qa = user("qa@example.com", via="oidc")
    note = Resource("qa", "qa-note")
    other = Resource("qa", "other-note")
    az = Authorizer()
    assert az.decide(
        qa,
        p.NOTES_ATTACH_OCCURRENCE,
        note,
        [(note.name, note_policy), ("projects/qa", EMPTY_POLICY)],
    ).allowed
    assert not az.decide(
        qa, p.NOTES_ATTACH_OCCURRENCE, other, [("projects/qa", EMPTY_POLICY)]
    ).allowed


def test_unknown_permission_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        Authorizer().decide(ALICE, "containeranalysis.notes.fly", PROJECT)


def test_roles_only_name_known_permissions_and_admin_has_all() -> None:
    for perms in ROLES.values():
        assert perms <= p.ALL
    assert ROLES[ADMIN] == p.ALL
    # The attacher may attach and read the note, nothing more.
    assert ROLES["roles/containeranalysis.notes.attacher"] == {
        p.NOTES_GET,
        p.NOTES_ATTACH_OCCURRENCE,
    }


def test_static_bindings_from_settings_apply_to_their_project_only() -> None:
    az = Authorizer(static_bindings=[("allUsers", "prod", "roles/chainproof.admissionCaller")])
    assert az.decide(anonymous(), p.ADMISSION_REVIEW, Resource("prod")).allowed
    # Only the review: the webhook's caller may write nothing else.
    assert not az.decide(anonymous(), p.OCCURRENCES_CREATE, Resource("prod")).allowed
    assert not az.decide(anonymous(), p.ADMISSION_REVIEW, Resource("staging")).allowed
