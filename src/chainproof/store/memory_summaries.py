"""Per-image summaries in memory: the reference adapter of store/summaries.py.

The facts of each occurrence are kept beside it; ``flush`` folds the facts of each image
touched into its summaries (domain/image_summary.py's ``fold``), per project and for every
project together. Every change goes through the unit of work's undo log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chainproof.domain.image_summary import (
    SEVERITIES,
    FactGroup,
    Facts,
    ImageSummary,
    facts_of,
    fold,
)
from chainproof.store.judge import DecisionRecord
from chainproof.store.scribe import OccurrenceRecord
from chainproof.store.summaries import (
    ALL_PROJECTS,
    NEVER,
    TOP,
    After,
    ImageDecision,
    ImageSummaryRepository,
    ImpactRow,
    SummaryQuery,
    SummaryRow,
    SummaryTotals,
)

Undo = list[Callable[[], None]]


@dataclass
class MemorySummaryState:
    #: (project, occurrence ID) → (resource, facts).
    facts: dict[tuple[str, str], tuple[str, Facts]] = field(default_factory=dict)
    by_resource: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    #: resource → scope → summary.
    summaries: dict[str, dict[str, ImageSummary]] = field(default_factory=dict)
    #: (project, image) → the newest decision.
    decisions: dict[tuple[str, str], ImageDecision] = field(default_factory=dict)


def _set(undo: Undo, table: dict[Any, Any], key: Any, value: Any) -> None:
    previous = table.get(key)
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value

    def back() -> None:
        if previous is None:
            table.pop(key, None)
        else:
            table[key] = previous

    undo.append(back)


def merge(resource: str, parts: Sequence[ImageSummary]) -> ImageSummary:
    """One image's summaries of several projects as one."""
    scans = [p.last_scan for p in parts if p.last_scan is not None]
    return ImageSummary(
        resource,
        sum(p.occurrences for p in parts),
        tuple(sorted({n for p in parts for n in p.attestation_notes})),
        tuple(sum(p.open_counts[i] for p in parts) for i in range(len(SEVERITIES))),
        max(scans) if scans else None,
    )


