"""Per-image summaries on SQL (store/summaries.py; ADR 0122).

Writes: each occurrence written adds its ``image_facts`` row and its ``impact_terms``
(PostgreSQL: COPY, as the occurrences themselves); a delete removes them. Both also note what
they changed of each (project, image): facts added and removed, open findings per rank, the
newest scan time and the attestation notes of each. ``flush`` (run by the unit of work before
it commits, and by reads inside it) applies those deltas to the images' summary rows, per
project and for every project together (ADR 0205): it reads the rows, adds the counts,
derives the worst open severity from them, and writes only the rows that changed. Only a
removed fact that may have carried the newest scan time or an attestation note sends the
flush back to that image's facts. On PostgreSQL, writers of one image take turns from the
flush to their commit (a transaction advisory lock per image, taken in one sorted pass), so
each reads the summary rows of every transaction that wrote the image before it; SQLite's
writers take turns already.

The overview's figures (images and open findings per scope) are ``summary_totals``
(migration 0014, ADR 0195): each flush knows the summary rows it replaced and the ones it
wrote, their difference per scope is added up over the transaction, and just before it
commits (:meth:`SqlImageSummaries.settle`) one upsert per scope adds it to one of 16 stripe
rows, chosen once per transaction: concurrent writers mostly hit different rows, and each
takes its row locks at the end, in scope order. Reads sum a scope's stripes.

Set-based statements fold the summaries from the facts when everything is rebuilt:
:func:`backfill` (migration 0012) computes the facts of every stored occurrence and then the
summaries, and :func:`rebuild_totals` (migration 0014) the totals from the summaries.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chainproof.domain.image_summary import SEVERITIES, Facts, ImageSummary, facts_of
from chainproof.domain.messages import Occurrence, OccurrencePB, from_stored_json
from chainproof.store.judge import DecisionRecord
from chainproof.store.scribe import OccurrenceRecord
from chainproof.store.sql import bulk
from chainproof.store.sql.schema import (
    Time,
    image_attestations,
    image_decisions,
    image_facts,
    image_summaries,
    impact_terms,
    occurrences,
    summary_totals,
)
from chainproof.store.sql.tx import SqlTx, by_keys
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

#: Images per statement: well under both databases' parameter limits.
_CHUNK = 500
#: The first key of this store's advisory locks (the two-key space, apart from the leader's).
_LOCK_SPACE = 0x5C0122
OPEN_COLUMNS = tuple(f"open_{s.removeprefix('SEVERITY_').lower()}" for s in SEVERITIES)
#: An image_summaries row as read and written: scope, resource, occurrences, the open
#: counts, worst_open, last_scan.
SUMMARY_COLUMNS = ("scope", "resource", "occurrences", *OPEN_COLUMNS, "worst_open", "last_scan")
_SUMMARY_KEY = ("scope", "resource")
FACT_COLUMNS = (
    "project",
    "occurrence_id",
    "resource",
    "attestation_note",
    "open_rank",
    "scan_time",
)
TERM_COLUMNS = ("project", "occurrence_id", "field", "term", "resource", "kind", "detail")

_S = image_summaries
_A = image_attestations
_F = image_facts
_T = impact_terms
_D = image_decisions
_TOT = summary_totals
#: Stripes of ``summary_totals`` per scope.
STRIPES = 16


def rows_of(
    project: str,
    occurrence_id: str,
    kind: str,
    note_project: str,
    note_id: str,
    resource: str,
    occurrence: Occurrence,
) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
    """The ``image_facts`` row and the ``impact_terms`` rows of one occurrence (none for an
    occurrence without a resource: it describes no image)."""
    if not resource:
        return None, []
    f = facts_of(kind, note_project, note_id, occurrence)
    return _fact_row(project, occurrence_id, resource, f), _term_rows(
        project, occurrence_id, resource, f
    )


def _fact_row(project: str, occurrence_id: str, resource: str, f: Facts) -> tuple[Any, ...]:
    return (project, occurrence_id, resource, f.attestation_note, f.open_rank, f.scan_time)


def _term_rows(project: str, occurrence_id: str, resource: str, f: Facts) -> list[tuple[Any, ...]]:
    return [(project, occurrence_id, t.field, t.term, resource, t.kind, t.detail) for t in f.terms]


def _rebuild() -> list[Any]:
    """The statements that make every summary what the facts say."""
    open_sums = [
        sa.func.sum(sa.case((_F.c.open_rank == rank, 1), else_=0))
        for rank in range(len(SEVERITIES))
    ]
    aggregates = [
        sa.func.count(),
        *open_sums,
        sa.func.max(_F.c.open_rank),
        sa.func.coalesce(sa.func.max(_F.c.scan_time), sa.literal(NEVER, Time)),
    ]
    columns = list(SUMMARY_COLUMNS)
    per_project = sa.select(_F.c.project, _F.c.resource, *aggregates).group_by(
        _F.c.project, _F.c.resource
    )
    # Every project's summary of an image folds its per-project rows, just written (a few
    # rows an image), instead of reading all its facts a second time: counts add up, the
    # worst rank and the newest scan are the greatest (NEVER sorts first).
    every = (
        sa.select(
            sa.literal(ALL_PROJECTS, _S.c.scope.type),
            _S.c.resource,
            sa.func.sum(_S.c.occurrences),
            *(sa.func.sum(_S.c[name]) for name in OPEN_COLUMNS),
            sa.func.max(_S.c.worst_open),
            sa.func.max(_S.c.last_scan),
        )
        .where(_S.c.scope != ALL_PROJECTS)
        .group_by(_S.c.resource)
    )
    noted = _F.c.attestation_note != ""
    notes_per_project = (
        sa.select(_F.c.project, _F.c.resource, _F.c.attestation_note).where(noted).distinct()
    )
    notes_every = (
        sa.select(sa.literal(ALL_PROJECTS, _A.c.scope.type), _A.c.resource, _A.c.note)
        .where(_A.c.scope != ALL_PROJECTS)
        .distinct()
    )
    return [
        _S.delete(),
        _A.delete(),
        _S.insert().from_select(columns, per_project),
        _S.insert().from_select(columns, every),
        _A.insert().from_select(["scope", "resource", "note"], notes_per_project),
        _A.insert().from_select(["scope", "resource", "note"], notes_every),
    ]


def _lock_key(resource: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(resource.encode(), digest_size=4).digest(), "big", signed=True
    )


def _decision_rows(records: Sequence[DecisionRecord]) -> list[dict[str, str]]:
    newest: dict[tuple[str, str], DecisionRecord] = {}
    for r in records:
        for image in r.images:
            key = (r.project, image)
            if key not in newest or newest[key].decision_id < r.decision_id:
                newest[key] = r
    return [
        {"project": p, "image": i, "decision_id": r.decision_id, "outcome": r.outcome}
        for (p, i), r in sorted(newest.items())
    ]


class _Delta:
    """What one unit of work changed of one (project, image) since the last flush: facts
    added and removed, their open findings per rank, the newest scan time of each (with how
    many facts of each carried it), and the attestation notes named by each."""

    __slots__ = (
        "added_at_newest",
        "added_notes",
        "added_scan",
        "count",
        "opens",
        "removed_at_newest",
        "removed_notes",
        "removed_scan",
    )

    def __init__(self) -> None:
        self.count = 0
        self.opens = [0] * len(SEVERITIES)
        self.added_scan: datetime | None = None
        self.removed_scan: datetime | None = None
        self.added_at_newest = self.removed_at_newest = 0
        self.added_notes: set[str] = set()
        self.removed_notes: set[str] = set()

    def add(self, open_rank: int, scan_time: datetime | None, note: str) -> None:
        self.count += 1
        if open_rank >= 0:
            self.opens[open_rank] += 1
        if scan_time is not None:
            if self.added_scan is None or scan_time > self.added_scan:
                self.added_scan, self.added_at_newest = scan_time, 1
            elif scan_time == self.added_scan:
                self.added_at_newest += 1
        if note:
            self.added_notes.add(note)

    def remove(self, open_rank: int, scan_time: datetime | None, note: str) -> None:
        self.count -= 1
        if open_rank >= 0:
            self.opens[open_rank] -= 1
        if scan_time is not None:
            if self.removed_scan is None or scan_time > self.removed_scan:
                self.removed_scan, self.removed_at_newest = scan_time, 1
            elif scan_time == self.removed_scan:
                self.removed_at_newest += 1
        if note:
            self.removed_notes.add(note)

    def last_scan(self, old: datetime) -> datetime | None:
        """The summary's newest scan after this change, from the old one and the delta
        alone; None when a removed fact may have held it (the facts must say)."""
        new = old if self.added_scan is None or self.added_scan < old else self.added_scan
        if self.removed_scan is not None and self.removed_scan >= new:
            # Removed facts are all older than ``new`` otherwise, so its holder remains.
            # A removed fact can only be as new as ``new`` (it was stored, or added here).
            # When more facts dated ``new`` were added than facts so dated were removed, one
            # of them remains whichever were removed: a re-dated DISCOVERY (deleted, then
            # written again at the same instant) keeps the image's newest scan.
            if self.added_scan == new and self.added_at_newest > self.removed_at_newest:
                return new
            return None
        return new


def _worst(opens: Sequence[int]) -> int:
    for rank in range(len(opens) - 1, -1, -1):
        if opens[rank]:
            return rank
    return -1


class SqlImageSummaries(ImageSummaryRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._tx, self._c = tx, tx.connection
        #: (project, resource) → what this transaction changed since the last flush.
        self._deltas: dict[tuple[str, str], _Delta] = {}
        #: Per scope: [images, open counts…] this transaction added (negative: removed) and
        #: has not written into summary_totals yet.
        self._pending: dict[str, list[int]] = {}
        self._stripe = random.randrange(STRIPES)  # noqa: S311 - spreads writers, no secret

    # ------------------------------------------------------------------ writes (the store's)

    def _delta(self, project: str, resource: str) -> _Delta:
        d = self._deltas.get((project, resource))
        if d is None:
            d = self._deltas[(project, resource)] = _Delta()
        return d

    async def written(self, records: Sequence[OccurrenceRecord]) -> None:
        """Occurrences were inserted (or replaced, after :meth:`removed`). Records that share
        a ``template`` share their facts, computed once (a scanner's copies)."""
        facts: list[tuple[Any, ...]] = []
        terms: list[tuple[Any, ...]] = []
        shared: dict[int, Facts] = {}  # id(template): the records keep each alive meanwhile
        d: _Delta | None = None
        key: tuple[str, str] = ("", "")
        for r in records:
            if not r.resource:
                continue  # it describes no image
            f = shared.get(id(r.template)) if r.template is not None else None
            if f is None:
                f = facts_of(r.kind, r.note_project, r.note_id, r.occurrence)
                if r.template is not None:
                    shared[id(r.template)] = f
            facts.append(_fact_row(r.project, r.occurrence_id, r.resource, f))
            terms.extend(_term_rows(r.project, r.occurrence_id, r.resource, f))
            if d is None or key != (r.project, r.resource):  # a batch is mostly one image
                key = (r.project, r.resource)
                d = self._delta(*key)
            d.add(f.open_rank, f.scan_time, f.attestation_note)
        # One driver call per table (COPY on PostgreSQL, the driver's executemany on
        # SQLite): an SBOM's 10,000 packages make 10,000 facts and 20,000 terms, and
        # SQLAlchemy's executemany spent more on their parameter dicts than SQLite on the rows.
        await bulk.insert_rows(self._c, self._tx.postgres, _F, tuple(FACT_COLUMNS), facts)
        await bulk.insert_rows(self._c, self._tx.postgres, _T, tuple(TERM_COLUMNS), terms)

    async def removed(
        self,
        project: str,
        occurrence_ids: Sequence[str],
        successors: Mapping[str, OccurrenceRecord] | None = None,
    ) -> None:
        """Occurrences were deleted (or are about to be replaced). ``successors``: the
        records about to be written over some of them, by ID (an update, which keeps the
        image and note). A removed fact whose successor names the same attestation note, or
        dates as new a scan or newer, leaves that to its successor: the delta does not count
        it as a note or a newest scan that may be gone, which would send the flush back to
        the image's facts (a re-dated DISCOVERY would re-read every fact of its image)."""
        later = {
            i: facts_of(r.kind, r.note_project, r.note_id, r.occurrence)
            for i, r in (successors or {}).items()
        }
        for start in range(0, len(occurrence_ids), _CHUNK):
            chunk = list(occurrence_ids[start : start + _CHUNK])
            stmt = (
                _F.delete()
                .where(_F.c.project == project, _F.c.occurrence_id.in_(chunk))
                .returning(
                    _F.c.occurrence_id,
                    _F.c.resource,
                    _F.c.open_rank,
                    _F.c.scan_time,
                    _F.c.attestation_note,
                )
            )
            for oid, resource, rank, scan_time, note in await self._c.execute(stmt):
                after = later.get(oid)
                if after is not None:
                    if scan_time is not None and after.scan_time is not None:
                        scan_time = None if after.scan_time >= scan_time else scan_time
                    note = "" if note and note == after.attestation_note else note
                self._delta(project, resource).remove(rank, scan_time, note)
            await self._c.execute(
                _T.delete().where(_T.c.project == project, _T.c.occurrence_id.in_(chunk))
            )

    async def decisions_written(self, records: Sequence[DecisionRecord]) -> None:
        rows = _decision_rows(records)
        if not rows:
            return
        stmt = self._tx.insert(_D)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_D.c.project, _D.c.image],
            set_={"decision_id": stmt.excluded.decision_id, "outcome": stmt.excluded.outcome},
            where=_D.c.decision_id < stmt.excluded.decision_id,
        )
        await self._c.execute(stmt, rows)

    def discard(self) -> None:
        """The transaction rolled back: what it touched is as it was."""
        self._deltas.clear()
        self._pending.clear()

    async def settle(self) -> None:
        """Flush, then add this transaction's change of the totals to its stripe rows: the
        unit of work's last statements before it commits."""
        await self.flush()
        pending, self._pending = self._pending, {}
        rows = [
            {
                "scope": scope,
                "stripe": self._stripe,
                "images": delta[0],
                **dict(zip(OPEN_COLUMNS, delta[1:], strict=True)),
            }
            for scope, delta in sorted(pending.items())
            if any(delta)
        ]
        if not rows:
            return
        stmt = self._tx.insert(_TOT)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_TOT.c.scope, _TOT.c.stripe],
            set_={name: _TOT.c[name] + stmt.excluded[name] for name in ("images", *OPEN_COLUMNS)},
        )
        for row in rows:  # one at a time, in scope order: row locks taken in one order
            await self._c.execute(stmt, row)

    def _count_row(self, row: Sequence[Any], sign: int) -> None:
        """A summary row (SUMMARY_COLUMNS) appears (+1) or goes (-1): the totals' change."""
        delta = self._pending.setdefault(row[0], [0] * (1 + len(OPEN_COLUMNS)))
        delta[0] += sign
        for i in range(len(OPEN_COLUMNS)):
            delta[i + 1] += sign * int(row[i + 3])

    async def flush(self) -> None:
        """Apply what this transaction changed since the last flush to the summaries of the
        images it touched (ADR 0205): read their summary rows (each project's and every
        project's), add the deltas, and write the rows that changed. Counts add up and the
        worst open severity follows from them; a newest scan time or an attestation note
        that a removed fact may have carried is read again from the image's facts, the one
        case where a delta alone cannot tell."""
        if not self._deltas:
            return
        deltas, self._deltas = self._deltas, {}
        resources = sorted({r for _, r in deltas})
        if self._tx.postgres:
            # Writers of one image take turns from here to their commit, so each reads the
            # summary rows the previous one wrote.
            await self._c.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(:space, k) FROM "
                    "(SELECT DISTINCT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS s"
                ),
                {"space": _LOCK_SPACE, "keys": [_lock_key(r) for r in resources]},
            )
        keys = [*deltas, *((ALL_PROJECTS, r) for r in resources)]
        old = await self._stored_rows(keys)
        # Every project's row of an image changes by the sum of its projects' deltas.
        every: dict[str, _Delta] = {}
        refold: set[tuple[str, str]] = set()
        new: dict[tuple[str, str], tuple[Any, ...] | None] = {}
        for key, d in deltas.items():
            resource = key[1]
            e = every.get(resource)
            if e is None:
                e = every[resource] = _Delta()
            e.count += d.count
            e.opens = [a + b for a, b in zip(e.opens, d.opens, strict=True)]
            e.added_notes |= d.added_notes
            e.removed_notes |= d.removed_notes
            row = new[key] = self._applied(key, old.get(key), d, refold)
            if key in refold:
                refold.add((ALL_PROJECTS, resource))  # its newest scan may have been this one
            elif row is not None and (e.added_scan is None or row[-1] > e.added_scan):
                e.added_scan = row[-1]
        for resource, e in every.items():
            # Unless refolded: never lower than before (no project's newest scan went down),
            # raised to the newest of the projects' new ones.
            key = (ALL_PROJECTS, resource)
            new[key] = self._applied(key, old.get(key), e, refold)
        if refold:
            newest = await self._newest_scans(sorted({r for _, r in refold}))
            for key in refold:
                row = new[key]
                if row is not None:
                    new[key] = (*row[:-1], newest.get(key, NEVER))
        upserts: list[tuple[Any, ...]] = []
        gone: list[tuple[str, str]] = []
        for key, row in new.items():
            before = old.get(key)
            if row == before:
                continue
            if before is not None:
                self._count_row(before, -1)
            if row is None:
                gone.append(key)
            else:
                upserts.append(row)
                self._count_row(row, +1)
        for start in range(0, len(gone), _CHUNK):
            chunk = gone[start : start + _CHUNK]
            await self._c.execute(
                _S.delete().where(sa.tuple_(_S.c.scope, _S.c.resource).in_(chunk))
            )
        await bulk.upsert_rows(
            self._c, self._tx.postgres, _S, SUMMARY_COLUMNS, _SUMMARY_KEY, upserts
        )
        await self._apply_notes(deltas, every)

    @staticmethod
    def _applied(
        key: tuple[str, str],
        old: tuple[Any, ...] | None,
        d: _Delta,
        refold: set[tuple[str, str]],
    ) -> tuple[Any, ...] | None:
        """The summary row ``key`` holds after ``d`` (None: the scope no longer has facts
        about the image); its last scan is a placeholder when ``key`` joins ``refold``."""
        last = d.last_scan(old[-1] if old is not None else NEVER)
        if last is None:
            # Also when the scope has no facts left: every project's newest scan may have
            # been this scope's.
            refold.add(key)
            last = NEVER
        count = (old[2] if old is not None else 0) + d.count
        if count <= 0:
            return None
        opens = [
            (old[3 + i] if old is not None else 0) + d.opens[i] for i in range(len(SEVERITIES))
        ]
        return (*key, count, *opens, _worst(opens), last)

    async def _stored_rows(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        columns = [_S.c[c] for c in SUMMARY_COLUMNS]
        found: dict[tuple[str, str], Any] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            stmt = by_keys(self._tx.postgres, sa.select(*columns), _S, [], _SUMMARY_KEY, chunk)
            for row in await self._c.execute(stmt):
                found[(row[0], row[1])] = tuple(row)
        return found

    async def _newest_scans(self, resources: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """The newest scan time of each project's facts about ``resources``, and of every
        project's (under ALL_PROJECTS): read along the facts' index, image by image."""
        newest: dict[tuple[str, str], datetime] = {}
        for start in range(0, len(resources), _CHUNK):
            chunk = list(resources[start : start + _CHUNK])
            stmt = (
                sa.select(_F.c.project, _F.c.resource, sa.func.max(_F.c.scan_time))
                .where(_F.c.resource.in_(chunk), _F.c.scan_time.is_not(None))
                .group_by(_F.c.project, _F.c.resource)
            )
            for project, resource, when in await self._c.execute(stmt):
                newest[(project, resource)] = when
                every = newest.get((ALL_PROJECTS, resource))
                if every is None or when > every:
                    newest[(ALL_PROJECTS, resource)] = when
        return newest

    async def _apply_notes(
        self, deltas: dict[tuple[str, str], _Delta], every: dict[str, _Delta]
    ) -> None:
        """``image_attestations`` after the deltas: a note added is there (per project and
        for every project); a note removed stays only while a fact of that scope names it."""
        added = [(p, r, n) for (p, r), d in deltas.items() for n in sorted(d.added_notes)]
        added += [(ALL_PROJECTS, r, n) for r, e in every.items() for n in sorted(e.added_notes)]
        if added:
            stmt = self._tx.insert(_A).on_conflict_do_nothing()
            rows = [{"scope": s, "resource": r, "note": n} for s, r, n in added]
            await self._c.execute(stmt, rows)
        removed = [
            {"scope": p, "resource": r, "note": n}
            for (p, r), d in deltas.items()
            for n in sorted(d.removed_notes)
        ]
        if not removed:
            return
        await self._c.execute(sa.text(_DROP_NOTE_OF_PROJECT), removed)
        await self._c.execute(
            sa.text(_DROP_NOTE_OF_EVERY_PROJECT),
            [
                {"every": ALL_PROJECTS, "resource": r, "note": n}
                for r, e in every.items()
                for n in sorted(e.removed_notes)
            ],
        )

    # ------------------------------------------------------------------ reads

    def _source(self, projects: tuple[str, ...] | None) -> sa.Subquery:
        opens = [_S.c[name] for name in OPEN_COLUMNS]
        if projects is None or len(projects) == 1:
            scope = ALL_PROJECTS if projects is None else projects[0]
            return (
                sa.select(_S.c.resource, _S.c.occurrences, *opens, _S.c.worst_open, _S.c.last_scan)
                .where(_S.c.scope == scope)
                .subquery("src")
            )
        sums = [sa.func.sum(c).label(c.name) for c in opens]
        worst = sa.case(
            *[(sa.func.sum(opens[rank]) > 0, rank) for rank in range(len(opens) - 1, -1, -1)],
            else_=-1,
        )
        return (
            sa.select(
                _S.c.resource,
                sa.func.sum(_S.c.occurrences).label("occurrences"),
                *sums,
                worst.label("worst_open"),
                sa.func.max(_S.c.last_scan).label("last_scan"),
            )
            .where(_S.c.scope.in_(projects))
            .group_by(_S.c.resource)
            .subquery("src")
        )

    def _select(self, query: SummaryQuery) -> tuple[sa.Select[Any], sa.Subquery, Any]:
        src = self._source(query.projects)
        scopes = (ALL_PROJECTS,) if query.projects is None else query.projects
        joined = src.outerjoin(
            _D, sa.and_(_D.c.project == query.decision_project, _D.c.image == src.c.resource)
        )
        stmt = sa.select(src, _D.c.decision_id, _D.c.outcome).select_from(joined)
        if query.image:
            stmt = stmt.where(
                sa.func.lower(src.c.resource).contains(query.image.lower(), autoescape=True)
            )
        if query.decision == "none":
            # On the join column: PostgreSQL then plans an anti join on the index order.
            stmt = stmt.where(_D.c.image.is_(None))
        elif query.decision:
            stmt = stmt.where(_D.c.outcome == query.decision)
        for note, wanted in ((query.present, True), (query.missing, False)):
            if note:
                has = sa.exists().where(
                    _A.c.scope.in_(scopes), _A.c.resource == src.c.resource, _A.c.note == note
                )
                stmt = stmt.where(has if wanted else ~has)
        if query.severity:
            rank = -1 if query.severity == "NONE" else SEVERITIES.index(query.severity)
            stmt = stmt.where(src.c.worst_open == rank)
        if query.scanned_since is not None:
            stmt = stmt.where(src.c.last_scan >= query.scanned_since)
        if query.not_scanned_since is not None:
            stmt = stmt.where(src.c.last_scan < query.not_scanned_since)
        key: Any = {
            "decision": sa.func.coalesce(_D.c.outcome, ""),
            "severity": src.c.worst_open,
            "scan": src.c.last_scan,
            "occurrences": src.c.occurrences,
        }.get(query.sort)
        return stmt, src, key

    async def _outcomes(self, project: str) -> list[str]:
        """The distinct outcomes of ``project``'s image decisions, ascending: one index probe
        per outcome (a loose index scan on ix_image_decisions_outcome), not a read of every
        decided image."""
        found = await self._c.execute(sa.text(_OUTCOMES_OF_PROJECT), {"project": project})
        return sorted(str(row[0]) for row in found)

    async def _page_by_decision(
        self, query: SummaryQuery, after: After | None, limit: int
    ) -> list[Any]:
        """``sort=decision`` as one index-ordered read per outcome, in outcome order (images
        without a decision sort as ""), each stopping when the page is full: never a sort
        of every image by a joined column."""
        outcomes = await self._outcomes(query.decision_project)
        groups = ["", *(o for o in outcomes if o)]
        if query.decision == "none":
            groups = [""]
        elif query.decision:
            groups = [g for g in groups if g == query.decision]
        desc = query.descending
        groups.sort(reverse=desc)
        found: list[Any] = []
        for group in groups:
            if after is not None and (group > after[0] if desc else group < after[0]):
                continue  # the whole group comes before the keyset position
            stmt, src, _ = self._select(query)
            if group:
                stmt = stmt.where(_D.c.outcome == group)
            elif "" in outcomes:  # a decision recorded without an outcome sorts as none
                stmt = stmt.where(sa.or_(_D.c.image.is_(None), _D.c.outcome == ""))
            else:
                # Images without a decision: an anti join along the summaries' index order
                # (on the join column, so PostgreSQL sees it as one), stopping at the limit.
                stmt = stmt.where(_D.c.image.is_(None))
            if after is not None and group == after[0]:
                resource = after[1]
                stmt = stmt.where(src.c.resource < resource if desc else src.c.resource > resource)
            order = src.c.resource.desc() if desc else src.c.resource.asc()
            stmt = stmt.order_by(order).limit(limit - len(found))
            found.extend(await self._rows(query, stmt, src))
            if len(found) >= limit:
                break
        return found

    async def _page(self, query: SummaryQuery, after: After | None, limit: int) -> list[SummaryRow]:
        if query.sort == "decision":
            return await self._summary_rows(
                query, await self._page_by_decision(query, after, limit)
            )
        stmt, src, key = self._select(query)
        desc = query.descending
        if after is not None:
            value, resource = after
            if key is None:
                stmt = stmt.where(src.c.resource < resource if desc else src.c.resource > resource)
            else:
                mine = sa.tuple_(key, src.c.resource)
                theirs = sa.tuple_(
                    sa.bindparam(None, value, type_=key.type), sa.bindparam(None, resource)
                )
                stmt = stmt.where(mine < theirs if desc else mine > theirs)
        order = [src.c.resource] if key is None else [key, src.c.resource]
        stmt = stmt.order_by(*[c.desc() if desc else c.asc() for c in order]).limit(limit)
        return await self._summary_rows(query, await self._rows(query, stmt, src))

    async def _rows(self, query: SummaryQuery, stmt: sa.Select[Any], src: sa.Subquery) -> list[Any]:
        """The rows of a page statement. Over one scope in two steps: first only the
        resources, which PostgreSQL can then walk index-only, testing the filters (the
        substring above all) on the index's own tuples instead of fetching each row it
        rejects; then the page's rows by primary key. Merged scopes are an aggregate, read
        once."""
        if query.projects is not None and len(query.projects) > 1:
            return list((await self._c.execute(stmt)).all())
        resources = [r[0] for r in await self._c.execute(stmt.with_only_columns(src.c.resource))]
        if not resources:
            return []
        whole, src2, _ = self._select(SummaryQuery(query.projects, query.decision_project))
        found = {
            row.resource: row
            for row in await self._c.execute(whole.where(src2.c.resource.in_(resources)))
        }
        return [found[r] for r in resources if r in found]

    async def _summary_rows(self, query: SummaryQuery, found: Sequence[Any]) -> list[SummaryRow]:
        notes = await self._notes(query.projects, [row.resource for row in found])
        out: list[SummaryRow] = []
        for row in found:
            summary = ImageSummary(
                resource=row.resource,
                occurrences=int(row.occurrences),
                attestation_notes=tuple(sorted(notes.get(row.resource, ()))),
                open_counts=tuple(int(row._mapping[c]) for c in OPEN_COLUMNS),
                last_scan=None if row.last_scan <= NEVER else row.last_scan,
            )
            decision = (
                None
                if row.decision_id is None
                else ImageDecision(
                    query.decision_project, row.resource, row.decision_id, row.outcome
                )
            )
            out.append(SummaryRow(summary, decision))
        return out

    async def _notes(
        self, projects: tuple[str, ...] | None, resources: Sequence[str]
    ) -> dict[str, set[str]]:
        if not resources:
            return {}
        scopes = (ALL_PROJECTS,) if projects is None else projects
        stmt = sa.select(_A.c.resource, _A.c.note).where(
            _A.c.scope.in_(scopes), _A.c.resource.in_(list(resources))
        )
        out: dict[str, set[str]] = {}
        for row in await self._c.execute(stmt):
            out.setdefault(row.resource, set()).add(row.note)
        return out

    async def _count(self, query: SummaryQuery, bound: int | None) -> int:
        stmt, src, _ = self._select(query)
        stmt = stmt.with_only_columns(src.c.resource)
        if bound is not None:
            stmt = stmt.limit(bound + 1)  # "more than bound" costs bound + 1 rows, no more
        total = await self._c.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))
        return int(total.scalar() or 0)

    async def _totals(self, projects: tuple[str, ...] | None) -> SummaryTotals:
        if projects is None or len(projects) == 1:
            # One scope: the sum of its stripes in summary_totals (and what this transaction
            # has yet to add to them), not a read of every summary.
            scope = ALL_PROJECTS if projects is None else projects[0]
            sums = [sa.func.coalesce(sa.func.sum(_TOT.c[c]), 0) for c in ("images", *OPEN_COLUMNS)]
            row = (await self._c.execute(sa.select(*sums).where(_TOT.c.scope == scope))).one()
            mine = self._pending.get(scope, [0] * len(row))
            values = [int(v) + d for v, d in zip(row, mine, strict=True)]
            return SummaryTotals(values[0], tuple(values[1:]))
        # Several projects but not all: an image may be in more than one, so count them.
        opens = [sa.func.coalesce(sa.func.sum(_S.c[c]), 0) for c in OPEN_COLUMNS]
        images = sa.func.count(sa.distinct(_S.c.resource))
        where = _S.c.scope.in_(projects)
        found = (await self._c.execute(sa.select(images, *opens).where(where))).one()
        return SummaryTotals(int(found[0]), tuple(int(v) for v in found[1:]))

    async def _impact(
        self,
        terms: Sequence[tuple[str, str, bool]],
        projects: tuple[str, ...] | None,
        limit: int,
    ) -> list[ImpactRow]:
        """Each alternative is read in the order of ix_impact_terms_term (field, term,
        resource) — the index's own order, so no plan sorts the matches — in chunks of whole
        (term, image) groups, and the alternatives merged (:func:`merge_impact`): a query
        that matches 100,000 images reads a few hundred rows, never all of them."""
        columns = (_T.c.term, _T.c.resource, _T.c.kind, _T.c.detail)

        async def read(stmt: sa.Select[Any]) -> list[tuple[str, str, str, str]]:
            return [(r.term, r.resource, r.kind, r.detail) for r in await self._c.execute(stmt)]

        def matching(alternative: int) -> sa.Select[Any]:
            field, term, prefix = terms[alternative]
            stmt = sa.select(*columns).where(
                _T.c.field == field,
                sa.and_(_T.c.term >= term, _T.c.term < term + TOP) if prefix else _T.c.term == term,
            )
            return stmt if projects is None else stmt.where(_T.c.project.in_(projects))

        async def chunk(alternative: int, after: tuple[str, str] | None) -> Chunk:
            stmt = matching(alternative)
            if after is not None:
                stmt = stmt.where(sa.tuple_(_T.c.term, _T.c.resource) > sa.tuple_(*after))
            stmt = stmt.order_by(_T.c.term, _T.c.resource).limit(limit + 1)
            rows = await read(stmt)
            if len(rows) <= limit:
                return rows, None
            # More follow, and the last (term, image) group may be cut: leave it for the next
            # chunk — unless it is the whole chunk (one image naming one term very often):
            # then read that group alone, whole.
            cut = rows[-1][:2]
            whole = [r for r in rows if r[:2] != cut]
            if not whole:
                group = matching(alternative).where(_T.c.term == cut[0], _T.c.resource == cut[1])
                whole = [
                    (r.term, r.resource, r.kind, r.detail) for r in await self._c.execute(group)
                ]
            return whole, (whole[-1][0], whole[-1][1])

        return await merge_impact(chunk, len(terms), limit)


