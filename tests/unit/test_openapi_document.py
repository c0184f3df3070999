"""The OpenAPI document says what the server really takes and answers (issue 9 item 19).

Before: every operation declared 200 and 422 (never sent), and every body was
``{"type": "object"}``. Now: the Grafeas messages' schemas come from the ``grafeas`` package's
protobuf descriptors, the judge's resources have theirs, every error status the route can
answer is declared with the error body, and there is no 422.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor

from apps import unopened_app
from chainproof.api.rest.openapi import OPERATIONS
from chainproof.config import load_settings
from chainproof.domain.messages import NotePB, OccurrencePB


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = unopened_app(load_settings(database_url="memory://", grpc_enabled=False))
    doc: dict[str, Any] = app.openapi()
    return doc


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
    ]


def test_no_operation_declares_422_and_none_is_left_undescribed(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) == len(OPERATIONS)  # and the table names no route that is gone
    assert {(m, p) for m, p, _ in ops} == set(OPERATIONS)
    for method, path, spec in ops:
        assert "422" not in spec["responses"], (method, path)
        ok = spec["responses"]["200"]["content"]
        schema = next(iter(ok.values()))["schema"]
        assert schema != {"type": "object"}, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_errors_are_declared_with_the_error_body(document: dict[str, Any]) -> None:
    for method, path, spec in operations(document):
        errors = {int(s) for s in spec["responses"] if s != "200"}
        assert 401 in errors, (method, path)
        for status in errors:
            content = spec["responses"][str(status)]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    by_key = {(m, p): spec for m, p, spec in operations(document)}
    assert {"400", "401", "403", "404", "503"} <= set(
        by_key[("GET", "/v1/projects/{project}/notes/{note_id}")]["responses"]
    )
    assert "409" in by_key[("POST", "/v1/projects/{project}/notes")]["responses"]
    assert "413" in by_key[("POST", "/v1/projects/{project}/occurrences")]["responses"]
    assert "413" in by_key[("GET", "/v1/projects/{project}/occurrences")]["responses"]


@pytest.mark.parametrize("message", [NotePB, OccurrencePB])
def test_grafeas_schemas_follow_the_descriptors(document: dict[str, Any], message: Any) -> None:
    schemas = document["components"]["schemas"]
    descriptor = message.DESCRIPTOR
    schema = schemas[descriptor.full_name]
    assert set(schema["properties"]) == {f.json_name for f in descriptor.fields}
    assert schema["additionalProperties"] is False
    for field in descriptor.fields:
        prop = schema["properties"][field.json_name]
        target = field.message_type
        if target is not None and not target.full_name.startswith("google."):
            if target.GetOptions().map_entry:
                continue
            inner = prop.get("items", prop)
            assert inner == {"$ref": f"#/components/schemas/{target.full_name}"}
            assert target.full_name in schemas
        elif field.type == FieldDescriptor.TYPE_ENUM:
            names = prop.get("items", prop)["anyOf"][0]["enum"]
            assert names == [v.name for v in field.enum_type.values]


def test_request_bodies_are_the_resources(document: dict[str, Any]) -> None:
    by_key = {(m, p): spec for m, p, spec in operations(document)}

    def body(method: str, path: str) -> Any:
        return by_key[(method, path)]["requestBody"]["content"]["application/json"]["schema"]

    assert body("POST", "/v1/projects/{project}/notes") == {
        "$ref": "#/components/schemas/grafeas.v1.Note"
    }
    assert body("PUT", "/v1/projects/{project}/policy") == {"$ref": "#/components/schemas/Policy"}
    assert body("POST", "/v1/projects/{project}/attestors") == {
        "$ref": "#/components/schemas/Attestor"
    }
    assert "requestBody" not in by_key[("GET", "/v1/projects/{project}/decisions")]
