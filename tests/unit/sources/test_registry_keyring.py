"""Credential keys matched as the kubelet's keyring matches them: registry host with optional
port and path, most specific first, wildcard host labels — and never a team's credentials for
another team's images."""

from __future__ import annotations

import asyncio

import pytest

from chainproof.errors import InvalidArgument
from chainproof.sources.registry.auth import (
    REVIEW_PULL_SECRETS,
    CredentialResolver,
    PullSecretScope,
)
from chainproof.sources.registry.config import RegistryHost
from chainproof.sources.registry.credentials import (
    Credential,
    DockerConfig,
    Keyring,
    parse_docker_config,
)
from chainproof.sources.registry.deadline import Deadline

A, B, HOST, WILD, HUB = (Credential(n, "pw-" + n) for n in ("a", "b", "host", "wild", "hub"))


def keyring() -> Keyring:
    return Keyring.of(
        [
            ("registry.example", HOST),
            ("https://registry.example/v2/team-a", A),
            ("registry.example/team-b/", B),
            ("*.example.com", WILD),
            ("https://index.docker.io/v1/", HUB),
        ]
    )


def test_the_most_specific_path_wins_and_a_team_never_gets_another_teams_credential():
    ring = keyring()
    assert ring.first("registry.example", "team-a/app") == A
    assert ring.first("registry.example", "team-a/sub/app") == A
    assert ring.first("registry.example", "team-b/app") == B
    # The attack: team-a's credential is never sent for team-b's (or anyone else's) images.
    assert A not in ring.lookup("registry.example", "team-b/app")
    assert ring.lookup("registry.example", "other/app") == (HOST,)
    # Every match, most specific first (the kubelet would try them in this order).
    assert ring.lookup("registry.example", "team-a/app") == (A, HOST)


def test_paths_match_on_segment_boundaries_not_string_prefixes():
    ring = Keyring.of([("registry.example/team", A)])
    assert ring.first("registry.example", "team/app") == A
    assert ring.first("registry.example", "team") == A
    # The kubelet's string prefix would hand team's credential to team-b; chainproof does not.
    assert ring.first("registry.example", "team-b/app") is None
    assert ring.first("registry.example", "teamster") is None


def test_wildcard_hosts_cover_one_label_and_lose_to_a_literal_host():
    ring = keyring()
    assert ring.first("eu.example.com", "x/y") == WILD
    assert ring.first("example.com", "x/y") is None  # one label fewer
    assert ring.first("a.eu.example.com", "x/y") is None  # one label more
    assert ring.first("eu.example.org", "x/y") is None
    both = Keyring.of([("*.example.com", WILD), ("eu.example.com", A)])
    assert both.lookup("eu.example.com", "x") == (A, WILD)
    ports = Keyring.of([("*.example.com:5000", WILD)])
    assert ports.first("eu.example.com:5000", "x") == WILD
    assert ports.first("eu.example.com", "x") is None  # ports must be equal


def test_docker_hub_keys_and_hosts_are_case_insensitive():
    ring = keyring()
    assert ring.first("docker.io", "library/nginx") == HUB
    assert Keyring.of([("Registry.Example/team-a", A)]).first("registry.example", "team-a/x") == A
    assert Keyring.of([("[::1]:5000/t", A)]).first("[::1]:5000", "t/x") == A


def test_equal_keys_keep_the_order_they_came_in():
    first = Keyring.of([("registry.example", A)])
    second = Keyring.of([("https://registry.example/", B)])
    assert Keyring.union([first, second]).lookup("registry.example", "x") == (A, B)
    assert Keyring.union([second, first]).first("registry.example", "x") == B


def test_keys_that_name_no_host_are_refused_with_the_expected_form():
    with pytest.raises(InvalidArgument, match=r"names no registry host: expected host\[:port\]"):
        parse_docker_config({"auths": {"/team": {"username": "u", "password": "p"}}})
    with pytest.raises(InvalidArgument, match="port 'x' is not a number"):
        parse_docker_config({"auths": {"r.example:x": {"username": "u", "password": "p"}}})


class Secrets:
    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    async def credentials(self, namespace, service_account, names, deadline) -> Keyring:
        return self.ring


def test_the_resolver_asks_per_repository_pod_secrets_before_the_servers_config():
    server = DockerConfig(auths=Keyring.of([("registry.example/team-b", B)]))
    pod = Keyring.of([("registry.example/team-a", A)])
    resolver = CredentialResolver(server, pull_secrets=Secrets(pod))
    host = RegistryHost(host="registry.example")

    async def ask(repository: str) -> Credential | None:
        token = REVIEW_PULL_SECRETS.set(PullSecretScope("ns", "default"))
        try:
            return await resolver.credential(host, repository, Deadline(5))
        finally:
            REVIEW_PULL_SECRETS.reset(token)

    async def run() -> list[Credential | None]:
        return [await ask(r) for r in ("team-a/app", "team-b/app", "team-c/app")]

    assert asyncio.run(run()) == [A, B, None]