#: Rows of one alternative's chunk, and the (term, image) it has read up to and including;
#: None when that alternative has no more rows.
Chunk = tuple[list[tuple[str, str, str, str]], tuple[str, str] | None]


async def merge_impact(
    chunk: Callable[[int, tuple[str, str] | None], Awaitable[Chunk]],
    alternatives: int,
    limit: int,
) -> list[ImpactRow]:
    """The first ``limit`` distinct (image, kind, detail) rows of ``alternatives`` streams
    of (term, image, kind, detail) rows ordered by (term, image), ordered by all four, each
    row at its least term. ``chunk(i, after)`` reads stream ``i`` past (term, image)
    ``after`` in whole (term, image) groups. A row is certain once every stream that may
    hold more has been read up to its (term, image); streams are read on until ``limit``
    rows are certain."""
    fetched: list[tuple[str, str, str, str]] = []
    upto: dict[int, tuple[str, str]] = {}  # streams that may hold more: read up to here
    for i in range(alternatives):
        rows, position = await chunk(i, None)
        fetched += rows
        if position is not None:
            upto[i] = position
    while True:
        frontier = min(upto.values()) if upto else None
        fetched.sort()
        seen: set[tuple[str, str, str]] = set()
        out: list[ImpactRow] = []
        for row in fetched:
            if frontier is not None and row[:2] > frontier:
                break
            if row[1:] not in seen:
                seen.add(row[1:])
                out.append(ImpactRow(row[1], row[2], row[3]))
                if len(out) == limit:
                    return out
        if frontier is None:
            return out
        for i in [i for i, position in upto.items() if position == frontier]:
            rows, position = await chunk(i, frontier)
            fetched += rows
            if position is None:
                del upto[i]
            else:
                upto[i] = position


