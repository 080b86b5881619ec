"""The server's own OpenAPI document (``/v1/openapi.json``) lists the statuses each ``/v1`` operation returns,
with the contract's error body, and nothing it never returns (herewith.errors.document_errors)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.servers import ThreadServer

ERROR_REF = {"$ref": "#/components/schemas/Error"}
BODY_METHODS = {"post", "put", "patch"}


@pytest.fixture
def doc(server: ThreadServer) -> dict[str, Any]:
    r = httpx.get(server.base_url + "/v1/openapi.json")
    assert r.status_code == 200
    return r.json()


def v1_operations(doc: dict[str, Any]):  # noqa: ANN201
    for path, ops in doc["paths"].items():
        if path.startswith("/v1/"):
            for method, op in ops.items():
                yield method, path, op


def test_every_operation_documents_the_errors_it_returns(doc: dict[str, Any]) -> None:
    seen = 0
    for method, path, op in v1_operations(doc):
        seen += 1
        codes = set(op["responses"])
        assert "422" not in codes, (method, path)
        expected = {"400", "401", "429", "503"}
        if "{" in path:
            expected.add("404")
        if method in BODY_METHODS:
            expected.add("413")
        assert expected <= codes, (method, path, sorted(codes))
        for code in codes - {"200", "201", "202", "204"}:
            content = op["responses"][code]["content"]
            assert content == {"application/json": {"schema": ERROR_REF}}, (method, path, code)
        assert op["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
        assert op["security"] == [{"BearerAuth": []}]
    assert seen >= 20
    paths = doc["paths"]
    assert "409" in paths["/v1/meetings"]["post"]["responses"]
    assert "409" not in paths["/v1/meetings"]["get"]["responses"]
    assert "404" in paths["/v1/insights/room-sessions"]["get"]["responses"]
    assert "404" in paths["/v1/insights/participant"]["get"]["responses"]
    assert "404" not in paths["/v1/insights/rooms"]["get"]["responses"]


def test_the_error_schema_is_the_contracts_and_fastapis_are_gone(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert schemas["Error"]["properties"]["error"]["type"] == "string"
    assert schemas["Error"]["properties"]["data"]["type"] == "object"
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert doc["components"]["securitySchemes"]["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    for method, path, op in [(m, p, o) for p, ops in doc["paths"].items() for m, o in ops.items()]:
        if not path.startswith("/v1/"):
            assert "security" not in op, (method, path)


def test_list_cursors_are_nullable_strings(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("MeetingList", "RoomInsightList", "RoomSessionInsightList", "ParticipantInsightList"):
        assert "cursor" in schemas[name]["required"], name
        assert schemas[name]["properties"]["cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}], name


@pytest.mark.parametrize("path,names", [
    ("/v1/meetings", {"cursor", "limit", "fields", "roomName[startsWith]"}),
    ("/v1/insights/rooms", {"roomName[exact]", "roomName[startsWith]", "roomName[contains]", "createdAt[from]",
                            "createdAt[to]", "sortBy", "cursor", "limit"}),
    ("/v1/insights/room-sessions", {"roomName", "roomSessionId", "sortBy", "cursor", "limit"}),
    ("/v1/insights/participants", {"roomSessionId", "externalId", "sortBy", "cursor", "limit"}),
    ("/v1/insights/participant", {"roomSessionId", "participantId"}),
])
def test_query_parameters_are_documented(doc: dict[str, Any], path: str, names: set[str]) -> None:
    params = doc["paths"][path]["get"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "query"} == names
    limit = next((p for p in params if p["name"] == "limit"), None)
    if limit:
        assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 100
