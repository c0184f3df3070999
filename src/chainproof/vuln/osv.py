"""OSV records (osv-schema 1.6), parsed once into typed, validated objects.

:func:`parse_record` takes one record as a mapping (decoded JSON) and either returns an
:class:`Advisory` whose invariants later code may trust, or raises
:class:`~chainproof.errors.InvalidArgument` naming every field that is wrong and what was
expected. :func:`parse_document` takes bytes holding one record or a JSON array of records
(the Go vulnerability database's per-module files are arrays).

What is checked is what matching relies on: an ``id`` usable as a Grafeas note ID, a
``modified`` time (it decides which copy of a record wins), ``affected[].package`` with an
ecosystem and a name, ``ranges[]`` of a known type whose events hold exactly one of
``introduced`` / ``fixed`` / ``last_affected`` / ``limit``, at least one ``introduced``, never
``fixed`` beside ``last_affected``, and a ``repo`` for ``GIT`` ranges. Fields matching does not
use (``references``, ``credits``, ``database_specific``…) are kept as they came, in
:attr:`Advisory.raw`, so that nothing a publisher wrote is lost when the record is stored.

Version strings are *not* interpreted here: their order belongs to the ecosystem
(:mod:`chainproof.vuln.ecosystems`), and a record whose versions an ecosystem cannot read is
still a valid record — matching reports it as "not comparable" instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import InvalidArgument

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
RangeType = Literal["SEMVER", "ECOSYSTEM", "GIT"]

EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES: tuple[RangeType, ...] = ("SEMVER", "ECOSYSTEM", "GIT")

#: An OSV ID becomes a Grafeas note ID, so it must be safe in a resource name.
ID_FORM = "letters, digits, '.', '_' or '-' (up to 128), e.g. GHSA-xxxx-xxxx-xxxx or GO-2022-0463"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Bounds on one record. Real records stay far below them (the largest osv.dev records, Linux
# kernel ones, list a few thousand versions); a record above them is refused, never truncated.
MAX_AFFECTED = 5_000
MAX_RANGES = 1_000
MAX_EVENTS = 10_000
MAX_VERSIONS = 200_000
MAX_RECORDS_PER_DOCUMENT = 100_000


@dataclass(frozen=True, slots=True)
class Event:
    """One point of a range's timeline: introduced, fixed, last_affected or limit."""

    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    """``affected[].ranges[]``: a typed timeline of events (``repo`` only for ``GIT``)."""

    type: RangeType
    events: tuple[Event, ...]
    repo: str | None = None

    def versions_of(self, kind: EventKind) -> tuple[str, ...]:
        return tuple(e.version for e in self.events if e.kind == kind)


@dataclass(frozen=True, slots=True)
class PackageRef:
    """``affected[].package``: the package an entry is about, in its ecosystem's own terms."""

    ecosystem: str
    name: str
    purl: str | None = None


@dataclass(frozen=True, slots=True)
class Affected:
    """One ``affected[]`` entry: a package and the versions of it that are vulnerable."""

    package: PackageRef | None
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    ecosystem_specific: Mapping[str, Any] = field(default_factory=dict)
    database_specific: Mapping[str, Any] = field(default_factory=dict)
    severity: tuple[Severity, ...] = ()


@dataclass(frozen=True, slots=True)
class Severity:
    """``severity[]``: a scoring method (``CVSS_V2``, ``CVSS_V3``, ``CVSS_V4``, ``Ubuntu``…)."""

    type: str
    score: str


@dataclass(frozen=True, slots=True)
class Advisory:
    """One parsed OSV record. ``raw`` is the record exactly as it came (decoded JSON)."""

    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    related: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[Severity, ...]
    affected: tuple[Affected, ...]
    schema_version: str | None
    raw: Mapping[str, Any]

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn is not None

    def packages(self) -> tuple[PackageRef, ...]:
        """The packages this record names, once each, in the order they first appear."""
        seen: dict[tuple[str, str], PackageRef] = {}
        for entry in self.affected:
            if entry.package is not None:
                seen.setdefault((entry.package.ecosystem, entry.package.name), entry.package)
        return tuple(seen.values())

    def fixed_versions(self) -> tuple[str, ...]:
        return tuple(
            e.version
            for a in self.affected
            for r in a.ranges
            for e in r.events
            if e.kind == "fixed" and r.type != "GIT"
        )


