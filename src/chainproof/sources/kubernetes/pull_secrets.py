"""A pod's registry credentials, read from its cluster: its imagePullSecrets and its
ServiceAccount's, as the kubelet uses them.

This module owns :class:`ClusterPullSecrets`, the
:class:`~chainproof.sources.registry.auth.PullSecretSource` over the Kubernetes API: for a
namespace, a ServiceAccount and the secret names a pod lists, it reads each secret the pod
names — or, when it names none, the ServiceAccount and the secrets it lists, as the API
server's ServiceAccount admission fills a pod's ``imagePullSecrets`` only when the pod has
none — and merges their ``kubernetes.io/dockerconfigjson`` (or legacy ``dockercfg``)
credentials into one :class:`~chainproof.sources.registry.credentials.Keyring`, as the kubelet
does (the most specific key wins; among equal keys, the first secret). Reads are cached
``ttl`` seconds per object; failures are not.

Fail closed: a secret or ServiceAccount that is missing, forbidden to chainproof (it needs
``get`` on ``secrets`` and ``serviceaccounts``), of another type or garbled raises
:class:`~chainproof.sources.registry.auth.PullSecretError` naming it, and the review is denied
saying so. The API server is asked within the review's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from chainproof.errors import InvalidArgument
from chainproof.sources.registry.auth import PullSecretError
from chainproof.sources.registry.credentials import Keyring, parse_pull_secret
from chainproof.sources.registry.deadline import Deadline

__all__ = ["ClusterPullSecrets"]

_MAX_SECRETS = 32  # per pod: pod's and ServiceAccount's together


class ClusterPullSecrets:
    def __init__(
        self,
        api: Callable[[], Awaitable[k8s.ApiClient]],
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``api`` makes the API client on first use (building one reads files)."""
        self._make_api = api
        self._api: k8s.ApiClient | None = None
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self.reads = 0

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def _core(self) -> k8s.CoreV1Api:
        if self._api is None:
            self._api = await self._make_api()
        return k8s.CoreV1Api(self._api)

    async def credentials(
        self, namespace: str, service_account: str, names: Sequence[str], deadline: Deadline
    ) -> Keyring:
        try:
            async with asyncio.timeout(max(deadline.remaining(), 0.001)):
                return await self._credentials(namespace, service_account, names)
        except TimeoutError as exc:
            raise PullSecretError(
                "the Kubernetes API server did not answer within the review's deadline"
            ) from exc

    async def _credentials(
        self, namespace: str, service_account: str, names: Sequence[str]
    ) -> Keyring:
        listed = [n for n in names if n]
        if not listed:
            account = await self._get("serviceaccount", namespace, service_account)
            listed = [
                ref.name for ref in (account.image_pull_secrets or []) if getattr(ref, "name", None)
            ]
        listed = list(dict.fromkeys(listed))
        if len(listed) > _MAX_SECRETS:
            raise PullSecretError(
                f"{len(listed)} pull secrets are named, more than the {_MAX_SECRETS} read"
            )
        return Keyring.union([await self._secret(namespace, name) for name in listed])

    async def _secret(self, namespace: str, name: str) -> Keyring:
        secret = await self._get("secret", namespace, name)
        try:
            return parse_pull_secret({"type": secret.type, "data": secret.data or {}})
        except InvalidArgument as exc:
            raise PullSecretError(f"secret {namespace}/{name}: {exc.message}") from exc

    async def _get(self, kind: str, namespace: str, name: str) -> Any:
        key = (kind, namespace, name)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        core = await self._core()
        self.reads += 1
        found: Any
        try:
            if kind == "secret":
                found = await core.read_namespaced_secret(name, namespace)
            else:
                found = await core.read_namespaced_service_account(name, namespace)
        except ApiException as exc:
            what = f"{'secret' if kind == 'secret' else 'service account'} {namespace}/{name}"
            if exc.status == 404:
                raise PullSecretError(f"{what} does not exist") from exc
            if exc.status in (401, 403):
                raise PullSecretError(
                    f"{what} cannot be read: the API server refused (HTTP {exc.status}); grant "
                    "chainproof get on secrets and serviceaccounts in that namespace"
                ) from exc
            raise PullSecretError(f"{what} cannot be read: HTTP {exc.status}") from exc
        except Exception as exc:  # network, TLS, a garbled answer: all fail closed
            raise PullSecretError(f"{kind} {namespace}/{name} cannot be read: {exc!r}") from exc
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (self._clock() + self.ttl, found)
        return found
