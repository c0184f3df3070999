"""Field masks for updates: parsing both spellings and applying them.

gRPC clients send snake_case paths (``short_description``); the REST gateway's JSON mapping
sends camelCase (``shortDescription``), comma-separated. Both are accepted. Only the named fields
change; a path that names no field of the message is an InvalidArgument, not silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from chainproof.errors import InvalidArgument

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(path: str) -> str:
    return _CAMEL_BOUNDARY.sub(lambda m: "_" + m.group(1).lower(), path)


def parse_mask(paths: Iterable[str], descriptor: Descriptor, *, what: str) -> list[str]:
    """Normalise mask paths to snake_case and check that each names a field of ``descriptor``."""
    result: list[str] = []
    for raw in paths:
        raw = raw.strip()
        if not raw:
            continue
        path = ".".join(_snake(p) for p in raw.split("."))
        desc: Descriptor | None = descriptor
        for part in path.split("."):
            field = desc.fields_by_name.get(part) if desc is not None else None
            if field is None:
                raise InvalidArgument(
                    f"updateMask path {raw!r} names no field of {what}: expected field names "
                    f"such as {', '.join(sorted(descriptor.fields_by_name)[:6])}, …"
                )
            is_message = field.type == FieldDescriptor.TYPE_MESSAGE
            desc = field.message_type if is_message and not _is_repeated(field) else None
        result.append(path)
    return result


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def split_mask_string(mask: str | None) -> list[str]:
    return [] if not mask else [p for p in mask.split(",") if p.strip()]


def apply_mask(target: Any, source: Any, paths: list[str]) -> None:
    """Copy the masked fields of ``source`` onto ``target`` (both the same message type)."""
    mask = field_mask_pb2.FieldMask(paths=paths)
    mask.MergeMessage(source, target, replace_message_field=True, replace_repeated_field=True)
