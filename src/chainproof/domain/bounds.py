"""The bounds of what the server accepts, in one place, for REST and gRPC alike.

Every value that reaches a store or a query passes through one of these checks first, so that
memory, SQLite and PostgreSQL answer alike (PostgreSQL refuses some text the others keep) and
a bad value is an InvalidArgument that names the field, never a database error. The table in
docs/api.md ("Bounds") lists them for users; this module is the source of truth.

* Text (``check_text``): no U+0000 (PostgreSQL text and JSONB cannot hold it) and no lone
  UTF-16 surrogate (it cannot be encoded as UTF-8, so nothing can store or send it).
* Indexed text: a resource URI, a note name and the values a query compares are at most
  :data:`MAX_INDEXED_BYTES` bytes of UTF-8, well under PostgreSQL's B-tree entry limit
  (about 2,700 bytes), so that an over-long value is refused instead of failing the insert.
* Enums (``undefined_enums``): protobuf enums in proto3 are open, so both the JSON parser and
  the gRPC wire accept any number; only the values the proto declares are accepted here.
* Times (``check_time``): between 0001-01-02 and 9999-12-30 UTC, the range every backend and
  Python's datetime can represent after any time-zone shift.
* JSON nesting and number bounds live in :mod:`chainproof.domain.jsontext`; ID grammar in
  :mod:`chainproof.domain.names`; page sizes in :mod:`chainproof.domain.pagination`.

Pure: values in, problems out.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import InvalidArgument

#: Longest resource URI, note name or compared query value, in bytes of UTF-8.
MAX_INDEXED_BYTES = 2048
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or sent as text, or None if it can."""
    if "\x00" in value:
        return "contains the character U+0000 (NUL), which cannot be stored: remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone UTF-16 surrogate (U+{ord(value[exc.start]):04X}) at position "
            f"{exc.start}: send the whole surrogate pair, or the character itself"
        )
    return None


def check_text(value: str, field: str, *, max_bytes: int | None = None) -> str:
    """``value`` if it can be stored (and is within ``max_bytes``); else InvalidArgument."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(f"{field} {problem}")
    if max_bytes is not None:
        size = len(value.encode("utf-8"))
        if size > max_bytes:
            raise InvalidArgument(
                f"{field} is {size} bytes long: at most {max_bytes} bytes of UTF-8 are accepted"
            )
    return value


def storable_json(data: Any, what: str) -> bytes:
    """``data`` encoded as JSON if every backend can store it (no NUL, no lone surrogate)."""
    try:
        raw = orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise InvalidArgument(
            f"{what} contains text that cannot be stored ({exc}): a lone UTF-16 surrogate such "
            "as \\ud800 has no meaning on its own; send the whole pair"
        ) from None
    if b"\\u0000" in raw:
        raise InvalidArgument(
            f"{what} contains the character U+0000 (NUL), which cannot be stored: remove it"
        )
    return raw


def check_indexed_text(value: str, field: str) -> str:
    """A value compared through an index (resource URI, note name, query parameter)."""
    return check_text(value, field, max_bytes=MAX_INDEXED_BYTES)


def check_time(value: datetime, field: str) -> datetime:
    """``value`` in UTC if it is within [EARLIEST, LATEST]; else InvalidArgument."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not (EARLIEST <= utc <= LATEST):
        raise InvalidArgument(
            f"{field} {value.isoformat()} is out of range: expected a time between "
            f"{EARLIEST.date()} and {LATEST.date()} (UTC)"
        )
    return utc


def parse_time(text: str, field: str) -> datetime:
    """An RFC 3339 time (``2026-11-22T10:00:00Z``; no offset means UTC), range-checked."""
    check_text(text, field, max_bytes=64)
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        raise InvalidArgument(
            f"{field} {text!r} is not a time: expected RFC 3339, e.g. 2026-11-22T10:00:00Z"
        ) from None
    return check_time(parsed, field)


# --------------------------------------------------------------------------- protobuf enums

_FD = FieldDescriptor


@functools.cache
def _enum_fields(desc: Descriptor) -> tuple[tuple[FieldDescriptor, frozenset[int] | None], ...]:
    """The fields of ``desc`` that are enums (with their numbers) or can contain one."""
    out: list[tuple[FieldDescriptor, frozenset[int] | None]] = []
    for fd in desc.fields:
        if fd.type == _FD.TYPE_ENUM:
            out.append((fd, frozenset(v.number for v in fd.enum_type.values)))
        elif fd.type == _FD.TYPE_MESSAGE and _may_hold_enum(fd.message_type, ()):
            out.append((fd, None))
    return tuple(out)


