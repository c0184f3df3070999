"""Docker credential helpers, run the way Docker runs them.

This module owns :class:`CredentialHelpers`: for a registry host and a helper name ``NAME``
(from ``credHelpers`` or ``credsStore``), it runs ``docker-credential-NAME get`` with the
server address on standard input (``https://index.docker.io/v1/`` for Docker Hub, the host
otherwise) and reads ``{"ServerURL", "Username", "Secret"}`` from standard output; a
``Username`` of ``<token>`` makes the secret an identity token. A helper that answers
"credentials not found" means anonymous access, as for Docker.

Bounded and fail closed: the program is found on ``PATH`` (its name cannot carry a path:
:mod:`~chainproof.sources.registry.credentials` checks it), runs at most ``timeout`` seconds
and never past the review's deadline, and at most 64 KiB of its output is read. A missing
helper, one that fails, times out or prints something else is a
:class:`~chainproof.sources.registry.errors.RegistryError` naming the registry and the helper.
Answers are kept ``ttl`` seconds (``not found`` for ``negative_ttl``), and concurrent asks for
one host share one run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable

from chainproof.sources.registry.credentials import Credential
from chainproof.sources.registry.deadline import Deadline
from chainproof.sources.registry.errors import RegistryError

__all__ = ["CredentialHelpers", "server_address"]

_MAX_OUTPUT = 64 * 1024
_NOT_FOUND = "credentials not found"
_HUB = "https://index.docker.io/v1/"


def server_address(host: str) -> str:
    """What Docker hands a helper for ``host``."""
    return _HUB if host == "docker.io" else host


class CredentialHelpers:
    def __init__(
        self,
        *,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[float, Credential | None]] = {}
        self._running: dict[tuple[str, str], asyncio.Future[Credential | None]] = {}
        self.runs = 0

    async def get(self, helper: str, host: str, deadline: Deadline) -> Credential | None:
        key = (helper, host)
        cached = self._answers.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Credential | None] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            answer = await self._run(helper, host, deadline)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            keep = self.ttl if answer is not None else self.negative_ttl
            if len(self._answers) > 1000:
                self._answers.clear()
            self._answers[key] = (self._clock() + keep, answer)
            future.set_result(answer)
            return answer
        finally:
            del self._running[key]

    async def _run(self, helper: str, host: str, deadline: Deadline) -> Credential | None:
        program = f"docker-credential-{helper}"
        path = shutil.which(program)
        if path is None:
            raise RegistryError(
                host, f"credential helper {program} is not installed (not found on PATH)"
            )
        self.runs += 1
        limit = min(self.timeout, deadline.remaining())
        try:
            async with asyncio.timeout(max(limit, 0.001)):
                process = await asyncio.create_subprocess_exec(
                    path,
                    "get",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                try:
                    out, err = await process.communicate(server_address(host).encode())
                except BaseException:
                    process.kill()
                    await process.wait()
                    raise
        except TimeoutError as exc:
            raise RegistryError(
                host, f"credential helper {program} did not answer within {limit:.2f}s"
            ) from exc
        except OSError as exc:
            raise RegistryError(host, f"credential helper {program} cannot run: {exc}") from exc
        text = out[:_MAX_OUTPUT].decode(errors="replace")
        if process.returncode != 0:
            if (
                _NOT_FOUND in text.lower()
                or _NOT_FOUND in err[:_MAX_OUTPUT].decode(errors="replace").lower()
            ):
                return None
            said = (text.strip() or err[:_MAX_OUTPUT].decode(errors="replace").strip())[:200]
            raise RegistryError(
                host, f"credential helper {program} failed (exit {process.returncode}): {said}"
            )
        if len(out) > _MAX_OUTPUT:
            raise RegistryError(host, f"credential helper {program} printed more than 64 KiB")
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise RegistryError(
                host, f"credential helper {program} did not print JSON credentials"
            ) from exc
        if not isinstance(doc, dict):
            raise RegistryError(host, f"credential helper {program} printed no JSON object")
        username, secret = doc.get("Username"), doc.get("Secret")
        if not isinstance(username, str) or not isinstance(secret, str) or not secret:
            raise RegistryError(
                host, f"credential helper {program} printed no Username and Secret strings"
            )
        if username == "<token>":
            return Credential(identity_token=secret)
        return Credential(username, secret)
