"""Logging: structlog events one line each (key=value, or JSON with ``HEREWITH_LOG_FORMAT=json``), a request id
on every line of a request (:class:`RequestId`), and no secret in any log line.

API keys are never logged. Bearer tokens that travel in URLs are redacted wherever a URL can reach a log:
the ``roomKey`` of a host's room URL (valid until ``endDate`` + 1 h), and any other query parameter whose name
is, or ends with, ``key``, ``token``, ``secret`` or ``password`` (case-insensitive, percent-encoded names
too: ``roomKey``, ``token``, ``key``, ``secret``, ``access_token``, ``apiKey``, ...). The value becomes
``[redacted]``; the name and the rest of the URL stay, so a line still says which room was opened:

    127.0.0.1:50412 - "GET /room-1a2b?roomKey=[redacted]&displayName=Ann HTTP/1.1" 200

- structlog events: :func:`redact_event` (a processor) redacts every string value (the event, a URL, a
  formatted traceback) and replaces the whole value of a field named like a token (``room_key=...``).
- uvicorn's access and error logs (``uvicorn.access``: one line per request with its path and query;
  ``uvicorn.error``: WebSocket handshakes, tracebacks): :class:`RedactSecrets`, a ``logging.Filter`` on those
  loggers. uvicorn re-applies its logging configuration when it starts, after :func:`configure_logging`
  ran in ``create_app``; that replaces handlers and levels but keeps a logger's filters.

Usage::

    configure_logging("info", "json")  # once per process; create_app does it
    app.add_middleware(RequestId)      # X-Request-Id in and out, request_id=... on every line
    redact("GET /r?roomKey=abc&x=1")   # 'GET /r?roomKey=[redacted]&x=1'
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED = "[redacted]"

#: Parameter names (lowercased, ``-``/``_``/``.`` removed) that are, or end with, one of these carry secrets.
SECRET_NAME_ENDINGS = ("key", "token", "secret", "password")

# A query parameter: after ? or & (or ; as some servers split), a name, =, a value up to the next separator,
# quote or whitespace (log lines quote the request line).
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#?\s\"'<>]{1,100})=(?P<value>[^&;#\s\"'<>]*)")

#: The loggers uvicorn writes request lines and tracebacks to.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or log field called ``name`` holds a secret (see :data:`SECRET_NAME_ENDINGS`).

    ``roomKey``, ``room_key``, ``token``, ``access_token``, ``apiKey``, ``client-secret``: True;
    ``roomName``, ``displayName``, ``keyboard``: False.
    """
    plain = re.sub(r"[-_.\s]", "", unquote_plus(name)).lower()
    return plain.endswith(SECRET_NAME_ENDINGS)


def _redact_param(match: re.Match[str]) -> str:
    if match["value"] and is_secret_name(match["name"]):
        return f"{match['lead']}{match['name']}={REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """``text`` with the value of every secret-named query parameter replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    return _PARAM.sub(_redact_param, text)


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth >= 3:
        return value
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and is_secret_name(k) else _redact_value(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v, depth + 1) for v in value)
    return value


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact secrets in every value of ``event_dict`` (strings, and dicts and lists
    of them three levels deep); a field whose name is a secret's (``room_key``) becomes ``[redacted]``."""
    for key, value in list(event_dict.items()):
        if key != "event" and is_secret_name(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(value)
    return event_dict


class RedactSecrets(logging.Filter):
    """A ``logging.Filter`` that redacts secrets in a record's message and arguments (and drops nothing).

    uvicorn's access line is ``'%s - "%s %s HTTP/%s" %d'`` with the path and query as an argument; the
    arguments keep their types and count, so formatters that unpack them (uvicorn's) still work.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction(logger_names: tuple[str, ...] = UVICORN_LOGGERS) -> None:
    """Put one :class:`RedactSecrets` on each named stdlib logger (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def _processors(fmt: str) -> list[Any]:
    """The processors every structlog event goes through, the renderer last (key=value or JSON)."""
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]))
    return [
        structlog.contextvars.merge_contextvars,  # request_id (RequestId) and anything else bound
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
        renderer,
    ]


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """structlog: ISO UTC timestamp, level, event, then the event's fields (and the ``request_id`` of the
    request being served), secrets redacted, at ``level`` and above, as key=value text (``fmt="text"``) or one
    JSON object a line (``"json"``); and :func:`install_log_redaction` on uvicorn's loggers."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=_processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=True,
    )
    install_log_redaction()


def _access_fields(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Foreign (stdlib) records: the logger's name; for uvicorn's access line also ``client``, ``method``,
    ``path`` and ``status`` from its arguments (``'%s - "%s %s HTTP/%s" %d'``, redacted by RedactSecrets)."""
    record = event_dict.get("_record")
    args = event_dict.pop("positional_args", None)  # ProcessorFormatter(pass_foreign_args=True)
    if record is None:
        return event_dict
    event_dict["logger"] = record.name
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        client, method, path, _, status = args
        event_dict.update(client=client, method=method, path=path, status=status)
    return event_dict


def uvicorn_log_config(level: str = "info", fmt: str = "text") -> dict[str, Any] | None:
    """The ``log_config`` for ``uvicorn.run``: None (uvicorn's own text format) unless ``fmt == "json"``;
    then uvicorn's error and access loggers write JSON lines to stderr through structlog's
    ``ProcessorFormatter`` with the same fields as Herewith's own events (``request_id`` included: uvicorn
    writes the access line while the request's context is current)."""
    if fmt != "json":
        return None
    lvl = level.upper()
    chain = [*(_processors(fmt)[:-1]), _access_fields]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": structlog.stdlib.ProcessorFormatter, "foreign_pre_chain": chain, "pass_foreign_args": True,
                                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                                               structlog.processors.JSONRenderer()]}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": ["json"], "level": lvl, "propagate": False},
        },
    }


#: A request id as a client or proxy may send it: 1-128 characters of letters, digits and ``-_.:``.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = b"x-request-id"


class RequestId:
    """Pure ASGI middleware: every HTTP request and WebSocket gets a request id, bound to every log line
    written while it is served (``structlog.contextvars``: the ``request_id`` field) and echoed back in the
    ``X-Request-Id`` response header.

    The id is the request's ``X-Request-Id`` header when it is 1-128 characters of ``[A-Za-z0-9._:-]`` (a
    proxy's or client's id, so one id follows a call across services), otherwise a new random one (32 hex
    digits; an unusable header is replaced, never refused). ``scope["state"]["request_id"]`` holds it too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers") or ():
            if name == REQUEST_ID_HEADER:
                text = value.decode("latin-1")
                if _REQUEST_ID.match(text):
                    request_id = text
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(message.get("headers") or []), (REQUEST_ID_HEADER, raw_id)]
            await send(message)

        # bind/reset rather than bound_contextvars(), which first copies every bound variable (a few us more)
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
