"""The scribe's data: projects, notes, occurrences and server metadata, one repository each.

Records carry the whole Grafeas message beside the indexed columns that queries use (kind,
canonical resource, note project and ID). Services compute those columns with the domain
rules; adapters only store and compare them, so every adapter matches images the same way.

Lists use keyset pagination: ``after`` is the last key of the previous page (note ID or
occurrence ID, compared as strings) and a page comes in ascending key order.

Each repository is an abstract class: the public methods are what services call; where a
shared rule applies (store/rules.py) the public method applies it and hands the rest to an
``_adapter_hook`` the memory and SQL adapters implement. Repositories work inside the unit of
work that hands them out and never commit on their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from chainproof.domain.filters import And, Compare, Expr, FilterColumn, Or
from chainproof.domain.messages import Note, Occurrence, to_json
from chainproof.store.rules import distinct, repeats, require_distinct


@dataclass(frozen=True, slots=True)
class NoteRecord:
    project: str
    note_id: str
    kind: str
    note: Note
    #: ``note`` in protobuf's JSON mapping, when the caller has rendered it already (the
    #: service does, once); adapters that store JSON use it instead of rendering again.
    document: Mapping[str, Any] | None = None

    def column(self, column: FilterColumn) -> str:
        if column is FilterColumn.KIND:
            return self.kind
        if column is FilterColumn.NOTE_PROJECT:
            return self.project
        if column is FilterColumn.NOTE_ID:
            return self.note_id
        return ""


@dataclass(frozen=True, slots=True)
class OccurrenceRecord:
    project: str
    occurrence_id: str
    kind: str
    note_project: str
    note_id: str
    #: The canonical identity of ``occurrence.resource_uri`` (see domain.images).
    resource: str
    occurrence: Occurrence
    #: ``occurrence`` in protobuf's JSON mapping, when already rendered (see NoteRecord).
    document: Mapping[str, Any] | None = None
    #: Set by a writer to the same object on records that differ only in their name and
    #: resource (copies of one template, ADR 0094): what a store derives from the rest of an
    #: occurrence (its summary facts) it may derive once per value. Not part of equality.
    template: object | None = field(default=None, compare=False, repr=False)

    def column(self, column: FilterColumn) -> str:
        if column is FilterColumn.KIND:
            return self.kind
        if column is FilterColumn.RESOURCE:
            return self.resource
        if column is FilterColumn.NOTE_PROJECT:
            return self.note_project
        return self.note_id


@dataclass(frozen=True, slots=True)
class OccurrenceSlice:
    """One part of a batched read (:meth:`OccurrenceRepository.read_slices`): the occurrences
    about one canonical ``resource``, either filed under one ``note`` (``(project, note ID)``,
    in every project, as ``page_of_note`` reads) or stored in one ``project``; of the given
    ``kinds`` (empty: every kind); in ascending ID order, at most ``limit`` of them.

    Rows whose kind is among ``with_notes`` come with the note they are filed under (the
    judge reads a scan's analysis kind and an SBOM reference's format from it)."""

    resource: str
    limit: int
    note: tuple[str, str] | None = None
    project: str | None = None
    kinds: tuple[str, ...] = ()
    with_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.note is None) == (self.project is None):
            raise ValueError("an occurrence slice is scoped by a note or by a project, not both")


@dataclass(frozen=True, slots=True)
class SlicesRead:
    """What :meth:`OccurrenceRepository.read_slices` found: ``rows[i]`` answers slice ``i``;
    ``notes`` holds the notes asked for with ``with_notes``, by ``(project, note ID)`` (a note
    that does not exist is absent)."""

    rows: tuple[list[OccurrenceRecord], ...]
    notes: Mapping[tuple[str, str], NoteRecord]


@dataclass(frozen=True, slots=True)
class StoredJson:
    """One stored occurrence as JSON text: protobuf's JSON mapping, as the server wrote it."""

    project: str
    occurrence_id: str
    #: UTF-8 JSON of one object. Whitespace and key order are the backend's (PostgreSQL's
    #: JSONB renders keys in its own order); the members are those of the message.
    json: bytes


@dataclass(frozen=True, slots=True)
class StoredOccurrence:
    """An occurrence's indexed columns and its stored JSON (protobuf's JSON mapping), not
    parsed into a message: for server-side readers that need a few fields of many rows (the
    scanner reads every image's packages)."""

    project: str
    occurrence_id: str
    kind: str
    note_project: str
    note_id: str
    resource: str
    document: Mapping[str, Any]


