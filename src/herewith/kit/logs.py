"""Logging: structlog events one line each (key=value, to stderr), and no secret in any log line.

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

    configure_logging("info")          # once per process; create_app does it
    redact("GET /r?roomKey=abc&x=1")   # 'GET /r?roomKey=[redacted]&x=1'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import structlog

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


def configure_logging(level: str = "info") -> None:
    """structlog: ISO UTC timestamp, level, event, then key=value pairs, secrets redacted, at ``level`` and
    above; and :func:`install_log_redaction` on uvicorn's loggers."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=True,
    )
    install_log_redaction()
