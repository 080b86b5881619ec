"""UTC time: the contract's date format and a clock that tests can move.

Dates out are ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (CONTRACT.md, "Common rules"); dates in accept any offset and
are read as UTC when they carry none.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC = timezone.utc


class Clock:
    """The server's notion of now, in UTC. ``offset`` (seconds) lets tests move time forward.

    Usage::

        clock = Clock()
        clock.now()            # aware datetime, UTC
        clock.advance(3600)    # one hour later, for every reader of this clock
    """

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def format_utc(value: datetime) -> str:
    """``2099-02-18T14:23:00.000Z``: UTC, milliseconds (truncated), ``Z``. Naive values are taken as UTC."""
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # %-formatting of the fields: a third of isoformat() plus the suffix surgery, on the hot responses.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond // 1000)


def parse_datetime(value: object) -> datetime:
    """Parse an ISO-8601 date-time string into an aware UTC datetime.

    Accepts ``Z`` or any ``±HH:MM`` offset; a value without offset is UTC. Raises ``ValueError`` for
    anything else (numbers, dates without time, garbage).
    """
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    text = value.strip()
    if "T" not in text and " " not in text:
        raise ValueError("must be an ISO-8601 date-time, e.g. 2099-02-18T14:23:00.000Z")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time, e.g. 2099-02-18T14:23:00.000Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def add_clamped(value: datetime, delta: timedelta) -> datetime:
    """``value + delta``, or the last representable instant (``datetime.max`` in ``value``'s zone) when the
    sum leaves Python's calendar: a meeting stored with ``endDate`` 9999-12-31 must not make ``endDate`` + 1 h
    raise ``OverflowError`` wherever its room is looked at."""
    try:
        return value + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=value.tzinfo) if delta > timedelta(0) else datetime.min.replace(
            tzinfo=value.tzinfo)