def _note_key(record: NoteRecord) -> tuple[str, str]:
    return (record.project, record.note_id)


def _occurrence_key(record: OccurrenceRecord) -> tuple[str, str]:
    return (record.project, record.occurrence_id)


class ProjectRepository(ABC):
    """Project names, listed in code point order."""

    @abstractmethod
    async def add(self, project: str) -> bool:
        """Record a project; False if it already existed."""

    @abstractmethod
    async def exists(self, project: str) -> bool: ...

    async def page(self, after: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        return await self._page(after, limit)

    @abstractmethod
    async def remove(self, project: str) -> bool: ...

    @abstractmethod
    async def holds_data(self, project: str) -> bool:
        """Whether any note or occurrence lives in the project."""

    @abstractmethod
    async def _page(self, after: str | None, limit: int) -> list[str]:
        """``limit`` is positive."""


class NoteRepository(ABC):
    async def insert(self, records: Sequence[NoteRecord]) -> list[str]:
        """Insert all; if any ID is taken (stored already, or twice in ``records``), insert
        nothing and return the taken IDs."""
        if not records:
            return []
        again = repeats(records, _note_key)
        if again:
            return [r.note_id for r in again]
        return await self._insert_new(records)

    @abstractmethod
    async def get(
        self, project: str, note_id: str, *, for_update: bool = False
    ) -> NoteRecord | None:
        """``for_update``: lock the row until the transaction ends (read-modify-write)."""

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        """The stored notes among ``keys`` (``(project, note_id)``), by key."""
        if not keys:
            return {}
        return await self._get_many(distinct(keys))

    async def kinds(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The kind of each stored note among ``keys``, by key: what a create checks its
        occurrences against, without reading (and parsing) the notes themselves."""
        if not keys:
            return {}
        return await self._kinds(distinct(keys))

    @abstractmethod
    async def replace(self, record: NoteRecord) -> None:
        """Write ``record`` over the stored note (creating it if there is none)."""

    @abstractmethod
    async def delete(self, project: str, note_id: str) -> bool: ...

    async def page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        if limit <= 0:
            return []
        return await self._page(project, where, after, limit)

    @abstractmethod
    async def _insert_new(self, records: Sequence[NoteRecord]) -> list[str]:
        """``records`` is not empty and its keys are distinct: insert all, or, when any is
        stored already, nothing, returning the stored ones' IDs in batch order."""

    @abstractmethod
    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], NoteRecord]:
        """``keys`` is not empty and has no repeats."""

    @abstractmethod
    async def _kinds(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``keys`` is not empty and has no repeats."""

    @abstractmethod
    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[NoteRecord]:
        """``limit`` is positive."""


class OccurrenceRepository(ABC):
    async def insert(self, records: Sequence[OccurrenceRecord]) -> None:
        """Insert new occurrences. IDs are server-made UUIDs, unique across all projects
        (``page_of_note`` pages by ID alone): the same key twice in ``records`` raises
        DuplicateKey before anything is written, and a key already stored fails the batch
        (DuplicateKey in memory, the database's IntegrityError on SQL)."""
        if not records:
            return
        require_distinct(records, _occurrence_key, "occurrence", lambda r: r.occurrence_id)
        await self._insert_new(records)

    @abstractmethod
    async def get(
        self, project: str, occurrence_id: str, *, for_update: bool = False
    ) -> OccurrenceRecord | None:
        """``for_update``: lock the row until the transaction ends (read-modify-write)."""

    @abstractmethod
    async def replace(self, record: OccurrenceRecord) -> None:
        """Write ``record`` over the stored occurrence (creating it if there is none)."""

    async def update_many(self, records: Sequence[OccurrenceRecord]) -> list[str]:
        """Write each record over the stored occurrence with its key, where one is stored
        with the record's kind, note and resource (an update changes none of them); return
        the IDs written, in batch order. A record whose occurrence is gone (another replica
        deleted it first) or says otherwise is skipped: an update never creates one, so a
        reconciliation cannot bring back what a concurrent delete removed."""
        if not records:
            return []
        require_distinct(records, _occurrence_key, "occurrence", lambda r: r.occurrence_id)
        return await self._update_many(records)

    @abstractmethod
    async def _update_many(self, records: Sequence[OccurrenceRecord]) -> list[str]:
        """``records`` is not empty and its keys are distinct."""

    @abstractmethod
    async def delete(self, project: str, occurrence_id: str) -> bool: ...

    async def delete_many(self, project: str, occurrence_ids: Sequence[str]) -> list[str]:
        """Delete those of ``occurrence_ids`` that exist; return the IDs deleted (a
        reconciliation's deletes in one statement per chunk, not one each)."""
        unique = list(dict.fromkeys(occurrence_ids))
        if not unique:
            return []
        return await self._delete_many(project, unique)

    async def page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        if limit <= 0:
            return []
        return await self._page(project, where, after, limit)

    async def page_json(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredJson]:
        """The page :meth:`page` gives (same rows, same order), each occurrence as the JSON it
        is stored as, for answers that are JSON anyway: nothing is decoded into protobuf."""
        if limit <= 0:
            return []
        return await self._page_json(project, where, after, limit)

    async def _page_json(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredJson]:
        """``limit`` is positive. This reference renders each record of :meth:`_page`; an
        adapter that holds the JSON text returns it as it is."""
        return [
            StoredJson(
                r.project,
                r.occurrence_id,
                orjson.dumps(r.document if r.document is not None else to_json(r.occurrence)),
            )
            for r in await self._page(project, where, after, limit)
        ]

    async def page_documents(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredOccurrence]:
        """:meth:`page`, each occurrence as its stored JSON rather than a message."""
        if limit <= 0:
            return []
        return await self._page_documents(project, where, after, limit)

    async def of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[OccurrenceRecord]:
        """Every occurrence of ``project`` on one of ``resources`` (canonical) that meets
        ``where``, ordered by resource and then ID: the whole answer, for a server-side
        reader that holds a bounded batch of images in memory anyway (the scanner). One
        query per chunk of resources, driven by the resource index, where paging would run
        the filter again for every page (ADR 0175)."""
        wanted = sorted(set(resources))
        if not wanted:
            return []
        return await self._of_resources(project, wanted, where)

    async def documents_of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[StoredOccurrence]:
        """:meth:`of_resources`, each occurrence as its stored JSON rather than a message."""
        wanted = sorted(set(resources))
        if not wanted:
            return []
        return await self._documents_of_resources(project, wanted, where)

    async def of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[OccurrenceRecord]:
        """The occurrences of ``project`` under one of ``notes`` ((project, ID) pairs) on one
        of ``resources``, ordered by resource and then ID: :meth:`of_resources` when the
        notes are what narrows the answer (a re-match: the findings of a few advisories, the
        packages of a few names), read through the note index."""
        wanted, listed = sorted(set(notes)), sorted(set(resources))
        if not wanted or not listed:
            return []
        return await self._of_notes(project, wanted, listed)

    async def documents_of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[StoredOccurrence]:
        """:meth:`of_notes`, each occurrence as its stored JSON rather than a message."""
        wanted, listed = sorted(set(notes)), sorted(set(resources))
        if not wanted or not listed:
            return []
        return await self._documents_of_notes(project, wanted, listed)

    async def _of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[OccurrenceRecord]:
        """Both lists sorted, distinct and not empty. This reference filters
        :meth:`_of_resources`; SQL adapters probe the note index."""
        return await self._of_resources(project, resources, _under(notes))

    async def _documents_of_notes(
        self, project: str, notes: Sequence[tuple[str, str]], resources: Sequence[str]
    ) -> list[StoredOccurrence]:
        return await self._documents_of_resources(project, resources, _under(notes))

    async def _of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[OccurrenceRecord]:
        """``resources`` is sorted, distinct and not empty. This reference pages :meth:`_page`
        over chunks of the resources; SQL adapters answer in one statement per chunk."""
        return await _every_page(self._page, project, _resource_scopes(resources, where))

    async def _documents_of_resources(
        self, project: str, resources: Sequence[str], where: Expr | None
    ) -> list[StoredOccurrence]:
        """As :meth:`_of_resources`, through :meth:`_page_documents`."""
        return await _every_page(self._page_documents, project, _resource_scopes(resources, where))

    async def page_of_note(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        """Occurrences of one note, across every project."""
        if limit <= 0:
            return []
        return await self._page_of_note(note_project, note_id, where, after, limit)

    async def read_slices(self, slices: Sequence[OccurrenceSlice]) -> SlicesRead:
        """Every slice at once: the judge's read of all the evidence one review needs (every
        image, every attestor's note and every evidence project) in one round trip to the
        database, each slice bounded by its own limit (a slice that comes back full is how
        the caller sees that a bound was hit)."""
        wanted = [(i, s) for i, s in enumerate(slices) if s.limit > 0]
        rows: list[list[OccurrenceRecord]] = [[] for _ in slices]
        if not wanted:
            return SlicesRead(tuple(rows), {})
        found = await self._read_slices([s for _, s in wanted])
        for (i, _), got in zip(wanted, found.rows, strict=True):
            rows[i] = got
        return SlicesRead(tuple(rows), found.notes)

    async def vulnerable_resources(
        self, project: str, ids: Sequence[str], after: str | None, limit: int
    ) -> list[str]:
        """The distinct resources of ``project`` with a VULNERABILITY occurrence filed under
        one of ``ids`` (its note ID) or naming one of them among its aliases
        (``aliases=A,B`` in ``extraDetails``, as ingest and the scanner write them), in code
        point order after ``after``. IDs compare case-insensitively (upper case)."""
        wanted = sorted({i.upper() for i in ids if i})
        if limit <= 0 or not wanted:
            return []
        return await self._vulnerable_resources(project, wanted, after, limit)

    async def note_resources(
        self, project: str, note_project: str, note_id: str, after: str | None, limit: int
    ) -> list[str]:
        """The distinct resources of ``project``'s occurrences of one note, in code point
        order after ``after``."""
        if limit <= 0:
            return []
        return await self._note_resources(project, note_project, note_id, after, limit)

    @abstractmethod
    async def _vulnerable_resources(
        self, project: str, ids: Sequence[str], after: str | None, limit: int
    ) -> list[str]:
        """``ids`` is sorted, upper case, not empty; ``limit`` is positive."""

    @abstractmethod
    async def _note_resources(
        self, project: str, note_project: str, note_id: str, after: str | None, limit: int
    ) -> list[str]:
        """``limit`` is positive."""

    @abstractmethod
    async def _insert_new(self, records: Sequence[OccurrenceRecord]) -> None:
        """``records`` is not empty and its IDs are distinct."""

    @abstractmethod
    async def _read_slices(self, slices: Sequence[OccurrenceSlice]) -> SlicesRead:
        """``slices`` is not empty and every limit is positive; one answer per slice."""

    @abstractmethod
    async def _delete_many(self, project: str, occurrence_ids: Sequence[str]) -> list[str]:
        """``occurrence_ids`` is not empty and distinct."""

    @abstractmethod
    async def _page(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        """``limit`` is positive."""

    @abstractmethod
    async def _page_documents(
        self, project: str, where: Expr | None, after: str | None, limit: int
    ) -> list[StoredOccurrence]:
        """``limit`` is positive."""

    @abstractmethod
    async def _page_of_note(
        self, note_project: str, note_id: str, where: Expr | None, after: str | None, limit: int
    ) -> list[OccurrenceRecord]:
        """``limit`` is positive."""


class MetaRepository(ABC):
    """Server metadata: small values the server makes once and keeps (signing secrets)."""

    @abstractmethod
    async def get_or_set(self, key: str, value: str) -> str:
        """Return the stored value of ``key``, storing ``value`` first if there is none."""


#: Rows per page and resources per filter of the reference ``of_resources``.
_PAGE = 1_000
_RESOURCES_PER_QUERY = 500


class _Keyed(Protocol):
    @property
    def resource(self) -> str: ...

    @property
    def occurrence_id(self) -> str: ...


_R = TypeVar("_R", bound=_Keyed)


async def _every_page(
    page: Callable[[str, Expr | None, str | None, int], Awaitable[list[_R]]],
    project: str,
    scopes: Sequence[Expr],
) -> list[_R]:
    """Every row of each scope, paged by occurrence ID, sorted by (resource, ID)."""
    out: list[_R] = []
    for scope in scopes:
        after: str | None = None
        while True:
            rows = await page(project, scope, after, _PAGE)
            out += rows
            if len(rows) < _PAGE:
                break
            after = rows[-1].occurrence_id
    out.sort(key=lambda r: (r.resource, r.occurrence_id))
    return out


def _resource_scopes(resources: Sequence[str], where: Expr | None) -> list[Expr]:
    """``where`` and "the resource is one of these", per chunk of ``resources``."""
    scopes: list[Expr] = []
    for start in range(0, len(resources), _RESOURCES_PER_QUERY):
        chunk = resources[start : start + _RESOURCES_PER_QUERY]
        listed = Or(tuple(Compare(FilterColumn.RESOURCE, r) for r in chunk))
        scopes.append(listed if where is None else And((where, listed)))
    return scopes


def _under(notes: Sequence[tuple[str, str]]) -> Expr:
    """The occurrence's note is one of ``notes``."""
    return Or(
        tuple(
            And((Compare(FilterColumn.NOTE_PROJECT, p), Compare(FilterColumn.NOTE_ID, n)))
            for p, n in notes
        )
    )