def backfill(connection: sa.Connection, *, page: int = 5000, totals: bool = True) -> int:
    """Compute the facts and terms of every stored occurrence and then every summary, on a
    synchronous connection (the migration's; a benchmark's). Returns the occurrences read.
    The newest decision per project and image comes from the decision log. ``totals``: then
    the overview's totals too (False for migration 0012, which runs before their table)."""
    o = occurrences
    after: tuple[str, str] | None = None
    read = 0
    while True:
        stmt = sa.select(
            o.c.project, o.c.occurrence_id, o.c.kind, o.c.note_project, o.c.note_id,
            o.c.resource, o.c.data,
        ).order_by(o.c.project, o.c.occurrence_id).limit(page)  # fmt: skip
        if after is not None:
            stmt = stmt.where(sa.tuple_(o.c.project, o.c.occurrence_id) > sa.tuple_(*after))
        rows = connection.execute(stmt).all()
        if not rows:
            break
        read += len(rows)
        after = (rows[-1].project, rows[-1].occurrence_id)
        facts, terms = _rows_of_stored(rows)
        if facts:
            connection.execute(
                _F.insert(), [dict(zip(FACT_COLUMNS, f, strict=True)) for f in facts]
            )
        if terms:
            connection.execute(
                _T.insert(), [dict(zip(TERM_COLUMNS, t, strict=True)) for t in terms]
            )
    rebuild(connection)
    if totals:
        rebuild_totals(connection)
    return read


