"""What every check is and sees: the :class:`Check` protocol and the :class:`CheckContext`.

A check is one key of a rule's ``chainproofChecks`` object. Its class parses the key's value
(reporting every problem with its path), writes it back (:meth:`Check.to_dict`), and judges one
image's evidence against it, yielding one :class:`~chainproof.policy.decision.RequirementResult`
per thing it requires. The registry (:mod:`.registry`) lists the classes; adding a check is one
new module and one line there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, Protocol, Self

from chainproof.domain.images import ImageReference
from chainproof.policy._fields import FieldReader
from chainproof.policy.attestors import Attestor
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import ImageEvidence


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every check may look at for one image."""

    image: ImageReference
    evidence: ImageEvidence
    attestors: Mapping[str, Attestor]
    now: datetime
    request: Mapping[str, Any]  # namespace, serviceAccount, cluster (for CEL)


class Check(Protocol):
    """One ``chainproofChecks`` key: parsed once with the policy, judged per image."""

    #: The key under ``chainproofChecks`` this check reads (``"freshness"``, ``"cel"``…).
    key: ClassVar[str]

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        """The check read from its key of ``checks`` (the rule's ``chainproofChecks`` object).

        None when the key is absent or asks for nothing. Every problem goes to
        ``checks.problems`` with its path (the caller raises them all at once); whatever is
        returned then is a placeholder that is never judged.
        """
        ...

    def to_dict(self) -> Any:
        """The key's value as a policy author writes it (JSON-ready)."""
        ...

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        """One result per requirement (most checks have exactly one), each with its reason."""
        ...


@lru_cache(maxsize=65536)
def cve_id(text: str) -> str:
    """``providers/goog-vulnz/notes/CVE-2017-1000082`` and ``cve-2017-1000082`` → one form.

    Memoized: the same few ids come up in every decision about an image (ADR 0130)."""
    return text.strip().rsplit("/", 1)[-1].upper()


def short_key(key_id: str) -> str:
    return key_id if len(key_id) <= 16 else key_id[:16] + "…"
