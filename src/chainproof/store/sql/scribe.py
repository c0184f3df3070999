"""The scribe's repositories on SQL: projects, notes, occurrences and server metadata.

Queries are SQLAlchemy Core expressions on the tables of store/sql/schema.py, run on the unit
of work's connection (store/sql/tx.py). Semantics follow the memory reference adapter; the
shared rules (distinct keys, empty batches, non-positive limits) were applied before any
method here is called (store/scribe.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from chainproof.domain.filters import Expr
from chainproof.domain.messages import NotePB, OccurrencePB, from_stored_json, to_json
from chainproof.store.scribe import (
    MetaRepository,
    NoteRecord,
    NoteRepository,
    OccurrenceRecord,
    OccurrenceRepository,
    OccurrenceSlice,
    ProjectRepository,
    SlicesRead,
    StoredJson,
    StoredOccurrence,
)
from chainproof.store.sql import bulk
from chainproof.store.sql.filters import (
    NOTE_COLUMNS,
    OCCURRENCE_COLUMNS,
    compile_filter,
    lists_values,
)
from chainproof.store.sql.schema import meta, notes, occurrences, projects
from chainproof.store.sql.summaries import SqlImageSummaries
from chainproof.store.sql.tx import Row, SqlTx, by_keys, dump_json

#: Keys per ``(project, id) IN (…)`` query: well under both databases' parameter limits.
_KEYS_PER_QUERY = 500
#: Up to this many resources, SQLite probes the note index once per (note, resource) pair;
#: beyond it, each note's range of the index is walked and the resources sifted from it.
_PROBED_RESOURCES = 8
#: Note IDs looked up in one statement (below SQLite's and asyncpg's 32,766 parameters).
_NOTE_IDS_PER_QUERY = 5000
#: Slices per statement of ``read_slices``: each is one arm of a UNION ALL with at most a few
#: parameters, well under SQLite's 500 compound arms and both databases' parameter limits.
_SLICES_PER_QUERY = 100


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp = getattr(message, field)
    return _datetime(stamp.seconds, stamp.nanos)


@functools.lru_cache(maxsize=1024)  # a batch shares one instant; convert it once
def _datetime(seconds: int, nanos: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)


def _note_row(record: NoteRecord) -> dict[str, Any]:
    return {
        "project": record.project,
        "note_id": record.note_id,
        "kind": record.kind,
        "data": record.document if record.document is not None else to_json(record.note),
        "create_time": _time(record.note, "create_time"),
        "update_time": _time(record.note, "update_time"),
    }


def _occurrence_row(record: OccurrenceRecord) -> dict[str, Any]:
    return {
        "project": record.project,
        "occurrence_id": record.occurrence_id,
        "kind": record.kind,
        "note_project": record.note_project,
        "note_id": record.note_id,
        "resource": record.resource,
        "data": (record.document if record.document is not None else to_json(record.occurrence)),
        "create_time": _time(record.occurrence, "create_time"),
        "update_time": _time(record.occurrence, "update_time"),
    }


#: The columns the bulk path writes (store/sql/bulk.py), in the order of its tuples.
_NOTE_WRITE = ("project", "note_id", "kind", "data", "create_time", "update_time")
_OCCURRENCE_WRITE = (
    "project",
    "occurrence_id",
    "kind",
    "note_project",
    "note_id",
    "resource",
    "data",
    "create_time",
    "update_time",
)


def _note_values(record: NoteRecord) -> bulk.Values:
    data = record.document if record.document is not None else to_json(record.note)
    return (
        record.project,
        record.note_id,
        record.kind,
        dump_json(data),
        _time(record.note, "create_time"),
        _time(record.note, "update_time"),
    )


def _occurrence_values(record: OccurrenceRecord) -> bulk.Values:
    data = record.document if record.document is not None else to_json(record.occurrence)
    return (
        record.project,
        record.occurrence_id,
        record.kind,
        record.note_project,
        record.note_id,
        record.resource,
        dump_json(data),
        _time(record.occurrence, "create_time"),
        _time(record.occurrence, "update_time"),
    )


_IDENTITY_SELECT = sa.select(
    occurrences.c.occurrence_id,
    occurrences.c.kind,
    occurrences.c.note_project,
    occurrences.c.note_id,
    occurrences.c.resource,
)
_OCCURRENCE_UPDATE = (
    occurrences.update()
    .where(
        occurrences.c.project == sa.bindparam("k_project"),
        occurrences.c.occurrence_id == sa.bindparam("k_occurrence_id"),
    )
    .values(
        data=sa.bindparam("v_data"),
        create_time=sa.bindparam("v_create_time"),
        update_time=sa.bindparam("v_update_time"),
    )
)
_NOTE_SELECT = sa.select(notes.c.project, notes.c.note_id, notes.c.kind, notes.c.data)
_NOTE_KIND_SELECT = sa.select(notes.c.project, notes.c.note_id, notes.c.kind)
_OCCURRENCE_SELECT = sa.select(
    occurrences.c.project,
    occurrences.c.occurrence_id,
    occurrences.c.kind,
    occurrences.c.note_project,
    occurrences.c.note_id,
    occurrences.c.resource,
    occurrences.c.data,
)

_OCCURRENCE_JSON_SELECT = sa.select(
    occurrences.c.occurrence_id, sa.cast(occurrences.c.data, sa.Text)
)


def _note(row: Row) -> NoteRecord:
    return NoteRecord(
        project=row.project,
        note_id=row.note_id,
        kind=row.kind,
        note=from_stored_json(NotePB, row.data),
    )


def _stored_occurrence(row: Row) -> StoredOccurrence:
    """A row of ``_OCCURRENCE_SELECT`` with its document as stored (no protobuf)."""
    return StoredOccurrence(
        row.project,
        row.occurrence_id,
        row.kind,
        row.note_project,
        row.note_id,
        row.resource,
        row.data,
    )


def _occurrence(row: Row) -> OccurrenceRecord:
    return OccurrenceRecord(
        project=row.project,
        occurrence_id=row.occurrence_id,
        kind=row.kind,
        note_project=row.note_project,
        note_id=row.note_id,
        resource=row.resource,
        occurrence=from_stored_json(OccurrencePB, row.data),
    )


#: The shape of one slice, which decides its SQL: (by note?, kinds listed, kinds with notes).
_SliceShape = tuple[bool, int, int]


@functools.lru_cache(maxsize=256)
def _slices_statement(shapes: tuple[_SliceShape, ...], sqlite: bool) -> sa.CompoundSelect[Any]:
    """The UNION ALL that reads slices of these shapes, built once per shape and dialect (the
    values are bound parameters: ``r{i}`` resource, ``p{i}``/``q{i}`` project or note, ``k{i}_{j}``
    kinds, ``w{i}_{j}`` kinds that come with their note, ``l{i}`` limit).

    Each arm is its own index range scan, ordered by ID and cut at its limit in the database,
    so a resource flooded with occurrences costs at most its limit, never a scan of them all.
    On SQLite the kind is compared as ``+kind``, which no index serves: without statistics
    its planner would otherwise pick ``(project, kind, occurrence_id)`` for a single kind and
    walk every PACKAGE of the project in ID order to skip a sort of a few rows."""
    arms = []
    for i, (by_note, kinds, with_notes) in enumerate(shapes):
        o = occurrences.alias(f"o{i}")
        source: sa.FromClause = o
        # Rows without a note carry typed NULLs (PostgreSQL types each column of the union).
        note_kind: sa.ColumnElement[Any] = sa.cast(sa.null(), notes.c.kind.type)
        note_data: sa.ColumnElement[Any] = sa.cast(sa.null(), notes.c.data.type)
        if with_notes:
            n = notes.alias(f"n{i}")
            on = sa.and_(
                n.c.project == o.c.note_project,
                n.c.note_id == o.c.note_id,
                o.c.kind.in_([sa.bindparam(f"w{i}_{j}") for j in range(with_notes)]),
            )
            source, note_kind, note_data = o.outerjoin(n, on), n.c.kind, n.c.data
        scope = (
            sa.and_(o.c.note_project == sa.bindparam(f"p{i}"), o.c.note_id == sa.bindparam(f"q{i}"))
            if by_note
            else o.c.project == sa.bindparam(f"p{i}")
        )
        arm = (
            sa.select(
                sa.literal_column(str(i), sa.Integer).label("slice"),
                o.c.project,
                o.c.occurrence_id,
                o.c.kind,
                o.c.note_project,
                o.c.note_id,
                o.c.resource,
                o.c.data,
                note_kind.label("nkind"),
                note_data.label("ndata"),
            )
            .select_from(source)
            .where(scope, o.c.resource == sa.bindparam(f"r{i}"))
            .order_by(o.c.occurrence_id)
            .limit(sa.bindparam(f"l{i}", type_=sa.Integer))
        )
        if kinds:
            # SQLite: ``+kind`` keeps the planner off the (project, kind) index (see above).
            kind: sa.ColumnElement[str] = (
                sa.literal_column(f"+o{i}.kind", sa.Text) if sqlite else o.c.kind
            )
            arm = arm.where(kind.in_([sa.bindparam(f"k{i}_{j}") for j in range(kinds)]))
        # A subquery per arm: an arm's ORDER BY and LIMIT must not apply to the whole union.
        arms.append(sa.select(arm.subquery(f"s{i}")))
    return sa.union_all(*arms)


def _slice_parameters(i: int, s: OccurrenceSlice) -> dict[str, Any]:
    values: dict[str, Any] = {f"r{i}": s.resource, f"l{i}": s.limit}
    if s.note is not None:
        values[f"p{i}"], values[f"q{i}"] = s.note
    else:
        values[f"p{i}"] = s.project
    values.update({f"k{i}_{j}": kind for j, kind in enumerate(s.kinds)})
    values.update({f"w{i}_{j}": kind for j, kind in enumerate(s.with_notes)})
    return values


class SqlProjects(ProjectRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._tx, self._c = tx, tx.connection

    async def add(self, project: str) -> bool:
        stmt = self._tx.insert(projects).values(name=project).on_conflict_do_nothing()
        result = await self._c.execute(stmt)
        return result.rowcount == 1

    async def exists(self, project: str) -> bool:
        stmt = sa.select(projects.c.name).where(projects.c.name == project)
        return (await self._c.execute(stmt)).first() is not None

    async def _page(self, after: str | None, limit: int) -> list[str]:
        stmt = sa.select(projects.c.name).order_by(projects.c.name).limit(limit)
        if after is not None:
            stmt = stmt.where(projects.c.name > after)
        return list((await self._c.execute(stmt)).scalars())

    async def remove(self, project: str) -> bool:
        result = await self._c.execute(projects.delete().where(projects.c.name == project))
        return result.rowcount > 0

    async def holds_data(self, project: str) -> bool:
        stmt = sa.select(
            sa.or_(
                sa.exists().where(notes.c.project == project),
                sa.exists().where(occurrences.c.project == project),
            )
        )
        return bool((await self._c.execute(stmt)).scalar())


class SqlNotes(NoteRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._tx, self._c = tx, tx.connection

    async def _stored(
        self, keys: Sequence[tuple[str, str]], select: sa.Select[Any] = _NOTE_SELECT
    ) -> list[Row]:
        # By project (a batch nearly always names one), then a plain IN on the note IDs: the
        # primary key serves it directly, and 5,000 IDs a statement keep an SBOM's 10,000
        # note lookups at two statements (a row-value IN of 500 pairs took twenty).
        ids: dict[str, list[str]] = {}
        for project, note_id in keys:
            ids.setdefault(project, []).append(note_id)
        rows: list[Row] = []
        for project, its in ids.items():
            for start in range(0, len(its), _NOTE_IDS_PER_QUERY):
                chunk = [(i,) for i in its[start : start + _NOTE_IDS_PER_QUERY]]
                stmt = by_keys(
                    self._tx.postgres,
                    select,
                    notes,
                    (notes.c.project == project,),
                    ("note_id",),
                    chunk,
                )
                rows.extend((await self._c.execute(stmt)).all())
        return rows

    async def _taken(self, records: Sequence[NoteRecord]) -> list[str]:
        found = {
            (row.project, row.note_id)
            for row in await self._stored([(r.project, r.note_id) for r in records])
        }
        return [r.note_id for r in records if (r.project, r.note_id) in found]

    async def _insert_new(self, records: Sequence[NoteRecord]) -> list[str]:
        # Insert first, look later: a batch of new notes (the common case: an SBOM's 10,000)
        # costs one bulk write, not a lookup per 500 keys before it. A taken ID (stored
        # already, or inserted by a concurrent unit of work meanwhile: on PostgreSQL the
        # insert waits for it and fails on the primary key) fails the write; the savepoint
        # undoes the partial insert so the transaction stays usable, and the lookup reports
        # the taken IDs. Other integrity failures re-raise.
        # In key order: the batch meets the primary key's B-tree as runs, not at random.
        rows = sorted(_note_values(r) for r in records)
        try:
            async with self._c.begin_nested():
                await bulk.insert_rows(self._c, self._tx.postgres, notes, _NOTE_WRITE, rows)
        except IntegrityError:
            taken = await self._taken(records)
            if not taken:
                raise
            return taken
        return []

    async def get(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        stmt = _NOTE_SELECT.where(notes.c.project == project, notes.c.note_id == note_id)
        row = (await self._c.execute(self._tx.locked(stmt, for_update))).first()
        return None if row is None else _note(row)

    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        return {(row.project, row.note_id): _note(row) for row in await self._stored(keys)}

    async def _kinds(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        rows = await self._stored(keys, _NOTE_KIND_SELECT)
        return {(row.project, row.note_id): str(row.kind) for row in rows}

    async def replace(self, record: NoteRecord) -> None:
        # Upsert, as the reference adapter does: replacing a missing note creates it.
        row = _note_row(record)
        stmt = self._tx.insert(notes).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[notes.c.project, notes.c.note_id],
            set_={name: stmt.excluded[name] for name in row if name not in ("project", "note_id")},
        )
        await self._c.execute(stmt)

    async def delete(self, project: str, note_id: str) -> bool:
        stmt = notes.delete().where(notes.c.project == project, notes.c.note_id == note_id)
        return (await self._c.execute(stmt)).rowcount > 0

    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        stmt = _NOTE_SELECT.where(notes.c.project == project)
        if after is not None:
            stmt = stmt.where(notes.c.note_id > after)
        if where is not None:
            stmt = stmt.where(compile_filter(where, NOTE_COLUMNS))
        stmt = stmt.order_by(notes.c.note_id).limit(limit)
        return [_note(row) for row in await self._c.execute(stmt)]


class SqlOccurrences(OccurrenceRepository):
    """Every write also keeps the image summaries of the same unit of work (ADR 0122)."""

    def __init__(self, tx: SqlTx, summaries: SqlImageSummaries) -> None:
        self._tx, self._c = tx, tx.connection
        self._summaries = summaries

    async def _insert_new(self, records: Sequence[OccurrenceRecord]) -> None:
        # The ingest hot path: one COPY (PostgreSQL, ADR 0131) or one executemany on the
        # driver (SQLite, ADR 0086), in this transaction.
        rows = [_occurrence_values(r) for r in records]
        await bulk.insert_rows(self._c, self._tx.postgres, occurrences, _OCCURRENCE_WRITE, rows)
        await self._summaries.written(records)

    async def get(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        stmt = _OCCURRENCE_SELECT.where(
            occurrences.c.project == project, occurrences.c.occurrence_id == occurrence_id
        )
        row = (await self._c.execute(self._tx.locked(stmt, for_update))).first()
        return None if row is None else _occurrence(row)

    async def replace(self, record: OccurrenceRecord) -> None:
        row = _occurrence_row(record)
        stmt = self._tx.insert(occurrences).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[occurrences.c.project, occurrences.c.occurrence_id],
            set_={
                name: stmt.excluded[name]
                for name in row
                if name not in ("project", "occurrence_id")
            },
        )
        await self._c.execute(stmt)
        await self._summaries.removed(record.project, [record.occurrence_id])
        await self._summaries.written([record])

    async def _update_many(self, records: Sequence[OccurrenceRecord]) -> list[str]:
        # The rows that are stored as the records say, locked (PostgreSQL) so that no
        # concurrent delete slips between this read and the update; SQLite's writer holds
        # the database from BEGIN IMMEDIATE on. Then one UPDATE executed for all of them:
        # none of the indexed columns changes, so only the rows themselves are rewritten.
        wanted = {(r.project, r.occurrence_id): r for r in records}
        by_project: dict[str, list[str]] = {}
        for r in records:
            by_project.setdefault(r.project, []).append(r.occurrence_id)
        found: set[tuple[str, str]] = set()
        for project, ids in by_project.items():
            for start in range(0, len(ids), _KEYS_PER_QUERY):
                stmt = _IDENTITY_SELECT.where(
                    occurrences.c.project == project,
                    occurrences.c.occurrence_id.in_(ids[start : start + _KEYS_PER_QUERY]),
                )
                for row in await self._c.execute(self._tx.locked(stmt, True)):
                    r = wanted[(project, row.occurrence_id)]
                    if (row.kind, row.note_project, row.note_id, row.resource) == (
                        r.kind,
                        r.note_project,
                        r.note_id,
                        r.resource,
                    ):
                        found.add((project, row.occurrence_id))
        kept = [r for r in records if (r.project, r.occurrence_id) in found]
        if not kept:
            return []
        await self._c.execute(
            _OCCURRENCE_UPDATE,
            [
                {
                    "k_project": r.project,
                    "k_occurrence_id": r.occurrence_id,
                    "v_data": r.document if r.document is not None else to_json(r.occurrence),
                    "v_create_time": _time(r.occurrence, "create_time"),
                    "v_update_time": _time(r.occurrence, "update_time"),
                }
                for r in kept
            ],
        )
        for project in by_project:
            mine = {r.occurrence_id: r for r in kept if r.project == project}
            await self._summaries.removed(project, list(mine), successors=mine)
        await self._summaries.written(kept)
        return [r.occurrence_id for r in kept]

    async def delete(self, project: str, occurrence_id: str) -> bool:
        stmt = occurrences.delete().where(
            occurrences.c.project == project, occurrences.c.occurrence_id == occurrence_id
        )
        deleted = (await self._c.execute(stmt)).rowcount > 0
        if deleted:
            await self._summaries.removed(project, [occurrence_id])
        return deleted

    async def _delete_many(self, project: str, occurrence_ids: Sequence[str]) -> list[str]:
        deleted: list[str] = []
        for start in range(0, len(occurrence_ids), _KEYS_PER_QUERY):
            chunk = list(occurrence_ids[start : start + _KEYS_PER_QUERY])
            stmt = (
                occurrences.delete()
                .where(occurrences.c.project == project, occurrences.c.occurrence_id.in_(chunk))
                .returning(occurrences.c.occurrence_id)
            )
            deleted += [row[0] for row in await self._c.execute(stmt)]
        await self._summaries.removed(project, deleted)
        return deleted

    def _paged(
        self,
        columns: sa.Select[Any],
        scope: sa.ColumnElement[bool],
        where: Expr | None,
        after: str | None,
        limit: int,
    ) -> sa.Select[Any]:
        stmt = columns.where(scope)
        if after is not None:
            stmt = stmt.where(occurrences.c.occurrence_id > after)
        if where is not None:
            stmt = stmt.where(compile_filter(where, OCCURRENCE_COLUMNS))
        if not self._tx.postgres and lists_values(where):
            # Without statistics SQLite walks the whole project in ID order to skip the sort,
            # even when the filter lists a few resources or notes (the scanner's re-match:
            # 1.2 s instead of 0.09 s on 300,000 occurrences). ``+occurrence_id`` orders the
            # same but lets it pick the index the lists can use, and sort what it finds.
            return stmt.order_by(sa.text("+occurrence_id")).limit(limit)
        return stmt.order_by(occurrences.c.occurrence_id).limit(limit)

    async def _select(
        self, scope: sa.ColumnElement[bool], where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        stmt = self._paged(_OCCURRENCE_SELECT, scope, where, after, limit)
        return [_occurrence(row) for row in await self._c.execute(stmt)]

    async def _page_documents(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredOccurrence]:
        stmt = self._paged(
            _OCCURRENCE_SELECT, occurrences.c.project == project, where, after, limit
        )
        return [_stored_occurrence(r) for r in await self._c.execute(stmt)]

    def _resources_statement(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> sa.Select[Any]:
        """The occurrences of ``resources`` meeting ``where`` (in no set order).

        SQLite looks an ``IN`` list up in ``ix_occurrences_resource``. PostgreSQL probes that
        index once per resource: the list unnested from one array parameter, joined to a
        lateral read of the resource's rows that the planner can neither flatten nor push
        the filter into (``OFFSET 0``), the filter applied to what it returns. Planned from
        statistics taken before the table filled (a fresh server, autovacuum behind or off),
        an ``IN`` list scans every row of the project and filters the list (0.27 s for 200
        images among 150,000 occurrences, and again for every page), and a filter inside
        the probe picks whichever index its columns have (``ix_occurrences_kind``: every
        PACKAGE of the project per image; 5.4 s) (ADR 0175)."""
        c = occurrences.c
        if not self._tx.postgres:
            stmt = _OCCURRENCE_SELECT.where(c.project == project, c.resource.in_(list(resources)))
            return stmt if where is None else stmt.where(compile_filter(where, OCCURRENCE_COLUMNS))
        listed = sa.bindparam("resources", list(resources), type_=postgresql.ARRAY(sa.Text()))
        wanted = sa.func.unnest(listed).table_valued("k_resource").render_derived(name="wanted")
        hit = (
            _OCCURRENCE_SELECT.where(c.project == project, c.resource == wanted.c.k_resource)
            .offset(0)
            .lateral("hit")
        )
        stmt = sa.select(*hit.c).select_from(wanted).join(hit, sa.true())
        if where is None:
            return stmt
        on_hit = {name: hit.c[column.name] for name, column in OCCURRENCE_COLUMNS.items()}
        return stmt.where(compile_filter(where, on_hit))

    def _notes_statement(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> sa.Select[Any]:
        """The occurrences under ``notes`` on ``resources`` (in no set order): SQLite, two
        ``IN`` lists; PostgreSQL, one probe of the note index per note (lateral, as in
        :meth:`_resources_statement`), the resources sifted from what the probes return."""
        c = occurrences.c
        if not self._tx.postgres:
            # Per note project, an ``IN`` list of IDs: SQLite meets that (and the resource
            # list) with ``ix_occurrences_note_resource``; a list of (project, ID) row values
            # it scans the table for (0.2 s for 200 images among 150,000 occurrences).
            by_project: dict[str, list[str]] = {}
            for note_project, note_id in notes:
                by_project.setdefault(note_project, []).append(note_id)
            under = sa.or_(
                sa.false(),
                *(
                    sa.and_(c.note_project == p, c.note_id.in_(ids))
                    for p, ids in sorted(by_project.items())
                ),
            )
            if len(resources) <= _PROBED_RESOURCES:
                return _OCCURRENCE_SELECT.where(
                    c.project == project, under, c.resource.in_(list(resources))
                )
            # Many resources: SQLite would probe the index once per (note, resource) pair
            # (20,000 probes for a re-match batch of 200 images and 100 notes: 28 ms on
            # 450,000 occurrences). ``+resource`` (the same value, but no index may serve
            # it) makes it walk each note's range of ix_occurrences_note_resource instead
            # and sift the resources from the index entries, reading only the rows it keeps
            # (3 ms), as PostgreSQL's per-note probes below do.
            sifted = sa.literal_column("+occurrences.resource", sa.Text())
            return _OCCURRENCE_SELECT.where(
                c.project == project, under, sifted.in_(list(resources))
            )
        text = postgresql.ARRAY(sa.Text())
        wanted = (
            sa.func.unnest(
                sa.bindparam("note_projects", [n[0] for n in notes], type_=text),
                sa.bindparam("note_ids", [n[1] for n in notes], type_=text),
            )
            .table_valued("k_note_project", "k_note_id")
            .render_derived(name="wanted")
        )
        hit = (
            _OCCURRENCE_SELECT.where(
                c.note_project == wanted.c.k_note_project,
                c.note_id == wanted.c.k_note_id,
                c.project == project,
            )
            .offset(0)
            .lateral("hit")
        )
        listed = sa.bindparam("resources", list(resources), type_=text)
        return (
            sa.select(*hit.c)
            .select_from(wanted)
            .join(hit, sa.true())
            .where(hit.c.resource == sa.func.any(listed))
        )

    async def _of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[OccurrenceRecord]:
        out: list[OccurrenceRecord] = []
        for stmt in self._chunked_notes(project, notes, resources):
            out += [_occurrence(row) for row in await self._c.execute(stmt)]
        out.sort(key=lambda r: (r.resource, r.occurrence_id))
        return out

    async def _documents_of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[StoredOccurrence]:
        out: list[StoredOccurrence] = []
        for stmt in self._chunked_notes(project, notes, resources):
            out += [_stored_occurrence(r) for r in await self._c.execute(stmt)]
        out.sort(key=lambda r: (r.resource, r.occurrence_id))
        return out

    def _chunked_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[sa.Select[Any]]:
        return [
            self._notes_statement(
                project, notes[n : n + _KEYS_PER_QUERY], resources[r : r + _KEYS_PER_QUERY]
            )
            for n in range(0, len(notes), _KEYS_PER_QUERY)
            for r in range(0, len(resources), _KEYS_PER_QUERY)
        ]

    async def _of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[OccurrenceRecord]:
        out: list[OccurrenceRecord] = []
        for start in range(0, len(resources), _KEYS_PER_QUERY):
            chunk = resources[start : start + _KEYS_PER_QUERY]
            stmt = self._resources_statement(project, chunk, where)
            out += [_occurrence(row) for row in await self._c.execute(stmt)]
        out.sort(key=lambda r: (r.resource, r.occurrence_id))
        return out

    async def _documents_of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[StoredOccurrence]:
        out: list[StoredOccurrence] = []
        for start in range(0, len(resources), _KEYS_PER_QUERY):
            chunk = resources[start : start + _KEYS_PER_QUERY]
            stmt = self._resources_statement(project, chunk, where)
            out += [_stored_occurrence(r) for r in await self._c.execute(stmt)]
        out.sort(key=lambda r: (r.resource, r.occurrence_id))
        return out

    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        return await self._select(occurrences.c.project == project, where, after, limit)

    async def _page_json(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredJson]:
        # The document as the database holds it, as text: JSONB's rendering on PostgreSQL,
        # the stored text on SQLite. No JSON decoding in the driver, no protobuf.
        stmt = self._paged(
            _OCCURRENCE_JSON_SELECT, occurrences.c.project == project, where, after, limit
        )
        return [
            StoredJson(project, occurrence_id, text.encode())
            for occurrence_id, text in await self._c.execute(stmt)
        ]

    async def _page_of_note(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        scope = sa.and_(
            occurrences.c.note_project == note_project, occurrences.c.note_id == note_id
        )
        return await self._select(scope, where, after, limit)

    async def _read_slices(self, slices: Sequence[OccurrenceSlice]) -> SlicesRead:
        answers: list[list[OccurrenceRecord]] = [[] for _ in slices]
        notes_found: dict[tuple[str, str], NoteRecord] = {}
        for start in range(0, len(slices), _SLICES_PER_QUERY):
            chunk = slices[start : start + _SLICES_PER_QUERY]
            shapes = tuple((s.note is not None, len(s.kinds), len(s.with_notes)) for s in chunk)
            stmt = _slices_statement(shapes, not self._tx.postgres)
            values: dict[str, Any] = {}
            for i, s in enumerate(chunk):
                values.update(_slice_parameters(i, s))
            for row in await self._c.execute(stmt, values):
                answers[start + row.slice].append(_occurrence(row))
                key = (row.note_project, row.note_id)
                if row.ndata is not None and key not in notes_found:
                    notes_found[key] = NoteRecord(
                        project=row.note_project,
                        note_id=row.note_id,
                        kind=row.nkind,
                        note=from_stored_json(NotePB, row.ndata),
                    )
        for rows in answers:
            # The union's order is the database's to choose; each slice's is by ID.
            rows.sort(key=lambda r: r.occurrence_id)
        return SlicesRead(tuple(answers), notes_found)

    async def _vulnerable_resources(
        self, project: str, ids: Sequence[str], after: str | None, limit: int
    ) -> list[str]:
        c = occurrences.c
        stmt = (
            sa.select(c.resource)
            .distinct()
            .where(c.project == project, c.kind == "VULNERABILITY")
            .where(sa.or_(sa.func.upper(c.note_id).in_(list(ids)), self._names_alias(ids)))
        )
        if after is not None:
            stmt = stmt.where(c.resource > after)
        stmt = stmt.order_by(c.resource).limit(limit)
        return list((await self._c.execute(stmt)).scalars())

    def _names_alias(self, ids: Sequence[str]) -> sa.ColumnElement[bool]:
        if self._tx.postgres:
            # The very expression of ix_occurrences_vulnerability_aliases (migration 0007),
            # so that the GIN index answers the overlap.
            return _ALIASES.op("&&")(sa.bindparam("alias_ids", list(ids), type_=_TEXT_ARRAY))
        # SQLite: every ``key=value`` item becomes a comma-separated token, the aliases' bare;
        # an ID then matches one token exactly.
        tokens: sa.ColumnClause[str] = sa.literal_column(
            "',' || upper(replace(replace(coalesce(json_extract(data, "
            "'$.vulnerability.extraDetails'), ''), ';', ','), 'aliases=', '')) || ','"
        )
        return sa.or_(*(tokens.like(f"%,{_like_escaped(i)},%", escape="\\") for i in ids))

    async def _note_resources(
        self, project: str, note_project: str, note_id: str, after: str | None, limit: int
    ) -> list[str]:
        c = occurrences.c
        stmt = (
            sa.select(c.resource)
            .distinct()
            .where(c.note_project == note_project, c.note_id == note_id, c.project == project)
        )
        if after is not None:
            stmt = stmt.where(c.resource > after)
        stmt = stmt.order_by(c.resource).limit(limit)
        return list((await self._c.execute(stmt)).scalars())


#: A VULNERABILITY occurrence's aliases, upper case, as PostgreSQL indexes them.
_ALIASES: sa.ColumnClause[Any] = sa.literal_column(
    "string_to_array(upper(substring(data->'vulnerability'->>'extraDetails' "
    "from 'aliases=([^;]*)')), ',')"
)
_TEXT_ARRAY = postgresql.ARRAY(sa.Text())


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlMeta(MetaRepository):
    def __init__(self, tx: SqlTx) -> None:
        self._tx, self._c = tx, tx.connection

    async def get_or_set(self, key: str, value: str) -> str:
        # ON CONFLICT DO NOTHING, not check-then-insert: two replicas starting together must
        # both end up with the value that won, not one of them with an error.
        await self._c.execute(
            self._tx.insert(meta).values(key=key, value=value).on_conflict_do_nothing()
        )
        stored = (await self._c.execute(sa.select(meta.c.value).where(meta.c.key == key))).scalar()
        return value if stored is None else str(stored)