def _rows_of_stored(rows: Iterable[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    facts: list[tuple[Any, ...]] = []
    terms: list[tuple[Any, ...]] = []
    for row in rows:
        fact, its_terms = rows_of(
            row.project, row.occurrence_id, row.kind, row.note_project, row.note_id, row.resource,
            from_stored_json(OccurrencePB, row.data),
        )  # fmt: skip
        if fact is not None:
            facts.append(fact)
            terms.extend(its_terms)
    return facts, terms


def rebuild(connection: sa.Connection) -> None:
    """Every summary from the facts, and every image's newest decision from the log."""
    for stmt in _rebuild():
        connection.execute(stmt)
    connection.execute(_D.delete())
    connection.execute(sa.text(_DECISIONS_FROM_LOG))


def rebuild_totals(connection: sa.Connection) -> None:
    """``summary_totals`` anew from the summaries: one stripe (0) per scope."""
    connection.execute(_TOT.delete())
    sums = [sa.func.sum(_S.c[c]) for c in OPEN_COLUMNS]
    connection.execute(
        _TOT.insert().from_select(
            ["scope", "stripe", "images", *OPEN_COLUMNS],
            sa.select(
                _S.c.scope, sa.literal(0, sa.SmallInteger()), sa.func.count(), *sums
            ).group_by(_S.c.scope),
        )
    )


#: A project's attestation note of an image, gone when no fact of the project names it now.
_DROP_NOTE_OF_PROJECT = """
DELETE FROM image_attestations
WHERE scope = :scope AND resource = :resource AND note = :note
AND NOT EXISTS (
    SELECT 1 FROM image_facts AS f
    WHERE f.resource = :resource AND f.project = :scope AND f.attestation_note = :note
)
"""
#: Every project's attestation note of an image, gone when no fact of any project names it.
_DROP_NOTE_OF_EVERY_PROJECT = """
DELETE FROM image_attestations
WHERE scope = :every AND resource = :resource AND note = :note
AND NOT EXISTS (
    SELECT 1 FROM image_facts AS f WHERE f.resource = :resource AND f.attestation_note = :note
)
"""

#: The distinct outcomes of a project's image decisions by a loose index scan (recursive: the
#: next outcome above the last one found), on PostgreSQL and SQLite alike.
_OUTCOMES_OF_PROJECT = """
WITH RECURSIVE o(outcome) AS (
    SELECT min(outcome) FROM image_decisions WHERE project = :project
    UNION ALL
    SELECT (
        SELECT min(d.outcome) FROM image_decisions AS d
        WHERE d.project = :project AND d.outcome > o.outcome
    ) FROM o WHERE o.outcome IS NOT NULL
)
SELECT outcome FROM o WHERE outcome IS NOT NULL
"""


#: The newest decision of each project's log about each image (decision IDs sort in time).
_DECISIONS_FROM_LOG = """
INSERT INTO image_decisions (project, image, decision_id, outcome)
SELECT d.project, di.image, d.decision_id, d.outcome
FROM decision_images AS di JOIN decisions AS d ON d.decision_id = di.decision_id
WHERE NOT EXISTS (
    SELECT 1 FROM decision_images AS di2 JOIN decisions AS d2 ON d2.decision_id = di2.decision_id
    WHERE di2.image = di.image AND d2.project = d.project AND d2.decision_id > d.decision_id
)
"""
