"""Helpers the resources share: path segments, dates in, JSON bodies without the unset keys."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote


def segment(value: str) -> str:
    """``value`` as one URL path segment (an id from the API is safe already; this keeps odd input from
    reaching another route)."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty string")
    return quote(value, safe="")


def room_segment(room_name: str) -> str:
    """A room name for ``/rooms/{roomName}/...``: with or without its leading slash."""
    return segment(room_name.lstrip("/"))


def iso(value: datetime | str | None) -> str | None:
    """A date for the API: a string as given, a datetime as ISO-8601 (naive datetimes are refused: which
    zone they mean is unknown)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body of the given fields without the ones left at None."""
    return {k: v for k, v in fields.items() if v is not None}
