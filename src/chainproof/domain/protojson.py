"""A fast path for protobuf's JSON mapping, on the messages chainproof stores.

``google.protobuf.json_format`` is written in Python and costs about 80 µs to render and
130 µs to parse one Grafeas occurrence, which caps ingest far below what the store can take.
This module does the same conversions from per-message tables built once from the
descriptors, in a fraction of that time.

It is deliberately partial: it handles the field types Grafeas messages use (scalars, enums,
bytes, nested messages, repeated and map fields, ``Timestamp``) and refuses everything else
by raising :class:`Unsupported`, in which case callers fall back to ``json_format``. Invalid
input never gets a different verdict: any doubt also falls back, so errors are always
``json_format``'s, and the differential tests in ``tests/unit/domain/test_protojson.py`` hold
both paths to the same output.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers

_FD = FieldDescriptor
_INT_TYPES = frozenset(
    {_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32, _FD.TYPE_UINT32, _FD.TYPE_FIXED32}
)
_INT64_TYPES = frozenset(
    {_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64, _FD.TYPE_UINT64, _FD.TYPE_FIXED64}
)
_UNSIGNED = frozenset({_FD.TYPE_UINT32, _FD.TYPE_FIXED32, _FD.TYPE_UINT64, _FD.TYPE_FIXED64})
_INT32_RANGE = (-(2**31), 2**31 - 1)
_UINT32_RANGE = (0, 2**32 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_UINT64_RANGE = (0, 2**64 - 1)
_TIMESTAMP = "google.protobuf.Timestamp"
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


class Unsupported(Exception):
    """The fast path does not handle this; use json_format (which also reports errors)."""


# --------------------------------------------------------------------------- rendering

Render = Callable[[Any], Any]
_RENDERERS: dict[str, dict[int, tuple[str, Render]]] = {}


def _timestamp_to_json(ts: Any) -> str:
    return _format_timestamp(ts.seconds, ts.nanos)


@functools.lru_cache(maxsize=4096)  # a batch stamps every item with the same instant
def _format_timestamp(seconds: int, nanos: int) -> str:
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS) or not (0 <= nanos < 1_000_000_000):
        raise Unsupported
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        if nanos % 1_000_000 == 0:
            text += f".{nanos // 1_000_000:03d}"
        elif nanos % 1000 == 0:
            text += f".{nanos // 1000:06d}"
        else:
            text += f".{nanos:09d}"
    return text + "Z"


def _float_to_json(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _float32_to_json(value: float) -> Any:
    # json_format's own rounding: the shortest decimal that reads back as the same float32.
    if math.isnan(value) or math.isinf(value):
        return _float_to_json(value)
    return type_checkers.ToShortestFloat(value)


def _scalar_renderer(fd: FieldDescriptor) -> Render:
    t = fd.type
    if t == _FD.TYPE_MESSAGE:
        desc = fd.message_type
        if desc.full_name == _TIMESTAMP:
            return _timestamp_to_json
        if desc.full_name.startswith("google.protobuf."):
            raise Unsupported
        return lambda m: render_message(m, desc)
    if t == _FD.TYPE_ENUM:
        # Aliased values render by their first name, as json_format does.
        names: dict[int, str] = {}
        for value in fd.enum_type.values:
            names.setdefault(value.number, value.name)
        return lambda v: names.get(v, v)
    if t == _FD.TYPE_BYTES:
        return lambda b: base64.b64encode(b).decode("ascii")
    if t in _INT64_TYPES:
        return str
    if t == _FD.TYPE_FLOAT:
        return _float32_to_json
    if t == _FD.TYPE_DOUBLE:
        return _float_to_json
    return lambda v: v  # string, bool, 32-bit ints


def _field_renderer(fd: FieldDescriptor) -> Render:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        key_fd = fd.message_type.fields_by_name["key"]
        value_render = _scalar_renderer(fd.message_type.fields_by_name["value"])
        if key_fd.type == _FD.TYPE_BOOL:
            raise Unsupported
        return lambda m: {str(k): value_render(v) for k, v in m.items()}
    one = _scalar_renderer(fd)
    if fd.is_repeated:
        return lambda values: [one(v) for v in values]
    return one


def _refuse(value: Any) -> Any:
    raise Unsupported


def _renderers(desc: Descriptor) -> dict[int, tuple[str, Render]]:
    table = _RENDERERS.get(desc.full_name)
    if table is None:
        table = {}
        for fd in desc.fields:
            try:
                render = _field_renderer(fd)
            except Unsupported:
                render = _refuse  # only refused when such a field is actually set
            table[fd.number] = (fd.json_name, render)
        _RENDERERS[desc.full_name] = table
    return table


def render_message(msg: Any, desc: Descriptor | None = None) -> dict[str, Any]:
    """``msg`` in protobuf's JSON mapping (as ``json_format.MessageToDict`` would give)."""
    table = _renderers(desc or msg.DESCRIPTOR)
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        name, render = table[fd.number]
        out[name] = render(value)
    return out


