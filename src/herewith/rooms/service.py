"""Rooms as people enter them: look a room up by name, tell live from gone, and hand out ICE servers.

Rules come from CONTRACT.md "Meetings" (lifecycle: a room works from creation; one hour after ``endDate`` it
is deactivated and joins stop; DELETE ends it at once) and DESIGN.md (ICE servers from settings, none by
default; TURN credentials in the REST-API scheme coturn understands).

Usage::

    room = await lookup_room(session, "/team-1b4e...", now)    # RoomRef | raises RoomNotFound / RoomGone
    ref_is_live(room, later)                                      # still live at ``later``?
    servers = ice_servers(settings, now)                          # [{"urls": [...], ...}]
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.kit.crypto import hmac_digest
from herewith.kit.time import add_clamped
from herewith.meetings import repository as meetings_repository
from herewith.rooms.policy import DEFAULT_POLICY, RoomPolicy

DEACTIVATE_AFTER_END = timedelta(hours=1)
ROOM_NAME_MAX = 100


class RoomNotFound(Exception):
    """No meeting has this room name."""


class RoomGone(Exception):
    """The meeting was deleted or deactivated (410). ``reason``: ``deleted`` | ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RoomNotOpen(Exception):
    """The room's policy does not let anyone in yet (``not_before``); ``message`` says from when."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RoomRef:
    """What signaling and the room page need of a meeting (read once per join)."""

    meeting_id: str
    organization_id: str
    room_name: str  # with the leading slash
    room_mode: str  # normal | group
    is_locked: bool
    template_type: str | None
    end_date: datetime
    policy: RoomPolicy = DEFAULT_POLICY  # herewith.rooms.policy: rules beyond the meeting's


def check_open(policy: RoomPolicy, now: datetime) -> None:
    """Apply a room policy's join window at ``now``: raises :class:`RoomNotOpen` before ``not_before``
    and :class:`RoomGone` (``expired``) from ``expires_at`` on (CONTRACT.md, "Another vendor's room options":
    users cannot join before notBeforeUnixSec nor after expireUnixSec)."""
    refusal = policy.join_refusal(now)
    if refusal is None:
        return
    if refusal[0] == "not_yet":
        raise RoomNotOpen(refusal[1])
    raise RoomGone("expired")


def normalize_room_name(name: str) -> str:
    """``abc`` or ``/abc`` -> ``/abc``. Raises RoomNotFound for names no meeting can have."""
    name = "/" + name.lstrip("/")
    if len(name) > ROOM_NAME_MAX or len(name) < 2 or "/" in name[1:]:
        raise RoomNotFound(name)
    return name


class MeetingLifecycle(Protocol):
    """What liveness reads of a meeting (the ORM ``Meeting`` has it)."""

    end_date: datetime
    deleted_at: datetime | None
    deactivated_at: datetime | None


def room_state(meeting: MeetingLifecycle, now: datetime,
               deactivate_after: timedelta = DEACTIVATE_AFTER_END) -> Literal["live", "deleted", "expired"]:
    """The one rule of "is this room live?" (CONTRACT.md, "Meetings", lifecycle): ``deleted`` once
    ``deleted_at`` is set; ``expired`` once ``deactivated_at`` is set or ``now`` is later than ``endDate`` +
    ``deactivate_after`` (1 hour), even before the sweeper marked it; ``live`` otherwise."""
    if meeting.deleted_at is not None:
        return "deleted"
    if meeting.deactivated_at is not None or now > add_clamped(meeting.end_date, deactivate_after):
        return "expired"
    return "live"


@dataclass(slots=True)
class _RefLifecycle:
    """A room reference read as a :class:`MeetingLifecycle`: it was live when it was looked up, and a
    deletion or deactivation after that reaches the live room as a meeting event, not through the ref."""

    end_date: datetime
    deleted_at: datetime | None = None
    deactivated_at: datetime | None = None


class DatedRoom(Protocol):
    """What :func:`ref_is_live` reads of a room reference (:class:`RoomRef` has it)."""

    @property
    def end_date(self) -> datetime: ...


def ref_is_live(ref: DatedRoom, now: datetime, deactivate_after: timedelta = DEACTIVATE_AFTER_END) -> bool:
    """True while a room looked up earlier (``ref``, live then) is still live at ``now`` (aware UTC): the
    rule of :func:`room_state` applied to its ``end_date``, i.e. ``now`` is not later than ``endDate`` +
    ``deactivate_after`` (1 hour; CONTRACT.md "Meetings", lifecycle). Deletion is not seen here: whoever
    holds the ref learns of it from the meeting event (signaling ends the live room)."""
    return room_state(_RefLifecycle(ref.end_date), now, deactivate_after) == "live"


async def lookup_room(session: AsyncSession, room_name: str, now: datetime,
                      deactivate_after: timedelta = DEACTIVATE_AFTER_END) -> RoomRef:
    """The live room named ``room_name`` (with or without the leading slash) at time ``now`` (aware UTC).

    Raises :class:`RoomNotFound` (404) or :class:`RoomGone` (410: ``deleted_at`` or ``deactivated_at`` set, or
    ``now`` later than ``endDate`` + ``deactivate_after`` (1 hour) even before the sweeper marked it). The
    room policy's join window is not applied here (see :func:`check_open`).
    """
    name = normalize_room_name(room_name)
    meeting = await meetings_repository.get_by_room_name(session, name)
    if meeting is None:
        raise RoomNotFound(name)
    state = room_state(meeting, now, deactivate_after)
    if state != "live":
        raise RoomGone(state)
    return RoomRef(
        meeting_id=meeting.id,
        organization_id=meeting.organization_id,
        room_name=meeting.room_name,
        room_mode=meeting.room_mode or "normal",
        is_locked=bool(meeting.is_locked) or meeting.template_type == "viewerMode",
        template_type=meeting.template_type,
        end_date=meeting.end_date,
        policy=RoomPolicy.from_json(meeting.room_policy),
    )


async def meeting_is_live(session: AsyncSession, meeting_id: str) -> bool:
    """True when the meeting exists and is neither deleted nor deactivated (its room may hold people)."""
    meeting = await meetings_repository.get_by_id(session, meeting_id)
    return meeting is not None and meeting.deleted_at is None and meeting.deactivated_at is None


def turn_credentials(secret: str, ttl_seconds: int, now: datetime, user: str | None = None) -> tuple[str, str]:
    """Time-limited TURN credentials in the TURN REST API scheme (coturn ``use-auth-secret``).

    username = ``"<expiry epoch seconds>:<user>"``; password = ``base64(HMAC-SHA1(secret, username))``.
    coturn accepts them until the expiry with ``static-auth-secret=<secret>``.
    """
    expiry = int(now.timestamp()) + int(ttl_seconds)
    username = f"{expiry}:{user or secrets.token_hex(8)}"
    return username, base64.b64encode(hmac_digest(secret, username, "sha1")).decode()


def ice_servers(settings: Settings, now: datetime, user: str | None = None) -> list[dict[str, Any]]:
    """``RTCIceServer`` dicts from settings: STUN URLs, then TURN URLs with fresh credentials.

    None by default (host candidates only). TURN URLs without ``turn_secret`` are listed without
    credentials (for TURN servers that need none).
    """
    servers: list[dict[str, Any]] = []
    stun = list(settings.stun_urls)
    turn = list(settings.turn_urls)
    if stun:
        servers.append({"urls": stun})
    if turn:
        secret = settings.turn_secret
        if secret:
            username, credential = turn_credentials(secret, settings.turn_ttl_seconds, now, user)
            servers.append({"urls": turn, "username": username, "credential": credential})
        else:
            servers.append({"urls": turn})
    return servers
