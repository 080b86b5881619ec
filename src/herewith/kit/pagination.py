"""Opaque cursors for keyset pagination (CONTRACT.md, "Lists").

A cursor encodes the sort key of the last row of a page; the next page starts strictly after it,
so rows created while a client pages are neither repeated nor skipped.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from herewith.errors import validation_error

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def encode_cursor(key: Any) -> str:
    """Encode a JSON-serialisable sort key into an opaque URL-safe string."""
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """Decode a cursor made by :func:`encode_cursor`. Raises a 400 naming ``cursor`` when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception:
        raise validation_error("cursor", "not a cursor returned by this API") from None


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT) -> int:
    """``limit`` query value as an int in 1..100; raises a 400 naming ``limit`` otherwise."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error("limit", "must be an integer between 1 and 100") from None
    if not 1 <= value <= MAX_LIMIT:
        raise validation_error("limit", "must be an integer between 1 and 100")
    return value


def decode_seq_cursor(cursor: str | None) -> int | None:
    """The creation sequence number (``seq``) a page of a list in creation order starts after, from a cursor
    made by :func:`page_of` (None: the first page). Raises a 400 naming ``cursor`` for anything else."""
    if not cursor:
        return None
    value = decode_cursor(cursor)
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation_error("cursor", "not a cursor returned by this API")
    return value


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """One page from ``rows`` fetched with ``limit + 1`` (the extra row only tells that more follow), and
    the cursor of the next page: ``key`` of the page's last row, encoded (None at the end).

    Usage::

        rows = await repository.list_after(session, decode_seq_cursor(cursor), limit + 1)
        page, next_cursor = page_of(rows, limit, key=lambda row: row.seq)
    """
    page = list(rows[:limit])
    return page, (encode_cursor(key(page[-1])) if len(rows) > limit and page else None)


def parse_sort_by(raw: str | None, fields: Sequence[str], default: tuple[str, bool]) -> tuple[str, bool]:
    """``sortBy`` of a list (``field`` or ``field:asc|desc``, CONTRACT.md "Lists") -> ``(field, descending)``;
    ``default`` when absent or empty. Raises the contract's 400 naming ``sortBy`` for another field or order."""
    if raw is None or raw == "":
        return default
    name, _, direction = raw.partition(":")
    direction = direction or "asc"
    if name not in fields or direction not in ("asc", "desc"):
        raise validation_error("sortBy", f"must be one of {', '.join(fields)}, optionally with :asc or :desc")
    return name, direction == "desc"


def sorted_page(rows: Sequence[T], limit: int, field: str, descending: bool,
                sort_value: Callable[[T, str], Any]) -> tuple[list[T], str | None]:
    """:func:`page_of` for a list sorted by ``field``: the next cursor is ``[field, descending, key, seq]`` (what
    :func:`decode_sorted_cursor` reads back), ``key`` being ``sort_value(row, field)`` of the page's last row."""
    return page_of(rows, limit, key=lambda row: [field, descending, sort_value(row, field), row.seq])  # type: ignore[attr-defined]


def decode_sorted_cursor(cursor: str, field: str, descending: bool, date_fields: frozenset[str] = frozenset(),
                         text_fields: frozenset[str] = frozenset()) -> tuple[Any, int]:
    """A cursor of a list sorted by ``field`` (``[field, descending, key, seq]``, as the list encoded it) ->
    ``(key, seq)``; the key is a datetime for ``date_fields``, a string for ``text_fields`` and an integer
    otherwise. Raises the contract's 400 when the cursor is not one this list returned for this ``sortBy``."""
    value = decode_cursor(cursor)
    bad = validation_error("cursor", "not a cursor returned by this API for this sortBy")
    if not (isinstance(value, list) and len(value) == 4 and value[0] == field and value[1] == descending
            and isinstance(value[3], int)):
        raise bad
    key = value[2]
    if field in date_fields:
        try:
            key = datetime.fromisoformat(key)
        except (TypeError, ValueError):
            raise bad from None
    elif field in text_fields:
        if not isinstance(key, str):
            raise bad
    elif not isinstance(key, int) or isinstance(key, bool):
        raise bad
    return key, value[3]
