"""JSON request bodies parsed by the endpoint itself, for the hottest calls (``POST /v1/meetings``).

Why not a FastAPI body parameter there: FastAPI decodes the JSON in Python, then validates the dict, and its
per-request parameter handling adds about as much again. ``model.model_validate_json`` does both in one
pass in pydantic-core. Counted with valgrind in-process, a POST went from 1.31 M to 1.24 M instructions
with this alone, and to 1.19 M with the organization read from request state (``docs/performance.md``).
The answers are the contract's 400s, as for FastAPI's own body parameters:

* a body that is not JSON (or is empty): ``Malformed JSON body``;
* JSON that is not an object: a 400 naming ``body`` ("must be a JSON object");
* a bad field: :class:`RequestValidationError` with ``loc`` starting at ``"body"``, which
  :mod:`herewith.errors` renders as a 400 naming the field, exactly as for FastAPI's own parameters;
* a ``Content-Type`` that is neither JSON nor absent: a 400 naming ``body`` (FastAPI refused those too).

The OpenAPI document keeps the request body: :func:`openapi_body` describes it on the route and
:func:`register_body_schemas` adds the models to ``components.schemas``.

Usage::

    @router.post("", openapi_extra=openapi_body(CreateMeetingRequest))
    async def create(request: Request) -> Response:
        body = parse_json_body(CreateMeetingRequest, request.headers.get("content-type"), await request.body())

    register_body_schemas(app, [CreateMeetingRequest])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from herewith.errors import BadRequest, validation_error

M = TypeVar("M", bound=BaseModel)

_REF = "#/components/schemas/{model}"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # as FastAPI: no Content-Type is read as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_json_body(model: type[M], content_type: str | None, raw: bytes) -> M:
    """``raw`` validated as ``model`` (pydantic JSON mode).

    Raises :class:`BadRequest` (malformed JSON, not an object, or a non-JSON ``Content-Type``) or
    :class:`RequestValidationError` (a bad field; ``loc`` from ``"body"``)."""
    if not _is_json(content_type):
        raise validation_error("body", "must be JSON (Content-Type: application/json)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise BadRequest("Malformed JSON body", data={"body": "not valid JSON"}) from None
        if any(err["type"] == "model_type" and not err["loc"] for err in errors):
            raise validation_error("body", "must be a JSON object") from None
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in errors]) from None


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is ``model``, parsed by :func:`parse_json_body`."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}}}


def register_body_schemas(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI ``components.schemas``, once, when the
    document is first built (FastAPI adds only the models of its own parameters)."""
    models = tuple(models)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