def parse_document(data: bytes | str, *, source: str = "document") -> list[Advisory]:
    """Parse bytes holding one OSV record or a JSON array of them."""
    try:
        decoded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{source}: not JSON ({exc}); expected an OSV record") from exc
    if isinstance(decoded, Mapping):
        return [parse_record(decoded, source=source)]
    if isinstance(decoded, list):
        if len(decoded) > MAX_RECORDS_PER_DOCUMENT:
            raise InvalidArgument(
                f"{source}: {len(decoded)} records in one document; at most "
                f"{MAX_RECORDS_PER_DOCUMENT} are read"
            )
        return [parse_record(item, source=f"{source}[{i}]") for i, item in enumerate(decoded)]
    raise InvalidArgument(
        f"{source}: a JSON {type(decoded).__name__}; expected an OSV record (an object) or an "
        "array of them"
    )


def parse_record(record: object, *, source: str = "record") -> Advisory:
    """Check one decoded OSV record and return it typed; raise naming every problem."""
    if not isinstance(record, Mapping):
        raise InvalidArgument(
            f"{source}: a JSON {type(record).__name__}; expected an OSV record (an object)"
        )
    problems: list[str] = []
    reader = _Reader(problems)
    advisory_id = reader.string(record, "id", required=True)
    if advisory_id and not _ID.fullmatch(advisory_id):
        problems.append(f"id {advisory_id!r}: expected {ID_FORM}")
    modified = reader.time(record, "modified", required=True)
    published = reader.time(record, "published")
    withdrawn = reader.time(record, "withdrawn")
    aliases = reader.strings(record, "aliases")
    related = reader.strings(record, "related")
    summary = reader.string(record, "summary") or ""
    details = reader.string(record, "details") or ""
    schema_version = reader.string(record, "schema_version")
    severity = reader.severities(record, "severity")
    affected_items = reader.list(record, "affected")
    if len(affected_items) > MAX_AFFECTED:
        problems.append(f"affected: {len(affected_items)} entries; at most {MAX_AFFECTED}")
        affected_items = []
    affected = tuple(
        _affected(item, f"affected[{i}]", reader) for i, item in enumerate(affected_items)
    )
    if problems:
        name = f"{source} ({advisory_id})" if advisory_id else source
        raise InvalidArgument(f"{name} is not a valid OSV record", details=problems)
    assert modified is not None
    return Advisory(
        id=advisory_id or "",
        modified=modified,
        published=published,
        withdrawn=withdrawn,
        aliases=aliases,
        related=related,
        summary=summary,
        details=details,
        severity=severity,
        affected=affected,
        schema_version=schema_version,
        raw=record,
    )


def _affected(item: object, where: str, reader: _Reader) -> Affected:
    if not isinstance(item, Mapping):
        reader.problems.append(f"{where}: expected an object")
        return Affected(package=None)
    package: PackageRef | None = None
    raw_package = item.get("package")
    if raw_package is not None:
        if not isinstance(raw_package, Mapping):
            reader.problems.append(f"{where}.package: expected an object")
        else:
            ecosystem = reader.string(
                raw_package, "ecosystem", required=True, at=where + ".package"
            )
            name = reader.string(raw_package, "name", required=True, at=where + ".package")
            purl = reader.string(raw_package, "purl", at=where + ".package")
            if ecosystem and name:
                package = PackageRef(ecosystem=ecosystem, name=name, purl=purl)
    raw_ranges = reader.list(item, "ranges", at=where)
    if len(raw_ranges) > MAX_RANGES:
        reader.problems.append(f"{where}.ranges: {len(raw_ranges)} ranges; at most {MAX_RANGES}")
        raw_ranges = []
    ranges = tuple(
        r
        for i, raw in enumerate(raw_ranges)
        if (r := _range(raw, f"{where}.ranges[{i}]", reader)) is not None
    )
    versions = reader.strings(item, "versions", at=where)
    if len(versions) > MAX_VERSIONS:
        reader.problems.append(
            f"{where}.versions: {len(versions)} versions; at most {MAX_VERSIONS}"
        )
    # A GIT-only entry may omit the package: it is kept, but never indexed for matching,
    # since no SBOM package can name it.
    return Affected(
        package=package,
        ranges=ranges,
        versions=versions,
        ecosystem_specific=reader.mapping(item, "ecosystem_specific", at=where),
        database_specific=reader.mapping(item, "database_specific", at=where),
        severity=reader.severities(item, "severity", at=where),
    )