class MemoryImageSummaries(ImageSummaryRepository):
    def __init__(self, state: MemorySummaryState, undo: Undo) -> None:
        self._s, self._undo = state, undo
        self._touched: set[str] = set()
        #: The members sets this unit of work copied (since its last commit), by resource.
        self._owned: dict[str, set[tuple[str, str]]] = {}

    # ------------------------------------------------------------------ writes (the store's)

    def occurrence_changed(
        self, previous: OccurrenceRecord | None, record: OccurrenceRecord | None
    ) -> None:
        for old_or_new, present in ((previous, False), (record, True)):
            if old_or_new is None or not old_or_new.resource:
                continue
            r = old_or_new
            key = (r.project, r.occurrence_id)
            facts = facts_of(r.kind, r.note_project, r.note_id, r.occurrence) if present else None
            _set(self._undo, self._s.facts, key, (r.resource, facts) if facts is not None else None)
            members = self._owned.get(r.resource)
            if members is None:
                # Copied once per unit of work and image, then changed in place: the undo
                # log keeps the set as it was, and an SBOM's 10,000 packages of one image
                # no longer copy a growing set 10,000 times.
                members = set(self._s.by_resource.get(r.resource, ()))
                self._owned[r.resource] = members
                _set(self._undo, self._s.by_resource, r.resource, members)
            members.add(key) if present else members.discard(key)
            self._touched.add(r.resource)

    def decisions_written(self, records: Sequence[DecisionRecord]) -> None:
        for r in records:
            for image in r.images:
                key = (r.project, image)
                known = self._s.decisions.get(key)
                if known is None or known.decision_id < r.decision_id:
                    decision = ImageDecision(r.project, image, r.decision_id, r.outcome)
                    _set(self._undo, self._s.decisions, key, decision)

    def discard(self) -> None:
        """The unit of work rolled back: what it touched is as it was."""
        self._touched.clear()
        self._owned.clear()

    async def flush(self) -> None:
        touched, self._touched = self._touched, set()
        for resource, members in self._owned.items():
            if not members:  # the image's last occurrence went: no entry, as before
                self._s.by_resource.pop(resource, None)
        self._owned.clear()
        for resource in sorted(touched):
            groups: dict[str, list[FactGroup]] = {}
            for project, occurrence_id in self._s.by_resource.get(resource, ()):
                _, f = self._s.facts[(project, occurrence_id)]
                group = FactGroup(resource, f.attestation_note, f.open_rank, 1, f.scan_time)
                groups.setdefault(project, []).append(group)
            scopes = {project: fold(its)[resource] for project, its in groups.items()}
            if groups:
                scopes[ALL_PROJECTS] = fold(g for its in groups.values() for g in its)[resource]
            _set(self._undo, self._s.summaries, resource, scopes or None)

    # ------------------------------------------------------------------ reads

    def _rows(self, query: SummaryQuery) -> list[SummaryRow]:
        projects = query.projects
        scopes = (ALL_PROJECTS,) if projects is None else projects
        summaries: list[ImageSummary] = []
        for resource, by_scope in self._s.summaries.items():
            parts = [by_scope[p] for p in scopes if p in by_scope]
            if parts:
                summaries.append(parts[0] if len(parts) == 1 else merge(resource, parts))
        out: list[SummaryRow] = []
        for s in summaries:
            row = SummaryRow(s, self._s.decisions.get((query.decision_project, s.resource)))
            if _matches(row, query):
                out.append(row)
        return out

    async def _page(self, query: SummaryQuery, after: After | None, limit: int) -> list[SummaryRow]:
        def order(row: SummaryRow) -> tuple[Any, str]:
            return (row.key(query.sort), row.summary.resource)

        rows = sorted(self._rows(query), key=order, reverse=query.descending)
        if after is not None:
            position = (after[0] if query.sort != "image" else "", after[1])
            rows = [
                r
                for r in rows
                if (order(r) < position if query.descending else order(r) > position)
            ]
        return rows[:limit]

    async def _count(self, query: SummaryQuery, bound: int | None) -> int:
        found = len(self._rows(query))
        return found if bound is None else min(found, bound + 1)

    async def _totals(self, projects: tuple[str, ...] | None) -> SummaryTotals:
        scopes = {ALL_PROJECTS} if projects is None else set(projects)
        chosen = [s for by in self._s.summaries.values() for p, s in by.items() if p in scopes]
        counts = tuple(sum(s.open_counts[i] for s in chosen) for i in range(len(SEVERITIES)))
        return SummaryTotals(len({s.resource for s in chosen}), counts)

    async def _impact(
        self,
        terms: Sequence[tuple[str, str, bool]],
        projects: tuple[str, ...] | None,
        limit: int,
    ) -> list[ImpactRow]:
        first: dict[tuple[str, str, str], str] = {}  # each row: the least term matching it
        for (project, _), (resource, facts) in self._s.facts.items():
            if projects is not None and project not in projects:
                continue
            for t in facts.terms:
                for name, term, prefix in terms:
                    if t.field == name and (
                        (term <= t.term < term + TOP) if prefix else t.term == term
                    ):
                        row = (resource, t.kind, t.detail)
                        first[row] = min(first.get(row, t.term), t.term)
        ordered = sorted((term, *row) for row, term in first.items())
        return [ImpactRow(r, k, d) for _, r, k, d in ordered[:limit]]


def _matches(row: SummaryRow, q: SummaryQuery) -> bool:
    s = row.summary
    if q.image and q.image.lower() not in s.resource.lower():
        return False
    if q.decision and (row.last_outcome or "none") != q.decision:
        return False
    if q.present and q.present not in s.attestation_notes:
        return False
    if q.missing and q.missing in s.attestation_notes:
        return False
    if q.severity and (s.worst_open or "NONE") != q.severity:
        return False
    scan = s.last_scan or NEVER
    if q.scanned_since is not None and scan < q.scanned_since:
        return False
    return not (q.not_scanned_since is not None and scan >= q.not_scanned_since)
