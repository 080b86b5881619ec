"""Rules of the meetings calls (CONTRACT.md, "Meetings"). No HTTP here; services never commit."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from herewith.auth.models import OrganizationRef
from herewith.auth.room_keys import issue_room_key
from herewith.errors import HerewithError, NotFound, validation_error
from herewith.kit.pagination import decode_cursor, encode_cursor
from herewith.kit.time import format_utc
from herewith.meetings import repository
from herewith.meetings.models import Meeting
from herewith.meetings.schemas import CreateMeetingRequest, MeetingOut

# human-short: six characters from an alphabet without look-alikes (no 0/o, 1/l/i), ~887 million names.
HUMAN_SHORT_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
HUMAN_SHORT_LENGTH = 6
MAX_NAME_ATTEMPTS = 8
# endDate at most this far ahead. The vendor sets no bound; this one keeps every date computed from endDate
# (the room key's expiry and the deactivation at endDate + 1 h, the deletion within 24 h) far inside
# Python's and the databases' calendars (year 9999), and no meeting needs to last a century.
MAX_END_DATE_AHEAD = timedelta(days=36525)  # 100 years of 365.25 days
END_DATE_TOO_FAR = "must be at most 100 years (36525 days) from now"


@dataclass(frozen=True, slots=True)
class CreatedMeeting:
    """A meeting as :func:`create_meeting` inserted it: the columns of :class:`Meeting` but ``seq``,
    ``deactivated_at`` and ``deleted_at`` (a plain record: building an ORM object for the response alone
    cost more than the INSERT's own parameters)."""

    id: str
    organization_id: str
    room_name: str
    room_mode: str
    is_locked: bool
    template_type: str | None
    start_date: datetime
    end_date: datetime
    recording: dict[str, Any] | None
    live_transcription: dict[str, Any] | None
    streaming: dict[str, Any] | None


@dataclass(frozen=True)
class RoomUrls:
    """How rooms are addressed: ``public_url`` (no trailing slash) and the roomKey signing secret."""

    public_url: str
    signing_key: str


def generate_room_name(pattern: str, prefix: str | None) -> str:
    """``/prefix-<uuid>`` or ``/prefix-<6 chars>`` (no prefix: ``/<...>``)."""
    if pattern == "human-short":
        core = "".join(secrets.choice(HUMAN_SHORT_ALPHABET) for _ in range(HUMAN_SHORT_LENGTH))
    else:
        core = str(uuid.uuid4())
    return "/" + (f"{prefix}-{core}" if prefix else core)


async def create_meeting(
    session: AsyncSession, organization: OrganizationRef, request: CreateMeetingRequest, now: datetime
) -> CreatedMeeting:
    """INSERT a meeting and its room for ``organization`` in the session's transaction (the request session
    commits) and return what was inserted.

    ``endDate`` before ``now``, or more than :data:`MAX_END_DATE_AHEAD` (100 years) after it, is a 400 naming
    ``endDate``, before anything is written. ``templateType: viewerMode`` makes the room
    locked and ``group``. A taken human-short room name is retried with a new name, each attempt in a
    SAVEPOINT so that the failed INSERT alone is rolled back; after ``MAX_NAME_ATTEMPTS`` collisions a 409
    (CONTRACT.md, "Meetings"). uuid names carry 122 random bits and are inserted without a SAVEPOINT (two
    statements fewer on the default path): an IntegrityError there is a fault, not a collision to retry.
    """
    if request.endDate < now.replace(microsecond=(now.microsecond // 1000) * 1000):
        raise validation_error("endDate", "must not be in the past")
    if request.endDate > now + MAX_END_DATE_AHEAD:
        raise validation_error("endDate", END_DATE_TOO_FAR)
    is_locked = bool(request.isLocked)
    room_mode = request.roomMode
    if request.templateType == "viewerMode":
        is_locked, room_mode = True, "group"
    values = {
        # Time-ordered (UUIDv7, RFC 9562): new ids go to the end of the id index instead of dirtying a
        # random page of it per row (a batch of five inserts in SQLite: 57 -> 43 us per row). Not a secret
        # (the API key guards it); room names are capabilities and stay random.
        "id": str(uuid7()),
        "organization_id": organization.id,
        "room_name": "",
        "room_mode": room_mode,
        "is_locked": is_locked,
        "template_type": request.templateType,
        "start_date": now,
        "end_date": request.endDate,
        "recording": request.recording.model_dump() if request.recording else None,
        "live_transcription": request.liveTranscription.model_dump() if request.liveTranscription else None,
        "streaming": request.streaming.model_dump() if request.streaming else None,
    }
    for _ in range(MAX_NAME_ATTEMPTS):
        values["room_name"] = generate_room_name(request.roomNamePattern, request.roomNamePrefix)
        if request.roomNamePattern != "human-short":
            await repository.add(session, values)
            return CreatedMeeting(**values)
        try:
            async with session.begin_nested():
                await repository.add(session, values)
        except IntegrityError:
            continue  # the room name was taken: draw another
        return CreatedMeeting(**values)
    raise HerewithError("Could not allocate a unique room name", status=409)


async def get_meeting(session: AsyncSession, organization: OrganizationRef, meeting_id: str) -> Meeting:
    """The organization's live meeting with that id; :class:`NotFound` for unknown, deleted or foreign ids."""
    meeting = await repository.get_for_organization(session, organization.id, meeting_id)
    if meeting is None:
        raise NotFound()
    return meeting


async def list_meetings(
    session: AsyncSession, organization: OrganizationRef, cursor: str | None, limit: int, room_name_starts_with: str | None
) -> tuple[list[Meeting], str | None]:
    """One page of the organization's meetings, oldest first, and the cursor of the next page (None at the end)."""
    after = None
    if cursor:
        decoded = decode_cursor(cursor)
        if not isinstance(decoded, int):
            raise validation_error("cursor", "not a cursor returned by this API")
        after = decoded
    prefix = room_name_starts_with
    if prefix is not None and not prefix.startswith("/"):
        prefix = "/" + prefix
    rows = list(await repository.list_page(session, organization.id, after, limit + 1, prefix))
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def delete_meeting(session: AsyncSession, organization: OrganizationRef, meeting_id: str, now: datetime) -> Meeting | None:
    """Mark the meeting deleted (idempotent: unknown, foreign or already deleted ids are a no-op returning None)."""
    meeting = await repository.get_for_organization(session, organization.id, meeting_id)
    if meeting is None:
        return None
    meeting.deleted_at = now
    await session.flush()
    return meeting


def parse_fields(values: Iterable[str]) -> set[str]:
    """``fields`` from a query (``fields=a,b`` or repeated) as a set; a 400 naming ``fields`` for unknown names."""
    out: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in ("hostRoomUrl", "viewerRoomUrl"):
                raise validation_error("fields", "items must be hostRoomUrl or viewerRoomUrl")
            out.add(name)
    return out


def to_out(meeting: Meeting | CreatedMeeting, urls: RoomUrls, fields: Iterable[str] = ()) -> MeetingOut:
    """The contract's Meeting: ``meetingId``, ``roomName``, ``roomUrl``, ``startDate``, ``endDate``, and
    ``hostRoomUrl`` / ``viewerRoomUrl`` only when asked for in ``fields``. viewerMode rooms always carry
    both URLs (seed 003, templateType)."""
    room_url = urls.public_url.rstrip("/") + meeting.room_name
    viewer_mode = meeting.template_type == "viewerMode"

    def role_url(role: str) -> str:
        return f"{room_url}?roomKey={issue_room_key(urls.signing_key, meeting.room_name, role, meeting.end_date)}"

    return MeetingOut(
        meetingId=meeting.id,
        roomName=meeting.room_name,
        roomUrl=room_url,
        startDate=format_utc(meeting.start_date),
        endDate=format_utc(meeting.end_date),
        hostRoomUrl=role_url("host") if viewer_mode or "hostRoomUrl" in fields else None,
        viewerRoomUrl=role_url("viewer") if viewer_mode or "viewerRoomUrl" in fields else None,
    )
