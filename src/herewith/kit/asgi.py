"""ASGI middleware that starlette does not ship, answering in the contract's error body:

- :class:`BodySizeLimit`: a request-body size cap (413);
- :class:`TextGuard`: no NUL (U+0000) in the path or query, no NUL or unpaired surrogate in a JSON body
  (404 / 400 naming the parameter or field; :mod:`herewith.kit.text`).

Written by hand because Starlette has neither and the contract needs its own error body.
"""

from __future__ import annotations

import json
from email.message import Message as MimeHeader
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herewith.errors import NotFound, PayloadTooLarge, validation_error
from herewith.kit.text import NUL_PROBLEM, find_bad_text, may_hold_bad_text, printable_name


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the endpoint runs.

    A declared ``Content-Length`` over the cap is refused at once; a chunked body is buffered up to the
    cap and refused as soon as it passes it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await PayloadTooLarge(data={"maxBytes": self.max_bytes})(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await PayloadTooLarge(data={"maxBytes": self.max_bytes})(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


CLOSE_POLICY_VIOLATION = 1008
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI reads a body with this ``Content-Type`` as JSON: none at all (the routes that take a
    body without one, :mod:`herewith.meetings.endpoints`), ``application/json`` or ``application/*+json``."""
    if not content_type:
        return True
    if content_type == b"application/json" or content_type.startswith(b"application/json;"):
        return True  # the usual one, without parsing the header (a few microseconds on every POST)
    header = MimeHeader()
    header["content-type"] = content_type.decode("latin-1")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _bad_query_parameter(query_string: bytes) -> str | None:
    """The name of the first query parameter whose value holds a NUL (``query`` when a name does), or None.
    Parsed as Starlette parses it (``parse_qsl`` of the latin-1 text, blank values kept)."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name:
            return "query"
        if "\x00" in value:
            return printable_name(name)
    return None


class TextGuard:
    """Refuse, before routing, text that no database can store (:mod:`herewith.kit.text`): PostgreSQL refuses
    NUL in text, so such a request would otherwise end in a 500 wherever it reached a query.

    - NUL in the path (``/v1/meetings/%00``, ``/%00``): 404 ``{"error": "The requested resource doesn't
      exist"}``; no id or room name can hold one, so it names nothing that exists (docs/api.md, "Errors").
    - NUL in a query parameter: 400 naming it, ``{"error": "Invalid roomName: must not contain NUL (U+0000)",
      "data": {"roomName": "must not contain NUL (U+0000)"}}``; ``query`` when a parameter's name holds it.
    - A JSON body (``POST``/``PUT``/``PATCH``/``DELETE`` with a JSON ``Content-Type`` or none) with a NUL or an
      unpaired surrogate in any string, object keys included: 400 naming the field as validation errors do
      (``recording.destination.bucket``, ``events.0``). Such a body is read whole first (the body-size cap
      runs outside this middleware); a body that is not valid JSON goes on, for the endpoint's own 400.
    - A WebSocket handshake with NUL in the path or query: closed before it is accepted (HTTP 403).

    Everything else passes untouched; a JSON body is replayed to the app as one message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        bad_path = "\x00" in scope["path"]
        bad_query = None if bad_path else _bad_query_parameter(scope.get("query_string", b""))
        if kind == "websocket":
            if bad_path or bad_query:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})
                return
            await self.app(scope, receive, send)
            return
        if bad_path:
            await NotFound()(scope, receive, send)
            return
        if bad_query:
            await validation_error(bad_query, NUL_PROBLEM)(scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope.get("headers") or ():
            if name == b"content-type":
                content_type = value
                break
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        await self._json_body(scope, receive, send)

    async def _json_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        ended: Message | None = None  # an http.disconnect that came before the end of the body
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ended = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if ended is None and may_hold_bad_text(body):
            try:
                decoded = json.loads(body)
            except (ValueError, RecursionError):
                decoded = None  # not JSON: the endpoint answers "Malformed JSON body"
            bad = find_bad_text(decoded) if decoded is not None else None
            if bad is not None:
                await validation_error(*bad)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": ended is not None}
            if ended is not None:
                return ended
            return await receive()

        await self.app(scope, replay, send)
