"""Per-image summaries the store keeps on write, for the dashboard (ADR 0122).

Every occurrence written through ``uow.occurrences`` (insert, replace, delete, delete_many;
the Grafeas API, ingestion, scanning, VEX updates, reconciliation all go through those) is
reduced once to its facts (domain/image_summary.py). Before the unit of work commits, the
summary of every image it touched is recomputed from the facts of that image's occurrences,
for each project the image has occurrences in and for the scope of every project together
(:data:`ALL_PROJECTS`). A recompute, not a patch: a VEX statement, a deletion or a resource
changed by an update cannot leave a summary that drifts from its occurrences. The decision
log's writer keeps each image's newest decision per project beside it.

``ImageSummaryRepository`` (``uow.image_summaries``) is what the pages read: a keyset page of
summaries filtered and sorted as ``/images`` asks, exact counts, the overview's totals, and
reverse impact by vulnerability ID, package name or purl prefix.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chainproof.domain.image_summary import (
    SEVERITIES,
    TERM_AFFECTED,
    TERM_ID,
    TERM_NAME,
    TERM_PURL,
    ImageSummary,
)

#: The scope of summaries over every project's occurrences (not a valid project ID).
ALL_PROJECTS = "*"
#: What a summary stores as the scan time of an image never scanned: sorts first.
NEVER = datetime(1, 1, 1, tzinfo=UTC)
#: Sort keys of a summary page.
SORTS = ("image", "decision", "severity", "scan", "occurrences")
#: What a vulnerability ID starts with (CVE-…, GHSA-…): such a query matches finding notes.
VULNERABILITY_ID = re.compile(r"^(CVE|GHSA|OSV|PYSEC|GO|RUSTSEC|DSA|DLA|USN|ALAS)-", re.IGNORECASE)
#: The largest code point: ``term < prefix + TOP`` bounds a prefix range.
TOP = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class ImageDecision:
    """The newest decision of a project's decision log about an image."""

    project: str
    image: str
    decision_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class SummaryQuery:
    """Which summaries, in which order. ``projects`` None means every project (the
    :data:`ALL_PROJECTS` scope); otherwise the summaries of those projects' occurrences,
    merged per image. Every criterion given must hold."""

    projects: tuple[str, ...] | None
    #: The project whose decision log gives each image's last decision.
    decision_project: str
    #: A substring of the image, compared case-insensitively.
    image: str = ""
    #: An outcome the last decision must have; "none" for images without a decision.
    decision: str = ""
    #: An attestation note (``projects/P/notes/N``) the image must have / must not have.
    present: str = ""
    missing: str = ""
    #: The worst open severity the image must have (a SEVERITIES name, or "NONE").
    severity: str = ""
    #: Scanned at or after this instant / not scanned at or after this instant.
    scanned_since: datetime | None = None
    not_scanned_since: datetime | None = None
    sort: str = "image"
    descending: bool = False

    @property
    def unfiltered(self) -> bool:
        """No criterion: every summary of the scope matches."""
        return not (
            self.image
            or self.decision
            or self.present
            or self.missing
            or self.severity
            or self.scanned_since is not None
            or self.not_scanned_since is not None
        )

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort {self.sort!r}: expected one of {', '.join(SORTS)}")
        if self.severity and self.severity != "NONE" and self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r}: expected one of {SEVERITIES} or NONE")


@dataclass(frozen=True, slots=True)
class SummaryRow:
    summary: ImageSummary
    decision: ImageDecision | None

    @property
    def last_outcome(self) -> str:
        return self.decision.outcome if self.decision is not None else ""

    def key(self, sort: str) -> Any:
        """The value a page of ``sort`` orders this row by (before the resource)."""
        s = self.summary
        if sort == "decision":
            return self.last_outcome
        if sort == "severity":
            return s.worst_rank
        if sort == "scan":
            return s.last_scan or NEVER
        if sort == "occurrences":
            return s.occurrences
        return ""


#: A keyset position: (the sort key of the last row shown, its resource).
After = tuple[Any, str]


