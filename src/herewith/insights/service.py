"""Rules of the insights calls (CONTRACT.md "Insights"; ``whereby-openapi.json`` ``/insights/*``).

- Minutes: per participant connection, ``ceil((leftAt or now) - joinedAt)`` in minutes ("rounded up per
  individual connection"), summed; role ``recorder`` counts as recorder minutes, ``streamer`` as streamer
  minutes, every other role as participant minutes.
- Unique participants: distinct ``deviceId`` (the connection's ``participantId`` when the page sent none).
- Lists: ``sortBy`` ``field:asc|desc`` (asc when no direction), ties broken by creation order; ``cursor``
  is a keyset cursor (the sort key of the last row of the page); ``limit`` 1..100, default 10.
- Every query is scoped to the caller's organization: another organization's rooms, sessions and
  participants are never visible (an unknown room in ``/insights/room-sessions`` is a 404).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from herewith.errors import NotFound, validation_error
from herewith.insights import repository
from herewith.insights.schemas import (
    ParticipantDetail,
    ParticipantInsight,
    RoomInsight,
    RoomSessionInsight,
)
from herewith.kit.pagination import decode_cursor, page_of
from herewith.kit.time import format_utc, parse_datetime
from herewith.sessions.models import RoomParticipant, RoomSession

DEFAULT_LIMIT = 10
T = TypeVar("T")

ROOM_SORT_FIELDS = (
    "roomName", "createdAt", "endAt", "firstSessionStartedAt", "lastSessionStartedAt", "totalParticipantMinutes",
    "totalRecorderMinutes", "totalStreamerMinutes", "totalUniqueParticipants", "totalUniqueRecorders",
    "totalUniqueStreamers", "totalSessions",
)
SESSION_SORT_FIELDS = (
    "startedAt", "endedAt", "createdAt", "endAt", "totalParticipantMinutes", "totalRecorderMinutes",
    "totalStreamerMinutes", "totalUniqueParticipants", "totalUniqueRecorders", "totalUniqueStreamers",
)
PARTICIPANT_SORT_FIELDS = ("joinedAt", "leftAt")


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool

    @property
    def text(self) -> str:
        return f"{self.field}:{'desc' if self.descending else 'asc'}"


def parse_sort(raw: str | None, allowed: Sequence[str], default: str) -> Sort:
    """``field:asc|desc`` (or ``field``) among ``allowed``; a 400 naming ``sortBy`` otherwise."""
    raw = raw if raw not in (None, "") else default
    field, _, direction = raw.partition(":")
    direction = direction or "asc"
    if field not in allowed or direction not in ("asc", "desc"):
        raise validation_error("sortBy", f"must be field:asc or field:desc with field one of {', '.join(allowed)}")
    return Sort(field, direction == "desc")


# The dates a filter may name. Nothing is created before 1970, and a year of room above the bound keeps the
# arithmetic on a filter (createdAt[to] + 1 ms in the repository) inside Python's calendar.
DATE_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
DATE_MAX = datetime(9999, 1, 1, tzinfo=timezone.utc)


def parse_date(name: str, raw: str | None) -> datetime | None:
    """A date filter (``createdAt[from]``, ``createdAt[to]``): an ISO-8601 date-time, any offset, between
    :data:`DATE_MIN` and :data:`DATE_MAX` in UTC; None when absent or empty; a 400 naming ``name`` otherwise."""
    if raw is None or raw == "":
        return None
    try:
        value = parse_datetime(raw)
    except ValueError as exc:
        raise validation_error(name, str(exc)) from None
    except OverflowError:  # the offset moved it out of Python's calendar: far outside the range anyway
        value = None
    if value is None or not DATE_MIN <= value < DATE_MAX:
        raise validation_error(name, f"must be between {format_utc(DATE_MIN)} and {format_utc(DATE_MAX)}")
    return value


def normalise_room_name(raw: str) -> str:
    return raw if raw.startswith("/") else "/" + raw


def _sort_key(value: Any, tiebreak: int) -> list[Any]:
    # Nulls sort after every value ascending (before them descending); JSON-serialisable for the cursor.
    return [value is None, value, tiebreak]


def paginate(items: Iterable[T], key: Callable[[T], list[Any]], sort: Sort, cursor: str | None,
             limit: int) -> tuple[list[T], str | None]:
    """Sort ``items`` by ``key`` and return the page after ``cursor`` plus the next cursor (None at the end)."""
    after: list[Any] | None = None
    if cursor:
        decoded = decode_cursor(cursor)
        if not (isinstance(decoded, dict) and decoded.get("s") == sort.text and isinstance(decoded.get("k"), list)
                and len(decoded["k"]) == 3):
            raise validation_error("cursor", "not a cursor returned by this API for this sortBy")
        after = decoded["k"]
    keyed = sorted(((key(item), item) for item in items), key=lambda pair: _comparable(pair[0]), reverse=sort.descending)
    if after is not None:
        edge = _comparable(after)
        keyed = [pair for pair in keyed if (_comparable(pair[0]) < edge if sort.descending else _comparable(pair[0]) > edge)]
    page, next_cursor = page_of(keyed, limit, key=lambda pair: {"s": sort.text, "k": pair[0]})
    return [item for _, item in page], next_cursor


def _comparable(key: list[Any]) -> tuple[Any, ...]:
    is_null, value, tiebreak = key
    return (bool(is_null), value if value is not None else 0, tiebreak)


@dataclass
class Totals:
    participant_minutes: int = 0
    recorder_minutes: int = 0
    streamer_minutes: int = 0
    participants: set[str] | None = None
    recorders: set[str] | None = None
    streamers: set[str] | None = None

    def __post_init__(self) -> None:
        self.participants, self.recorders, self.streamers = set(), set(), set()

    def add(self, row: RoomParticipant, now: datetime) -> None:
        minutes = connection_minutes(row, now)
        who = row.device_id or row.participant_id
        if row.role_name == "recorder":
            self.recorder_minutes += minutes
            self.recorders.add(who)  # type: ignore[union-attr]
        elif row.role_name == "streamer":
            self.streamer_minutes += minutes
            self.streamers.add(who)  # type: ignore[union-attr]
        elif row.role_name == "captioner":
            pass  # the server's live captioner is no person and the contract has no minutes for it
        else:
            self.participant_minutes += minutes
            self.participants.add(who)  # type: ignore[union-attr]

    def fields(self) -> dict[str, int]:
        return {
            "totalParticipantMinutes": self.participant_minutes,
            "totalRecorderMinutes": self.recorder_minutes,
            "totalStreamerMinutes": self.streamer_minutes,
            "totalUniqueParticipants": len(self.participants or ()),
            "totalUniqueRecorders": len(self.recorders or ()),
            "totalUniqueStreamers": len(self.streamers or ()),
        }


def connection_minutes(row: RoomParticipant, now: datetime) -> int:
    """Whole minutes of one connection, rounded up; an open connection counts until ``now``."""
    seconds = ((row.left_at or now) - row.joined_at).total_seconds()
    return max(0, math.ceil(seconds / 60 - 1e-9))


async def room_insights(
    session: AsyncSession, organization_id: str, query: dict[str, str | None], cursor: str | None, limit: int,
    now: datetime,
) -> tuple[list[RoomInsight], str | None]:
    """``GET /insights/rooms``: filters ``roomName[exact|startsWith|contains]``, ``createdAt[from|to]``."""
    sort = parse_sort(query.get("sortBy"), ROOM_SORT_FIELDS, "createdAt:asc")
    exact, starts = query.get("roomName[exact]"), query.get("roomName[startsWith]")
    meetings = await repository.rooms_with_sessions(
        session, organization_id,
        exact=normalise_room_name(exact) if exact else None,
        starts_with=normalise_room_name(starts) if starts else None,
        contains=query.get("roomName[contains]") or None,
        created_from=parse_date("createdAt[from]", query.get("createdAt[from]")),
        created_to=parse_date("createdAt[to]", query.get("createdAt[to]")),
    )
    room_sessions = await repository.sessions_of(session, organization_id, [m.id for m in meetings])
    rows = await repository.participant_rows_of_sessions(session, organization_id, [s.id for s in room_sessions])
    by_meeting: dict[str, list[RoomSession]] = {}
    for s in room_sessions:
        by_meeting.setdefault(s.meeting_id, []).append(s)
    totals: dict[str, Totals] = {m.id: Totals() for m in meetings}
    for row in rows:
        totals[row.meeting_id].add(row, now)
    results: list[tuple[int, RoomInsight]] = []
    for m in meetings:
        starts_at = sorted(s.started_at for s in by_meeting.get(m.id, []))
        results.append((m.seq, RoomInsight(
            roomName=m.room_name,
            createdAt=format_utc(m.start_date),
            endAt=format_utc(m.end_date),
            firstSessionStartedAt=format_utc(starts_at[0]) if starts_at else None,
            lastSessionStartedAt=format_utc(starts_at[-1]) if starts_at else None,
            totalSessions=len(starts_at),
            **totals[m.id].fields(),
        )))
    page, next_cursor = paginate(results, lambda pair: _sort_key(getattr(pair[1], sort.field), pair[0]), sort, cursor, limit)
    return [item for _, item in page], next_cursor


async def room_session_insights(
    session: AsyncSession, organization_id: str, query: dict[str, str | None], cursor: str | None, limit: int,
    now: datetime,
) -> tuple[list[RoomSessionInsight], str | None]:
    """``GET /insights/room-sessions?roomName=`` (required; optional ``roomSessionId``)."""
    raw_name = query.get("roomName")
    if not raw_name:
        raise validation_error("roomName", "is required")
    sort = parse_sort(query.get("sortBy"), SESSION_SORT_FIELDS, "startedAt:asc")
    meeting = await repository.room_by_name(session, organization_id, normalise_room_name(raw_name))
    if meeting is None:
        raise NotFound()
    room_sessions = list(await repository.sessions_of(session, organization_id, [meeting.id]))
    wanted = query.get("roomSessionId")
    if wanted:
        room_sessions = [s for s in room_sessions if s.id == wanted]
    rows = await repository.participant_rows_of_sessions(session, organization_id, [s.id for s in room_sessions])
    totals: dict[str, Totals] = {s.id: Totals() for s in room_sessions}
    for row in rows:
        totals[row.room_session_id].add(row, now)  # type: ignore[index]
    results = []
    for s in room_sessions:
        started, ended = format_utc(s.started_at), format_utc(s.ended_at) if s.ended_at else None
        results.append((s.seq, RoomSessionInsight(
            roomSessionId=s.id, roomName=s.room_name, createdAt=started, endAt=ended, startedAt=started,
            endedAt=ended, **totals[s.id].fields(),
        )))
    page, next_cursor = paginate(results, lambda pair: _sort_key(getattr(pair[1], sort.field), pair[0]), sort, cursor, limit)
    return [item for _, item in page], next_cursor


def participant_out(row: RoomParticipant) -> ParticipantInsight:
    return ParticipantInsight(
        roomSessionId=row.room_session_id or "",
        participantId=row.participant_id,
        deviceId=row.device_id,
        userId=None,
        roleName=row.role_name,
        displayName=row.display_name,
        joinedAt=format_utc(row.joined_at),
        leftAt=format_utc(row.left_at) if row.left_at else None,
        externalId=row.external_id,
    )


async def participant_insights(
    session: AsyncSession, organization_id: str, query: dict[str, str | None], cursor: str | None, limit: int,
) -> tuple[list[ParticipantInsight], str | None]:
    """``GET /insights/participants?roomSessionId=`` or ``externalId=`` (one is required)."""
    room_session_id, external_id = query.get("roomSessionId") or None, query.get("externalId") or None
    if room_session_id is None and external_id is None:
        raise validation_error("roomSessionId", "roomSessionId or externalId is required")
    sort = parse_sort(query.get("sortBy"), PARTICIPANT_SORT_FIELDS, "joinedAt:asc")
    rows = await repository.participants(session, organization_id, room_session_id, external_id)
    items = [(row.seq, participant_out(row)) for row in rows]
    page, next_cursor = paginate(items, lambda pair: _sort_key(getattr(pair[1], sort.field), pair[0]), sort, cursor, limit)
    return [item for _, item in page], next_cursor


async def participant_detail(
    session: AsyncSession, organization_id: str, room_session_id: str | None, participant_id: str | None,
) -> list[ParticipantDetail]:
    """``GET /insights/participant``: each connection of the participant in the session with its real samples."""
    if not room_session_id:
        raise validation_error("roomSessionId", "is required")
    if not participant_id:
        raise validation_error("participantId", "is required")
    rows = await repository.participant_connections(session, organization_id, room_session_id, participant_id)
    if not rows:
        raise NotFound()
    out = []
    for row in rows:
        samples = await repository.samples_of(session, row.seq)
        series: dict[str, list[dict[str, Any]]] = {
            "packetLossSend": [], "packetLossRecv": [], "bitrateSend": [], "bitrateRecv": []
        }
        for sample in samples:
            stamp = format_utc(sample.at)
            for name, value in (("packetLossSend", sample.packet_loss_send), ("packetLossRecv", sample.packet_loss_recv),
                                ("bitrateSend", sample.bitrate_send), ("bitrateRecv", sample.bitrate_recv)):
                if value is not None:
                    series[name].append({"timestamp": stamp, "value": value})
        rates = [s.sample_rate_ms for s in samples]
        events = [{"type": "joined", "timestamp": format_utc(row.joined_at)}]
        if row.left_at is not None:
            events.append({"type": "left", "timestamp": format_utc(row.left_at)})
        out.append(ParticipantDetail(
            displayName=row.display_name,
            userRole=row.role_name,
            userAgent=row.user_agent,
            timeStamp=format_utc(row.joined_at),
            sampleRateMs=max(set(rates), key=rates.count) if rates else 0,
            samples=series,
            events=events,
        ))
    return out
