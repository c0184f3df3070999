"""JSON Schema for protobuf messages, read from their descriptors (the ``grafeas`` package's).

Owns the translation of protobuf's JSON mapping into JSON Schema (OpenAPI 3.1), so that the
published REST schemas are the Grafeas messages themselves and follow every change of the
installed package, never a hand copy of the .proto files:

* a message is an object of its fields by JSON name (camelCase), nothing else; each message
  type is one named schema, referenced by ``$ref`` (so recursive types work);
* 64-bit integers are strings of digits (how they are rendered) or numbers (accepted);
* ``float``/``double`` are numbers, or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* enums are their value names; a number is also accepted on input;
* ``bytes`` are base64 strings; ``map<K, V>`` an object of V; repeated fields arrays;
* well-known types: ``Timestamp`` an RFC 3339 string, ``Duration`` ``"1.5s"``, ``Struct`` an
  object, ``Value`` any JSON, ``Any`` an object naming its ``@type``, ``FieldMask`` a string,
  wrappers their value.

The server accepts more than the schema says (snake_case field names, enum numbers as well as
names, the v1alpha1 shapes of docs/api.md): the schema describes the canonical form, the one
responses use.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_T = FieldDescriptor

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
_INT64 = {
    "anyOf": [
        {"type": "string", "pattern": "^-?[0-9]+$"},
        {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
    ]
}
_UINT64 = {
    "anyOf": [
        {"type": "string", "pattern": "^[0-9]+$"},
        {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    ]
}
_FLOAT = {"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}

_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_INT32: _INT32,
    _T.TYPE_SINT32: _INT32,
    _T.TYPE_SFIXED32: _INT32,
    _T.TYPE_UINT32: _UINT32,
    _T.TYPE_FIXED32: _UINT32,
    _T.TYPE_INT64: _INT64,
    _T.TYPE_SINT64: _INT64,
    _T.TYPE_SFIXED64: _INT64,
    _T.TYPE_UINT64: _UINT64,
    _T.TYPE_FIXED64: _UINT64,
    _T.TYPE_FLOAT: _FLOAT,
    _T.TYPE_DOUBLE: _FLOAT,
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": _SCALARS[_T.TYPE_BYTES],
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
    "google.protobuf.FloatValue": _FLOAT,
    "google.protobuf.DoubleValue": _FLOAT,
}


class ProtoSchemas:
    """Collects named schemas for messages and their dependencies; ``ref_prefix`` is where
    the document keeps them (``#/components/schemas/``)."""

    def __init__(self, ref_prefix: str = "#/components/schemas/") -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._prefix = ref_prefix

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        """A reference to ``descriptor``'s schema, adding it (and what it uses) if new."""
        known = _WELL_KNOWN.get(descriptor.full_name)
        if known is not None:
            return dict(known)
        name = descriptor.full_name
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: recursive types refer to it
            self.schemas[name] = self._message(descriptor)
        return {"$ref": self._prefix + name}

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {f.json_name: self._field(f) for f in descriptor.fields}
        schema: dict[str, Any] = {
            "type": "object",
            "title": descriptor.full_name,
            "properties": properties,
            "additionalProperties": False,
        }
        oneofs = [o for o in descriptor.oneofs if len(o.fields) > 1]
        if oneofs:
            # At most one member of each oneof may be set.
            schema["description"] = "; ".join(
                f"at most one of {', '.join(f.json_name for f in o.fields)}" for o in oneofs
            )
        return schema

    def _field(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            value = message.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if _repeated(field):
            return {"type": "array", "items": single}
        return single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            values = field.enum_type.values
            return {
                "anyOf": [
                    {"type": "string", "enum": [v.name for v in values]},
                    {"type": "integer", "enum": [v.number for v in values]},
                ]
            }
        return dict(_SCALARS[field.type])


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 6 has is_repeated; older releases only the label.
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return bool(field.label == _T.LABEL_REPEATED)
