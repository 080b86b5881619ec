"""Errors as the contract renders them: ``{"error": "<message>", "data": {...}}`` (CONTRACT.md, "Common rules").

Raise a :class:`HerewithError` subclass anywhere below the endpoints; :func:`install` turns it, and the
framework's own errors (validation, unknown route, wrong method, malformed JSON), into that body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import structlog

log = structlog.get_logger(__name__)

UNAUTHORIZED = "Access token is missing or invalid"
FORBIDDEN = "Not allowed to perform action"
NOT_FOUND = "The requested resource doesn't exist"


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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return HerewithError().response()
