"""Errors as the contract renders them: ``{"error": "<message>", "data": {...}}`` (CONTRACT.md, "Common rules").

Raise a :class:`HerewithError` subclass anywhere below the endpoints; :func:`install` turns it, and the
framework's own errors (validation, unknown route, wrong method, malformed JSON), into that body.
:func:`document_errors` makes the OpenAPI document say so: each operation lists the error statuses it
returns, with that body, and never FastAPI's 422 (validation errors are 400s here).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy import exc as sa_exc
from starlette.requests import ClientDisconnect

import structlog

log = structlog.get_logger(__name__)

UNAUTHORIZED = "Access token is missing or invalid"
FORBIDDEN = "Not allowed to perform action"
NOT_FOUND = "The requested resource doesn't exist"
DATABASE_UNAVAILABLE = "The database is unavailable, retry shortly"


class HerewithError(Exception):
    """An error with an HTTP status and the contract's body.

    ``status``: HTTP status; ``message``: the ``error`` string; ``data``: optional detail object;
    ``headers``: extra response headers (e.g. ``Retry-After``).
    """

    status = 500
    message = "Internal server error"

    def __init__(self, message: str | None = None, data: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, status: int | None = None) -> None:
        self.message = message or self.message
        self.data = data
        self.headers = headers or {}
        if status is not None:
            self.status = status
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Send this error as an ASGI response (for middleware that answers before routing)."""
        await self.response()(scope, receive, send)


class BadRequest(HerewithError):
    """400: bad input. ``data`` names the offending fields: ``{"<field>": "<what is wrong>"}``."""

    status = 400
    message = "Invalid request"


class Unauthorized(HerewithError):
    status = 401
    message = UNAUTHORIZED


class Forbidden(HerewithError):
    status = 403
    message = FORBIDDEN


class NotFound(HerewithError):
    status = 404
    message = NOT_FOUND


class Conflict(HerewithError):
    status = 409
    message = "The request conflicts with the current state of the resource"


class Gone(HerewithError):
    status = 410
    message = "The requested resource is no longer available"


class PayloadTooLarge(HerewithError):
    status = 413
    message = "Request body is too large"


class TooManyRequests(HerewithError):
    status = 429
    message = "Too many requests"


def validation_error(field: str, problem: str) -> BadRequest:
    """A 400 naming one field: ``{"error": "Invalid <field>: <problem>", "data": {<field>: <problem>}}``."""
    return BadRequest(f"Invalid {field}: {problem}", data={field: problem})


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _body_error(err: dict[str, Any]) -> BadRequest | None:
    """The 400 for an error about the JSON body as a whole (FastAPI's and pydantic's error shapes), or None.

    Malformed JSON, and an empty body, are ``Malformed JSON body``. A body FastAPI did not decode because its
    ``Content-Type`` is not JSON reaches validation as bytes: a 400 naming ``body``. JSON that is not an
    object (an array, a string, ``null``): a 400 naming ``body``.
    """
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid" or (loc == ("body",) and err.get("type") == "missing"):
        return BadRequest("Malformed JSON body", data={"body": "not valid JSON"})
    if loc != ("body",):
        return None
    if isinstance(err.get("input"), (bytes, bytearray)):
        return validation_error("body", "must be JSON (Content-Type: application/json)")
    return validation_error("body", "must be a JSON object")


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    fields: dict[str, str] = {}
    for err in exc.errors():
        whole_body = _body_error(err)
        if whole_body is not None:
            return whole_body.response()
        msg = str(err.get("msg", "invalid"))
        # pydantic prefixes custom ValueError messages with "Value error, "
        msg = msg.removeprefix("Value error, ")
        fields.setdefault(_field_path(tuple(err.get("loc", ()))), msg)
    first = next(iter(fields.items()), ("body", "invalid"))
    return BadRequest(f"Invalid {first[0]}: {first[1]}", data=fields).response()


