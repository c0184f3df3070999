"""IAM policy parsing, normalisation and etags."""

from __future__ import annotations

import pytest

from chainproof.errors import InvalidArgument
from chainproof.iam.policy import MAX_MEMBERS, IamPolicy, policy_from_json
from chainproof.iam.principals import validate_member


def test_equal_policies_have_equal_etags_and_changes_change_it() -> None:
    a, _ = policy_from_json(
        {
            "bindings": [
                {"role": "roles/chainproof.admin", "members": ["user:b@x.io", "user:a@x.io"]}
            ]
        }
    )
    b = IamPolicy.of(
        [("roles/chainproof.admin", ["user:a@x.io"]), ("roles/chainproof.admin", ["user:b@x.io"])]
    )
    assert a == b and a.etag == b.etag
    assert a.with_binding("roles/chainproof.viewer", "allUsers").etag != a.etag
    assert a.without_binding("roles/chainproof.admin", "user:a@x.io").bindings[0].members == (
        "user:b@x.io",
    )


def test_removing_the_last_member_drops_the_binding() -> None:
    pol = IamPolicy.of([("roles/chainproof.admin", ["user:a@x.io"])])
    assert pol.without_binding("roles/chainproof.admin", "user:a@x.io").bindings == ()


def test_round_trip_through_json() -> None:
    pol = IamPolicy.of([("roles/containeranalysis.notes.attacher", ["token:qa-bot"])])
    again, etag = policy_from_json(pol.to_json())
    assert again == pol and etag == pol.etag


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"bindings": {}}, "list"),
        ({"bindings": [{"role": "roles/owner", "members": ["allUsers"]}]}, "not a chainproof role"),
        ({"bindings": [{"role": "roles/chainproof.admin", "members": ["bob"]}]}, "member 'bob'"),
        (
            {
                "bindings": [
                    {"role": "roles/chainproof.admin", "members": ["allUsers"], "condition": {}}
                ]
            },
            "condition",
        ),
        ({"version": 3}, "version"),
        ({"etag": ""}, "etag"),
        ({"owner": "me"}, "unknown fields"),
    ],
)
def test_bad_policies_say_what_is_wrong(doc: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        policy_from_json(doc)


def test_member_limit() -> None:
    members = [f"user:u{i}@x.io" for i in range(MAX_MEMBERS + 1)]
    with pytest.raises(InvalidArgument, match="at most"):
        IamPolicy.of([("roles/chainproof.viewer", members)])


@pytest.mark.parametrize(
    "member",
    [
        "user:a@example.com",
        "serviceAccount:kube-system:chainproof",
        "token:ci-bot",
        "principal:https://issuer.example#1234",
        "spiffe://example.org/ns/ci/sa/builder",
        "cert:kube-apiserver",
        "domain:example.com",
        "allUsers",
        "allAuthenticatedUsers",
    ],
)
def test_valid_members(member: str) -> None:
    assert validate_member(member) == member


@pytest.mark.parametrize(
    "member",
    [
        "alice",
        "user:alice",
        "serviceAccount:ns",
        "principal:http://x#1",
        "spiffe:/x",
        "token:",
        "domain:",
    ],
)
def test_invalid_members(member: str) -> None:
    with pytest.raises(InvalidArgument, match="expected one of"):
        validate_member(member)