def _range(raw: object, where: str, reader: _Reader) -> Range | None:
    problems = reader.problems
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected an object")
        return None
    range_type = raw.get("type")
    if range_type not in RANGE_TYPES:
        problems.append(f"{where}.type: {range_type!r}; expected one of {', '.join(RANGE_TYPES)}")
        return None
    repo = reader.string(raw, "repo", at=where)
    if range_type == "GIT" and not repo:
        problems.append(f"{where}.repo: required for a GIT range")
    raw_events = reader.list(raw, "events", at=where)
    if len(raw_events) > MAX_EVENTS:
        problems.append(f"{where}.events: {len(raw_events)} events; at most {MAX_EVENTS}")
        return None
    events: list[Event] = []
    for i, raw_event in enumerate(raw_events):
        at = f"{where}.events[{i}]"
        if not isinstance(raw_event, Mapping):
            problems.append(f"{at}: expected an object")
            continue
        kinds = [k for k in EVENT_KINDS if k in raw_event]
        if len(kinds) != 1:
            problems.append(
                f"{at}: holds {', '.join(sorted(map(str, raw_event))) or 'nothing'}; expected "
                f"exactly one of {', '.join(EVENT_KINDS)}"
            )
            continue
        version = raw_event[kinds[0]]
        if not isinstance(version, str) or not version:
            problems.append(f"{at}.{kinds[0]}: expected a non-empty version string")
            continue
        events.append(Event(kind=kinds[0], version=version))
    present = {e.kind for e in events}
    if "introduced" not in present:
        problems.append(f"{where}.events: no 'introduced' event; at least one is required")
    if "fixed" in present and "last_affected" in present:
        problems.append(f"{where}.events: both 'fixed' and 'last_affected'; the schema allows one")
    return Range(type=range_type, events=tuple(events), repo=repo)


class _Reader:
    """Reads typed fields from decoded JSON, collecting one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def _name(self, at: str | None, key: str) -> str:
        return f"{at}.{key}" if at else key

    def string(
        self, obj: Mapping[str, Any], key: str, *, required: bool = False, at: str | None = None
    ) -> str | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.problems.append(f"{self._name(at, key)}: missing; it is required")
            return None
        if not isinstance(value, str) or (required and not value):
            self.problems.append(f"{self._name(at, key)}: expected a non-empty string")
            return None
        return value

    def strings(
        self, obj: Mapping[str, Any], key: str, *, at: str | None = None
    ) -> tuple[str, ...]:
        value = obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{self._name(at, key)}: expected a list of strings")
            return ()
        return tuple(value)

    def list(self, obj: Mapping[str, Any], key: str, *, at: str | None = None) -> Sequence[Any]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{self._name(at, key)}: expected a list")
            return []
        return value

    def mapping(
        self, obj: Mapping[str, Any], key: str, *, at: str | None = None
    ) -> Mapping[str, Any]:
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{self._name(at, key)}: expected an object")
            return {}
        return value

    def time(self, obj: Mapping[str, Any], key: str, *, required: bool = False) -> datetime | None:
        text = self.string(obj, key, required=required)
        if text is None:
            return None
        try:
            parsed = parse_rfc3339(text)
        except ValueError:
            self.problems.append(
                f"{key}: {text!r} is not an RFC 3339 time (e.g. 2021-06-07T12:00:00Z)"
            )
            return None
        # OSV times are UTC ("Z"); a time without a zone is read as UTC rather than local time.
        return parsed.astimezone(UTC)

    def severities(
        self, obj: Mapping[str, Any], key: str, *, at: str | None = None
    ) -> tuple[Severity, ...]:
        out: list[Severity] = []
        for i, item in enumerate(self.list(obj, key, at=at)):
            where = f"{self._name(at, key)}[{i}]"
            if (
                not isinstance(item, Mapping)
                or not isinstance(item.get("type"), str)
                or not isinstance(item.get("score"), str)
            ):
                self.problems.append(f"{where}: expected {{'type': string, 'score': string}}")
                continue
            out.append(Severity(type=item["type"], score=item["score"]))
        return tuple(out)