# --------------------------------------------------------------------------- parsing

Assign = Callable[[Any, Any], None]
#: JSON key (both spellings) → (assign, field number, name of the oneof or "").
_PARSERS: dict[str, dict[str, tuple[Assign, int, str]]] = {}


def _check_int(value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        raise Unsupported
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise Unsupported from None
    elif isinstance(value, float):
        if not value.is_integer():
            raise Unsupported
        value = int(value)
    elif not isinstance(value, int):
        raise Unsupported
    number: int = value
    if not (bounds[0] <= number <= bounds[1]):
        raise Unsupported
    return number


def _parse_timestamp(text: Any) -> tuple[int, int]:
    if not isinstance(text, str):
        raise Unsupported
    return _parse_timestamp_text(text)


_TIMESTAMP_TEXT = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")


@functools.lru_cache(maxsize=4096)  # the rows of one batch share their create/update times
def _parse_timestamp_text(text: str) -> tuple[int, int]:
    # Only the canonical UTC spelling; offsets and anything odd go to json_format.
    m = _TIMESTAMP_TEXT.fullmatch(text)
    if m is None:
        raise Unsupported
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise Unsupported from None
    frac = m.group(7)
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return int(when.timestamp()), nanos


def _scalar_parser(fd: FieldDescriptor) -> Callable[[Any], Any]:
    t = fd.type
    if t == _FD.TYPE_STRING:

        def parse_string(v: Any) -> str:
            if not isinstance(v, str):
                raise Unsupported
            return v

        return parse_string
    if t == _FD.TYPE_BOOL:

        def parse_bool(v: Any) -> bool:
            if not isinstance(v, bool):
                raise Unsupported
            return v

        return parse_bool
    if t == _FD.TYPE_ENUM:
        by_name: dict[str, int] = {v.name: v.number for v in fd.enum_type.values}
        numbers = set(by_name.values())

        def parse_enum(v: Any) -> int:
            if isinstance(v, str) and v in by_name:
                return by_name[v]
            if isinstance(v, int) and not isinstance(v, bool) and v in numbers:
                return int(v)
            raise Unsupported

        return parse_enum
    if t == _FD.TYPE_BYTES:

        def parse_bytes(v: Any) -> bytes:
            if not isinstance(v, str):
                raise Unsupported
            try:
                return base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise Unsupported from None

        return parse_bytes
    if t in _INT64_TYPES:
        bounds = _UINT64_RANGE if t in _UNSIGNED else _INT64_RANGE
        return lambda v: _check_int(v, bounds)
    if t in _INT_TYPES:
        bounds = _UINT32_RANGE if t in _UNSIGNED else _INT32_RANGE
        return lambda v: _check_int(v, bounds)
    if t in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
        low, high = (
            (type_checkers._FLOAT_MIN, type_checkers._FLOAT_MAX)
            if t == _FD.TYPE_FLOAT
            else (-math.inf, math.inf)
        )

        def parse_float(v: Any) -> float:
            # Plain finite numbers only (json_format's checks for float32 range included);
            # quoted numbers, "NaN" and "Infinity" are left to json_format.
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Unsupported
            try:
                number = float(v)
            except OverflowError:
                raise Unsupported from None
            if not math.isfinite(number) or not (low <= number <= high):
                raise Unsupported
            return number

        return parse_float
    raise Unsupported


def _field_parser(fd: FieldDescriptor) -> Assign:
    name = fd.name
    if fd.type == _FD.TYPE_MESSAGE:
        desc = fd.message_type
        if desc.GetOptions().map_entry:
            raise Unsupported
        if desc.full_name == _TIMESTAMP:

            def assign_timestamp(msg: Any, value: Any) -> None:
                if fd.is_repeated:
                    raise Unsupported
                seconds, nanos = _parse_timestamp(value)
                ts = getattr(msg, name)
                ts.seconds, ts.nanos = seconds, nanos

            return assign_timestamp
        if desc.full_name.startswith("google.protobuf."):
            raise Unsupported
        if fd.is_repeated:

            def assign_messages(msg: Any, value: Any) -> None:
                if not isinstance(value, list):
                    raise Unsupported
                target = getattr(msg, name)
                for item in value:
                    parse_into(item, target.add())

            return assign_messages

        def assign_message(msg: Any, value: Any) -> None:
            sub = getattr(msg, name)
            sub.SetInParent()  # {} still sets the field (and picks the oneof member)
            parse_into(value, sub)

        return assign_message

    convert = _scalar_parser(fd)
    if fd.is_repeated:

        def assign_list(msg: Any, value: Any) -> None:
            if not isinstance(value, list):
                raise Unsupported
            getattr(msg, name).extend(convert(v) for v in value)

        return assign_list

    if fd.type == _FD.TYPE_STRING:
        # The commonest field, checked in place (the same test as parse_string).
        def assign_string(msg: Any, value: Any) -> None:
            if not isinstance(value, str):
                raise Unsupported
            setattr(msg, name, value)

        return assign_string

    def assign_scalar(msg: Any, value: Any) -> None:
        setattr(msg, name, convert(value))

    return assign_scalar


#: Per message class: JSON key (both spellings) → (assign, conflict group). The group is the
#: field number of a field with two spellings, or the name of its oneof, or None for a field
#: that only one key can set (a dict holds each key once, so it needs no bookkeeping).
_TABLES: dict[type, dict[str, tuple[Assign, int | str | None]]] = {}


def _parsers(desc: Descriptor) -> dict[str, tuple[Assign, int, str]]:
    table = _PARSERS.get(desc.full_name)
    if table is None:
        table = {}
        for fd in desc.fields:
            try:
                assign = _field_parser(fd)
            except Unsupported:
                assign = _unsupported
            oneof = fd.containing_oneof.name if fd.containing_oneof is not None else ""
            table[fd.json_name] = (assign, fd.number, oneof)
            table[fd.name] = (assign, fd.number, oneof)
        _PARSERS[desc.full_name] = table
    return table


def _table(cls: type, desc: Descriptor) -> dict[str, tuple[Assign, int | str | None]]:
    table: dict[str, tuple[Assign, int | str | None]] = {}
    for key, (assign, number, oneof) in _parsers(desc).items():
        fd = desc.fields_by_number[number]
        group: int | str | None = oneof or (number if fd.json_name != fd.name else None)
        table[key] = (assign, group)
    _TABLES[cls] = table
    return table


def _unsupported(msg: Any, value: Any) -> None:
    raise Unsupported


def parse_into(data: Any, msg: Any) -> None:
    """Fill ``msg`` from JSON ``data``; raise Unsupported on anything unusual or invalid."""
    if not isinstance(data, dict):
        raise Unsupported
    table = _TABLES.get(type(msg)) or _table(type(msg), msg.DESCRIPTOR)
    seen: set[int | str] | None = None
    for key, value in data.items():
        entry = table.get(key)
        if entry is None or value is None:
            raise Unsupported  # unknown field or explicit null: json_format decides
        assign, group = entry
        if group is not None:
            # Both spellings of one field, or two members of one oneof: json_format's error.
            if seen is None:
                seen = {group}
            elif group in seen:
                raise Unsupported
            else:
                seen.add(group)
        assign(msg, value)


# --------------------------------------------------------------------------- building

#: JSON key (both spellings) → (constructor keyword, value conversion or None for a string
#: passed as it is, conflict group as in ``_TABLES``), per message descriptor.
_BUILDERS: dict[Any, dict[str, tuple[str, Callable[[Any], Any] | None, int | str | None]]] = {}


def build(cls: Any, data: Any, server: Mapping[str, Any] | None = None) -> Any:
    """``cls`` built from JSON ``data`` with one constructor call; the same verdicts as
    :func:`parse_into` (the same checks, each raising Unsupported where it would), but the
    message is assembled in C from keyword arguments instead of field by field.

    ``server``: constructor arguments (by proto field name) set over what ``data`` says, as
    assigning them afterwards would — the fields a server sets on every message it stores
    (name, times), in the same call (ADR 0207). They are not checked: they are the caller's."""
    kwargs = _kwargs(data, cls.DESCRIPTOR)
    if server:
        kwargs.update(server)
    return cls(**kwargs)


def _kwargs(data: Any, desc: Descriptor) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Unsupported
    table = _BUILDERS.get(desc) or _builders(desc)
    out: dict[str, Any] = {}
    seen: set[int | str] | None = None
    for key, value in data.items():
        entry = table.get(key)
        if entry is None or value is None:
            raise Unsupported  # unknown field or explicit null: json_format decides
        name, convert, group = entry
        if group is not None:
            if seen is None:
                seen = {group}
            elif group in seen:
                raise Unsupported
            else:
                seen.add(group)
        if convert is None:
            if not isinstance(value, str):
                raise Unsupported
            out[name] = value
        else:
            out[name] = convert(value)
    return out


def _builders(
    desc: Descriptor,
) -> dict[str, tuple[str, Callable[[Any], Any] | None, int | str | None]]:
    table: dict[str, tuple[str, Callable[[Any], Any] | None, int | str | None]] = {}
    for fd in desc.fields:
        convert: Callable[[Any], Any] | None
        try:
            convert = _value_builder(fd)
        except Unsupported:
            convert = _refuse
        oneof = fd.containing_oneof.name if fd.containing_oneof is not None else ""
        group: int | str | None = oneof or (fd.number if fd.json_name != fd.name else None)
        table[fd.json_name] = table[fd.name] = (fd.name, convert, group)
    _BUILDERS[desc] = table
    return table


def _value_builder(fd: FieldDescriptor) -> Callable[[Any], Any] | None:
    """What a JSON value of ``fd`` becomes as a constructor argument (None: a string, as
    it is); raises Unsupported for what :func:`_field_parser` does not handle."""
    if fd.type == _FD.TYPE_MESSAGE:
        desc = fd.message_type
        if desc.GetOptions().map_entry:
            raise Unsupported
        if desc.full_name == _TIMESTAMP:
            if fd.is_repeated:
                raise Unsupported

            def timestamp(value: Any) -> dict[str, int]:
                seconds, nanos = _parse_timestamp(value)
                return {"seconds": seconds, "nanos": nanos}

            return timestamp
        if desc.full_name.startswith("google.protobuf."):
            raise Unsupported
        if fd.is_repeated:

            def messages(value: Any) -> list[dict[str, Any]]:
                if not isinstance(value, list):
                    raise Unsupported
                return [_kwargs(item, desc) for item in value]

            return messages
        return lambda value: _kwargs(value, desc)
    convert = _scalar_parser(fd)
    if fd.is_repeated:

        def values(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise Unsupported
            return [convert(v) for v in value]

        return values
    return None if fd.type == _FD.TYPE_STRING else convert
