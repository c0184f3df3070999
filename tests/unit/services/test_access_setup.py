"""Secure by default: what an anonymous caller is, and when the server refuses to start.

Nothing here binds to anything: the addresses are only settings being judged.
"""
# ruff: noqa: S104

from __future__ import annotations

import pytest

from chainproof.config import load_settings
from chainproof.errors import FailedPrecondition
from chainproof.services.access.setup import anonymous_principal, check_listener, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("chainproof.internal", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_anonymous_is_local_admin_elsewhere_nobody() -> None:
    assert anonymous_principal(load_settings(host="127.0.0.1")).grants
    assert not anonymous_principal(load_settings(host="0.0.0.0")).grants
    behind_proxy = load_settings(host="127.0.0.1", auth={"anonymous": "none"})
    assert not anonymous_principal(behind_proxy).grants


def test_public_listener_without_authentication_refuses_to_start() -> None:
    with pytest.raises(FailedPrecondition, match="--allow-anonymous"):
        check_listener(load_settings(host="0.0.0.0"))
    check_listener(load_settings(host="0.0.0.0", auth={"allow_anonymous": True}))
    check_listener(
        load_settings(
            host="0.0.0.0",
            auth={"oidc_issuers": [{"issuer": "https://issuer.example", "audiences": ["cp"]}]},
        )
    )
    check_listener(load_settings(host="127.0.0.1"))


def test_env_round_trip_keeps_auth_lists() -> None:
    s = load_settings(
        auth={
            "bootstrap_admins": ["user:a@x.io"],
            "oidc_issuers": [{"issuer": "https://issuer.example", "audiences": ["cp"]}],
        }
    )
    env = s.to_environment()
    assert env["CHAINPROOF_AUTH__BOOTSTRAP_ADMINS"] == '["user:a@x.io"]'
    import os

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        again = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert again.auth == s.auth