@dataclass(frozen=True, slots=True)
class SummaryTotals:
    images: int
    #: Open findings per severity, in SEVERITIES order, over every image.
    open_counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ImpactRow:
    image: str
    kind: str
    detail: str


def impact_terms(needle: str) -> tuple[tuple[str, str, bool], ...]:
    """What a reverse-impact query looks up: (field, term, prefix?) alternatives.

    A vulnerability ID matches finding note IDs exactly; ``pkg:…`` matches purls and the
    packages findings name by prefix; anything else matches package names exactly and the
    packages findings name by prefix (as a name a finding names may be a purl or a name).
    Case is ignored."""
    n = needle.strip().lower()
    if not n:
        return ()
    if VULNERABILITY_ID.match(n):
        return ((TERM_ID, n, False),)
    if n.startswith("pkg:"):
        return ((TERM_PURL, n, True), (TERM_AFFECTED, n, True))
    return ((TERM_ID, n, False), (TERM_NAME, n, False), (TERM_AFFECTED, n, True))


class ImageSummaryRepository(ABC):
    """Reads of the summaries the unit of work's occurrence writes keep (see the module
    docstring). Writes happen through ``uow.occurrences`` and ``uow.decisions`` only."""

    async def page(self, query: SummaryQuery, after: After | None, limit: int) -> list[SummaryRow]:
        """Up to ``limit`` summaries matching ``query``, in its order (ties by resource),
        after the keyset position ``after``."""
        if limit <= 0 or query.projects == ():
            return []
        await self.flush()
        return await self._page(query, after, limit)

    async def count(self, query: SummaryQuery) -> int:
        """How many summaries match ``query`` (exact)."""
        return (await self.count_at_most(query, None))[0]

    async def count_at_most(self, query: SummaryQuery, bound: int | None) -> tuple[int, bool]:
        """(how many summaries match ``query``, False) when that is at most ``bound`` (None:
        no bound); else (``bound``, True): more than ``bound`` match, found by reading
        ``bound + 1`` of them and no more. A query without criteria over one scope is
        exact whatever the bound: the totals kept per scope answer it without a read."""
        if query.projects == ():
            return 0, False
        await self.flush()
        if query.unfiltered and (query.projects is None or len(query.projects) == 1):
            return (await self._totals(query.projects)).images, False
        found = await self._count(query, bound)
        return (bound, True) if bound is not None and found > bound else (found, False)

    async def totals(self, projects: tuple[str, ...] | None) -> SummaryTotals:
        """The number of images and their open findings per severity (exact)."""
        if projects == ():
            return SummaryTotals(0, (0,) * len(SEVERITIES))
        await self.flush()
        return await self._totals(projects)

    async def impact(
        self, needle: str, projects: tuple[str, ...] | None, limit: int
    ) -> list[ImpactRow]:
        """Images a vulnerability ID, package name or purl prefix affects (see
        :func:`impact_terms`), at most ``limit``, ordered by the term that matched (the
        name, purl or ID, lower case), then image, kind and detail; a row matched by more
        than one term comes once, at its first. That order is the terms index's, so a
        query matching every image reads about ``limit`` rows (ADR 0195)."""
        terms = impact_terms(needle)
        if not terms or limit <= 0 or projects == ():
            return []
        return await self._impact(terms, projects, limit)

    @abstractmethod
    async def flush(self) -> None:
        """Recompute the summaries of the images written since the last flush. The unit of
        work calls it before it commits; reads call it first."""

    @abstractmethod
    async def _page(self, query: SummaryQuery, after: After | None, limit: int) -> list[SummaryRow]:
        """``limit`` positive, ``query.projects`` not empty."""

    @abstractmethod
    async def _count(self, query: SummaryQuery, bound: int | None) -> int:
        """Exact up to ``bound`` (None: no bound), else ``bound + 1``."""

    @abstractmethod
    async def _totals(self, projects: tuple[str, ...] | None) -> SummaryTotals: ...

    @abstractmethod
    async def _impact(
        self,
        terms: Sequence[tuple[str, str, bool]],
        projects: tuple[str, ...] | None,
        limit: int,
    ) -> list[ImpactRow]: ...