def _database_unavailable(exc: Exception) -> bool:
    """Whether a database error means "unreachable or saturated" (503) rather than a bug (500).

    SQLAlchemy's pool timeout; a driver error on connecting (no statement: refused, too many clients, a
    database not accepting connections) or one that invalidated the connection; and the DB-API classes for
    the database's operation rather than the statement (``OperationalError``: SQLite "database is locked",
    PostgreSQL shutting down; ``InterfaceError``: a connection closed under the driver). PEP 249, "Exceptions".
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return (exc.statement is None or exc.connection_invalidated
                or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)))
    return False


def install(app: FastAPI) -> None:
    """Register handlers so every error leaves in the contract's body; nothing becomes a bare 500."""

    @app.exception_handler(HerewithError)
    async def _herewith(_: Request, exc: HerewithError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
        # The client closed the connection while its body was being read (an upload cancelled, a tab
        # closed): nobody is left to answer, and it is not the server's fault. One line at debug level.
        log.debug("client_disconnected", method=request.method, path=request.url.path)
        return Response(status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return NotFound().response()
        if exc.status_code == 405:
            return HerewithError("Method not allowed", status=405).response()
        return HerewithError(str(exc.detail), status=exc.status_code, headers=getattr(exc, "headers", None)).response()

    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(sa_exc.DBAPIError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not _database_unavailable(exc):
            return await _unexpected(request, exc)
        # The database can't be reached or is saturated (no pooled connection within the pool timeout, the
        # server refusing or dropping connections, SQLite still locked after its busy timeout and the
        # transaction retries of db.transactions): nothing was acknowledged, so the honest answer is "try
        # again shortly", not a 500.
        log.warning("database_unavailable", method=request.method, path=request.url.path,
                    error=type(getattr(exc, "orig", None) or exc).__name__, detail=str(exc).splitlines()[0][:200])
        return HerewithError(DATABASE_UNAVAILABLE, status=503, headers={"Retry-After": "1"}).response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return HerewithError().response()


# ---- the OpenAPI document ---------------------------------------------------------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "Every error's body (docs/api.md, \"Errors\").",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, e.g. \"Invalid endDate: must not be in the past\"."},
        "data": {"type": "object", "description": "Details when there are some: for a 400, each offending field "
                                                  "and its problem; for a 429, msLeft; for a 413, maxBytes."},
    },
}


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


STATUS_DESCRIPTIONS = {
    400: "Invalid body, query parameter or cursor, or malformed JSON; data names each offending field.",
    401: UNAUTHORIZED + " (no key, an unknown key or a revoked key).",
    404: NOT_FOUND + " (an unknown id, or another organization's).",
    409: "The request conflicts with the current state of the resource.",
    413: "The request body is larger than HEREWITH_MAX_BODY_BYTES (data.maxBytes).",
    429: "The organization's rate limit is reached; data.msLeft milliseconds until the call fits.",
    503: "The database can't be reached or is saturated, or the shared rate limiter (Redis) can't be reached and "
         "HEREWITH_RATELIMIT_FAIL_OPEN is false; retry after Retry-After seconds.",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def error_response(description: str) -> dict[str, Any]:
    """One entry of a route's ``responses=``: an error status with this description and the contract's body.

    Usage: ``@router.post("", responses={409: error_response("No free room name")})``. The statuses every
    operation shares need no entry (:func:`document_errors` adds them).
    """
    return {"description": description, "content": _error_content()}


def _statuses(path: str, method: str) -> set[int]:
    """What every ``/v1`` operation can answer: 400 (a bad query or body, NUL anywhere:
    :class:`herewith.kit.asgi.TextGuard`), 401, 429 and 503 (the Bearer dependency and the rate limiter),
    404 with a path parameter, 413 with a body (:class:`herewith.kit.asgi.BodySizeLimit`)."""
    statuses = {400, 401, 429, 503}
    if "{" in path:
        statuses.add(404)
    if method in ("post", "put", "patch"):
        statuses.add(413)
    return statuses


def _document(schema: dict[str, Any], prefix: str) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {})["BearerAuth"] = {"type": "http", "scheme": "bearer"}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation error: answered as a 400 here (install)
            for status in _statuses(path, method):
                responses.setdefault(str(status), {"description": STATUS_DESCRIPTIONS[status]})
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["content"] = _error_content()
                    if not response.get("description"):
                        response["description"] = STATUS_DESCRIPTIONS.get(int(code), "Error")
            responses["429"]["headers"] = {"Retry-After": {
                "description": "Seconds until the call fits in the budget.", "schema": {"type": "integer"}}}
            operation["responses"] = dict(sorted(responses.items()))
            operation["security"] = [{"BearerAuth": []}]
    schemas = components["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):  # in that order: the first refers to the second
        definition = schemas.pop(name, None)
        if definition is not None and f'"#/components/schemas/{name}"' in json.dumps(schema):
            schemas[name] = definition  # still used somewhere: keep it


def document_errors(app: FastAPI, prefix: str = "/v1/") -> None:
    """Make ``app``'s OpenAPI document describe the errors of every operation under ``prefix`` as they are:

    - every operation: 400, 401, 429 (with ``Retry-After``) and 503; with a path parameter also 404; with a
      body (POST, PUT, PATCH) also 413; plus whatever the route declares in ``responses=``
      (:func:`error_response`, e.g. 409 for ``POST /v1/meetings``);
    - each error status with the contract's body, the ``Error`` schema (:data:`ERROR_SCHEMA`);
    - no 422 (FastAPI documents one for every route with parameters; :func:`install` answers 400 instead),
      and FastAPI's ``HTTPValidationError``/``ValidationError`` schemas gone with it;
    - Bearer authentication (``BearerAuth``, as the vendor's document names it) on each of them.

    Wraps ``app.openapi`` (call it after any other wrapper, e.g. the theming body schemas); the document is
    built once, as FastAPI caches it.
    """
    build: Callable[[], dict[str, Any]] = app.openapi
    documented: set[int] = set()

    def openapi() -> dict[str, Any]:
        schema = build()
        if id(schema) not in documented:
            _document(schema, prefix)
            documented.add(id(schema))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