def _may_hold_enum(desc: Descriptor, seen: tuple[str, ...]) -> bool:
    if desc.full_name in seen:
        return False  # a recursive message: its enums are found on the first visit
    for fd in desc.fields:
        if fd.type == _FD.TYPE_ENUM:
            return True
        if fd.type == _FD.TYPE_MESSAGE and _may_hold_enum(fd.message_type, (*seen, desc.full_name)):
            return True
    return False


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@functools.cache
def _enum_shapes(desc: Descriptor) -> dict[str, tuple[frozenset[int] | None, str]]:
    """:func:`_enum_fields` by field name, with each field's shape (map, repeated, single)."""
    out: dict[str, tuple[frozenset[int] | None, str]] = {}
    for fd, numbers in _enum_fields(desc):
        is_map = fd.type == _FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry
        out[fd.name] = (numbers, "map" if is_map else "repeated" if fd.is_repeated else "one")
    return out


def _any_undefined(msg: Any) -> bool:
    """Whether any enum set in ``msg`` holds an undeclared number. Looks only at the fields
    that are set (``ListFields``, in C): an unset enum is 0, which proto3 always declares."""
    shapes = _enum_shapes(msg.DESCRIPTOR)
    if not shapes:
        return False
    for fd, value in msg.ListFields():
        shape = shapes.get(fd.name)
        if shape is None:
            continue
        numbers, form = shape
        values = value.values() if form == "map" else value if form == "repeated" else (value,)
        for v in values:
            if numbers is None:
                if not isinstance(v, int) and _any_undefined(v):
                    return True
            elif v not in numbers:
                return True
    return False


def undefined_enums(msg: Any, path: str = "") -> list[str]:
    """One problem per enum field whose number the proto does not declare (``kind: 999``).

    A quick look at the set fields comes first (a batch of 1,000 valid occurrences spent a
    quarter of its server time walking every declared field, ADR 0086); only a message that
    holds an undeclared number is walked field by field, to name each."""
    if not path and not _any_undefined(msg):
        return []
    problems: list[str] = []
    for fd, numbers in _enum_fields(msg.DESCRIPTOR):
        here = f"{path}.{_camel(fd.name)}" if path else _camel(fd.name)
        is_map = fd.type == _FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry
        if fd.is_repeated and not is_map:
            values = list(getattr(msg, fd.name))
        elif is_map:
            values = list(getattr(msg, fd.name).values())
        elif fd.type == _FD.TYPE_MESSAGE:
            values = [getattr(msg, fd.name)] if msg.HasField(fd.name) else []
        else:
            values = [getattr(msg, fd.name)]
        for i, value in enumerate(values):
            where = f"{here}[{i}]" if len(values) > 1 or fd.is_repeated else here
            if numbers is None:
                if isinstance(value, int):  # a map of enums
                    continue
                problems += undefined_enums(value, where)
            elif value not in numbers:
                names = ", ".join(v.name for v in fd.enum_type.values)
                problems.append(
                    f"{where} is {value}, which is not a value of {fd.enum_type.name}: "
                    f"expected one of {names}"
                )
    return problems


_AGE = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest look back an age may ask for.
MAX_AGE = timedelta(days=366)


def parse_since(text: str, field: str, now: datetime) -> datetime:
    """A start time given as an age before ``now`` (``7d``, ``24h``, ``30m``, ``90s``) or as
    an RFC 3339 time; at most a year back."""
    check_text(text, field, max_bytes=64)
    found = _AGE.fullmatch(text.strip())
    if found is None:
        if text[:1].isdigit() and "-" in text:
            return parse_time(text, field)
        raise InvalidArgument(
            f"{field} {text!r} is neither an age (7d, 24h, 30m, 90s) nor an RFC 3339 time"
        )
    age = timedelta(seconds=int(found.group(1)) * _AGE_UNITS[found.group(2)])
    if age > MAX_AGE:
        raise InvalidArgument(f"{field} {text!r} reaches back more than {MAX_AGE.days} days")
    return now - age
