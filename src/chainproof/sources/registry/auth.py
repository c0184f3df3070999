"""Which credential a request to a registry carries.

This module owns :class:`CredentialResolver`, asked by the client before each request for
one image repository (the answer is cached, so this is cheap), in the kubelet's order:

1. the pull secrets of the pod under review — its ``imagePullSecrets``, or when it lists none
   its ServiceAccount's (what the API server's ServiceAccount admission gives the pod) — when
   the server reads them from the cluster and a review set :data:`REVIEW_PULL_SECRETS`: one
   :class:`~chainproof.sources.registry.credentials.Keyring` of them all, the most specific
   key covering ``registry/repository`` winning. A secret that is named but missing or
   unreadable denies the review with a
   :class:`~chainproof.sources.registry.errors.RegistryError` saying which;
2. the server's own Docker config: the credential helper Docker would ask (``credHelpers``,
   else ``credsStore``, by host; run by :mod:`~chainproof.sources.registry.helpers`), or else
   the most specific of its inline ``auths`` keys covering the image;
3. the credential configured on the host itself (tests, explicit configuration);
4. nothing: anonymous.

:class:`PullSecretScope` is one review's view: the secrets are read once per review (single
flight), through a :class:`PullSecretSource` (the cluster reader in
:mod:`chainproof.sources.kubernetes.pull_secrets`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from chainproof.errors import Unavailable
from chainproof.sources.registry.config import RegistryHost
from chainproof.sources.registry.credentials import Credential, DockerConfig, Keyring
from chainproof.sources.registry.deadline import Deadline
from chainproof.sources.registry.errors import RegistryError
from chainproof.sources.registry.helpers import CredentialHelpers

__all__ = [
    "REVIEW_PULL_SECRETS",
    "CredentialResolver",
    "PullSecretError",
    "PullSecretScope",
    "PullSecretSource",
]


class PullSecretError(Unavailable):
    """A pull secret that a pod names could not be had (missing, forbidden, garbled)."""


class PullSecretSource(Protocol):
    async def credentials(
        self, namespace: str, service_account: str, names: Sequence[str], deadline: Deadline
    ) -> Keyring:
        """The keyring of the secrets ``names`` (the pod's), or when there are none of the
        ServiceAccount's, earlier secrets first among equal keys; PullSecretError when one
        cannot be had."""
        ...


@dataclass(eq=False)
class PullSecretScope:
    """The pod a review is about, as far as its registry credentials go."""

    namespace: str
    service_account: str
    names: tuple[str, ...] = ()
    _loaded: asyncio.Future[Keyring] | None = field(default=None, repr=False)

    async def credentials(self, source: PullSecretSource, deadline: Deadline) -> Keyring:
        if self._loaded is None:
            self._loaded = asyncio.get_running_loop().create_future()
            try:
                found = await source.credentials(
                    self.namespace, self.service_account, self.names, deadline
                )
            except BaseException as exc:
                self._loaded.set_exception(exc)
                self._loaded.exception()
                raise
            self._loaded.set_result(found)
            return found
        return await asyncio.shield(self._loaded)


_EMPTY = Keyring()

#: The pod of the review being judged (set by the admission service and the mutating webhook).
REVIEW_PULL_SECRETS: ContextVar[PullSecretScope | None] = ContextVar(
    "chainproof_review_pull_secrets", default=None
)


class CredentialResolver:
    """See the module docstring."""

    def __init__(
        self,
        docker: DockerConfig | None = None,
        *,
        helpers: CredentialHelpers | None = None,
        pull_secrets: PullSecretSource | None = None,
    ) -> None:
        self.docker = docker or DockerConfig()
        self.helpers = helpers or CredentialHelpers()
        self.pull_secrets = pull_secrets

    async def review_credentials(self, registry: str, deadline: Deadline) -> Keyring:
        """The pull secrets of the review's pod (empty when none are read). Asked by the reader
        whenever a review consults a registry, even when the answer is cached, so that a
        missing secret denies alike whatever the cache holds."""
        scope = REVIEW_PULL_SECRETS.get()
        if scope is None or self.pull_secrets is None:
            return _EMPTY
        try:
            return await scope.credentials(self.pull_secrets, deadline)
        except PullSecretError as exc:
            raise RegistryError(
                registry,
                f"the pull secrets of the workload in namespace {scope.namespace} cannot "
                f"be read: {exc.message}",
            ) from exc

    async def credential(
        self, host: RegistryHost, repository: str, deadline: Deadline
    ) -> Credential | None:
        """The credential a request for ``repository`` on ``host`` carries (None: anonymous)."""
        found = (await self.review_credentials(host.host, deadline)).first(host.host, repository)
        if found is not None:
            return found
        helper = self.docker.helper_for(host.host)
        if helper:
            return await self.helpers.get(helper, host.host, deadline)
        inline = self.docker.auths.first(host.host, repository)
        return inline if inline is not None else host.credential
