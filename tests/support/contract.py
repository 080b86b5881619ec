"""The vendor's OpenAPI document as JSON Schemas, for validating Herewith's responses against the contract."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

# The vendor's OpenAPI document, copied into the repository (tests/fixtures/README.md says from where).
SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "whereby-openapi.json"
UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _resolve(node: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec()
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(copy.deepcopy(target))
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def _nullable_cursor(schema: dict[str, Any]) -> dict[str, Any]:
    # The spec declares `cursor` a string but the API sends null on the last page (docs/api.md, "Lists").
    props = schema.get("properties", {})
    if "cursor" in props:
        props["cursor"] = {**props["cursor"], "type": ["string", "null"]}
    return schema


def response_schema(path: str, method: str, status: str = "200") -> dict[str, Any]:
    """The resolved JSON Schema of one response body of the spec."""
    op = spec()["paths"][path][method.lower()]
    schema = _resolve(op["responses"][status]["content"]["application/json"]["schema"])
    return _nullable_cursor(schema)


def component_schema(name: str) -> dict[str, Any]:
    return _resolve(spec()["components"]["schemas"][name])


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``instance`` does not match; also checks date formats."""
    jsonschema.validate(instance, schema)
    _check_dates(instance, schema)


def _check_dates(instance: Any, schema: dict[str, Any]) -> None:
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in instance and instance[key] is not None:
                if sub.get("format") == "date-time":
                    assert UTC_MS.match(instance[key]), f"{key}={instance[key]!r} is not UTC with ms and Z"
                _check_dates(instance[key], sub)
    elif isinstance(instance, list) and "items" in schema:
        for item in instance:
            _check_dates(item, schema["items"])
