"""Reading continuous-validation violations: one project's, filtered by cluster, namespace
and state, a page at a time (the re-judging worker, services.judge.continuous, writes them).

Owns the rules of the listing: a cluster or namespace must be a valid name, ``state`` is
``open`` (the default) or ``all``, page tokens are sealed and bound to the query that made
them (a token of another project or filter is refused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chainproof.domain.inventory import validate_cluster_name
from chainproof.domain.names import parse_project_name
from chainproof.domain.pagination import ListScope, PageTokenCodec, page_size
from chainproof.domain.timestamps import parse_rfc3339, rfc3339
from chainproof.errors import InvalidArgument
from chainproof.policy.violations import Violation
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import ViolationQuery

_STATES = ("open", "all")
_NAMESPACE_MAX = 63


@dataclass(frozen=True, slots=True)
class ViolationPage:
    violations: tuple[Violation, ...]
    next_page_token: str


class ViolationService:
    def __init__(self, store: MetadataStore, tokens: PageTokenCodec) -> None:
        self._store = store
        self._tokens = tokens

    async def list(
        self,
        parent: str,
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        state: str | None = None,
        size: int | None = None,
        token: str = "",
    ) -> ViolationPage:
        project = parse_project_name(parent)
        chosen = (state or "open").lower()
        if chosen not in _STATES:
            raise InvalidArgument(f"state {state!r} is not known: expected open or all")
        if cluster is not None:
            validate_cluster_name(cluster)
        if namespace is not None and not (0 < len(namespace) <= _NAMESPACE_MAX):
            raise InvalidArgument(
                f"namespace must be 1-{_NAMESPACE_MAX} characters (a Kubernetes namespace)"
            )
        limit = page_size(size)
        scope = ListScope("violations", parent, json.dumps([cluster, namespace, chosen]))
        after: tuple[str, str] | None = None
        if token:
            raw = self._tokens.decode(scope, token)
            opened, _, violation_id = raw.partition("|")
            after = (opened, violation_id)
        query = ViolationQuery(
            project,
            clusters=(cluster,) if cluster else (),
            namespace=namespace,
            open_only=chosen == "open",
            after=(parse_rfc3339(after[0]), after[1]) if after else None,
        )
        async with self._store.session(readonly=True) as s:
            rows = await s.violations.list_rows(query, limit + 1)
        if len(rows) > limit:
            last = rows[limit - 1]
            key = f"{rfc3339(last.opened)}|{last.violation_id}"
            return ViolationPage(tuple(rows[:limit]), self._tokens.encode(scope, key))
        return ViolationPage(tuple(rows), "")
