"""Rules of the second vendor's room API (CONTRACT.md, "Another vendor's room options"; seed 004): its
options mapped onto Herewith's meetings and room policy. No HTTP here; services never commit.

A room made here is a meeting like any other (one namespace of room names, the same page, signaling,
insights and Whereby webhooks): ``roomName`` ``abc`` is the meeting's room ``/abc``. Its options are kept as
given (``meetings.api_options``, answered back) and mapped onto:

- the room policy (:func:`policy_from_options`, enforced by the live room, :mod:`herewith.rooms.policy`);
- the meeting: ``endDate`` = ``expireUnixSec`` (no expiry: the calendar's end), ``roomMode`` (Herewith's
  addition), ``recording`` = cloud recording, ``startTrigger`` ``automatic`` with ``recordRoom``, ``none``
  (hosts press Record) with ``enableRecording``;
- per-room webhook endpoints (:func:`herewith.webhooks.service.set_room_endpoints`): ``meetingJoinWebhook``
  gets ``room.client.joined``, ``meetingLeftWebhook`` ``room.client.left``, ``meetingStartedWebhook``
  ``room.session.started``, ``meetingEndedWebhook`` ``room.session.ended``, through the outbox.

Usage::

    meeting = await create_room(session, org, request, now, targets)
    room_out(meeting)      # the vendor's room object: every option, _id, roomName, app, created
    token = issue_token(signing_key, org, token_request, room_exists=True)
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from herewith.auth.models import OrganizationRef
from herewith.auth.room_keys import issue_participant_token
from herewith.errors import BadRequest, NotFound
from herewith.kit.time import format_utc
from herewith.meetings import repository as meetings_repository
from herewith.meetings.models import Meeting
from herewith.metered.schemas import WEBHOOK_FIELDS, CreateRoomRequest, CreateTokenRequest, RoomOptions
from herewith.rooms.policy import RoomPolicy
from herewith.webhooks import service as webhooks
from herewith.webhooks.targets import TargetPolicy

#: The vendor's generated names look like ``6kpYYvYj75``: ten letters and digits (~8e17 names).
GENERATED_NAME_ALPHABET = string.ascii_letters + string.digits
GENERATED_NAME_LENGTH = 10
MAX_NAME_ATTEMPTS = 8
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)  # the calendar's end (kit.time clamps)
#: Per-room webhook field -> the Whereby event type its URL receives (docs/metered.md).
WEBHOOK_EVENTS = {
    "meetingJoinWebhook": "room.client.joined",
    "meetingLeftWebhook": "room.client.left",
    "meetingStartedWebhook": "room.session.started",
    "meetingEndedWebhook": "room.session.ended",
}


class MeteredError(BadRequest):
    """A 400 in the vendor's words (``{"success": false, "message": ...}`` at the edge)."""


def _time(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, timezone.utc) if unix else None


def policy_from_options(options: dict[str, Any]) -> RoomPolicy:
    """The vendor's options (as :meth:`RoomOptions.stored` gives them) as a vendor-neutral room policy."""
    return RoomPolicy(
        private=options.get("privacy") == "private",
        request_to_join=bool(options.get("enableRequestToJoin")),
        not_before=_time(options.get("notBeforeUnixSec")),
        expires_at=_time(options.get("expireUnixSec")),
        eject_at_expiry=bool(options.get("ejectAtRoomExp")),
        max_participants=options.get("maxParticipants") or None,
        eject_after_seconds=options.get("ejectAfterElapsedTimeInSec") or None,
        end_after_no_activity_seconds=options.get("endMeetingAfterNoActivityInSec") or None,
        owner_only_broadcast=bool(options.get("ownerOnlyBroadcast")),
        audio_only=bool(options.get("audioOnlyRoom")),
        screen_share=bool(options.get("enableScreenSharing", True)),
        chat=bool(options.get("enableChat")),
        join_video_on=bool(options.get("joinVideoOn", True)),
        join_audio_on=bool(options.get("joinAudioOn", True)),
        auto_join=bool(options.get("autoJoin")),
    )


def _recording(options: dict[str, Any]) -> dict[str, Any] | None:
    if options.get("recordRoom"):
        return {"type": "cloud", "destination": None, "startTrigger": "automatic"}
    if options.get("enableRecording"):
        return {"type": "cloud", "destination": None, "startTrigger": "none"}
    return None


def _webhook_targets(options: dict[str, Any], policy: TargetPolicy) -> dict[str, list[str]]:
    """``{url: [event types]}`` of the per-room webhook fields that hold a URL (``scheme://...``). A value
    that is no URL at all (the vendor's sample sends the placeholder ``"string"``) is kept and answered but
    delivers nothing; a URL the target policy refuses is a 400."""
    targets: dict[str, list[str]] = {}
    for field in WEBHOOK_FIELDS:
        url = options.get(field)
        if url and "://" in url:
            targets.setdefault(url, []).append(WEBHOOK_EVENTS[field])
    for url in targets:
        try:
            webhooks.check_target(policy, url)
        except BadRequest as exc:
            raise MeteredError(f"Invalid webhook URL {url[:100]}: {(exc.data or {}).get('url', 'refused')}") from None
    return targets


def _check_times(options: dict[str, Any], now: datetime) -> None:
    expire, not_before = options.get("expireUnixSec"), options.get("notBeforeUnixSec")
    if expire and expire <= now.timestamp():
        raise MeteredError("expireUnixSec must be in the future")
    if expire and not_before and not_before >= expire:
        raise MeteredError("notBeforeUnixSec must be before expireUnixSec")


def _columns(options: dict[str, Any]) -> dict[str, Any]:
    """The meeting columns the options decide."""
    return {
        "room_mode": options.get("roomMode") or "normal",
        "end_date": _time(options.get("expireUnixSec")) or NO_EXPIRY,
        "recording": _recording(options),
        "room_policy": policy_from_options(options).to_json(),
        "api_options": options,
    }


def generate_room_name() -> str:
    return "".join(secrets.choice(GENERATED_NAME_ALPHABET) for _ in range(GENERATED_NAME_LENGTH))


async def create_room(session: AsyncSession, organization: OrganizationRef, request: CreateRoomRequest,
                      now: datetime, target_policy: TargetPolicy) -> Meeting:
    """Create the room (a meeting of ``organization``) with its options and per-room webhooks.

    Raises :class:`MeteredError` (400) for a taken ``roomName`` (names are one namespace for both APIs),
    an ``expireUnixSec`` not in the future, a ``notBeforeUnixSec`` not before it, or a webhook URL the
    target policy refuses."""
    options = request.stored()
    _check_times(options, now)
    targets = _webhook_targets(options, target_policy)
    values: dict[str, Any] = {
        "id": str(uuid7()), "organization_id": organization.id, "is_locked": False, "template_type": None,
        "start_date": now, "live_transcription": None, "streaming": None, **_columns(options),
    }
    for _ in range(MAX_NAME_ATTEMPTS):
        values["room_name"] = "/" + (request.roomName or generate_room_name())
        try:
            async with session.begin_nested():
                await meetings_repository.add(session, values)
            break
        except IntegrityError:
            if request.roomName:
                raise MeteredError("Room with this roomName already exists") from None
    else:
        raise MeteredError("Could not generate a unique room name")
    meeting = await meetings_repository.get_by_id(session, values["id"])
    assert meeting is not None
    if targets:
        await webhooks.set_room_endpoints(session, organization.id, meeting.id, targets, now, target_policy,
                                          f"room {meeting.room_name}: per-room webhooks")
    return meeting


async def get_room(session: AsyncSession, organization: OrganizationRef, room_name: str) -> Meeting:
    """The organization's live room ``room_name`` (with or without the leading slash); :class:`NotFound`."""
    name = "/" + room_name.lstrip("/")
    meeting = await meetings_repository.get_by_room_name(session, name)
    if meeting is None or meeting.organization_id != organization.id or meeting.deleted_at is not None:
        raise NotFound("Room not found")
    return meeting


async def list_rooms(session: AsyncSession, organization: OrganizationRef) -> Sequence[Meeting]:
    """Every live room of the organization, oldest first (those made by the Whereby API too)."""
    return (await session.scalars(
        select(Meeting).where(Meeting.organization_id == organization.id, Meeting.deleted_at.is_(None))
        .order_by(Meeting.seq))).all()


async def update_room(session: AsyncSession, organization: OrganizationRef, room_name: str, changes: dict[str, Any],
                      now: datetime, target_policy: TargetPolicy) -> Meeting:
    """Change the options given in ``changes`` (the fields of :class:`RoomOptions` present in the body);
    the others stay. The live call keeps the rules it started with; the next call of the room has the new
    ones. Raises :class:`NotFound`, :class:`MeteredError` (as :func:`create_room`)."""
    meeting = await get_room(session, organization, room_name)
    current = dict(meeting.api_options or RoomOptions().stored())
    merged = RoomOptions.model_validate({**current, **changes}).stored()
    if changes.get("expireUnixSec") is not None or changes.get("notBeforeUnixSec") is not None:
        _check_times(merged, now)
    targets = _webhook_targets(merged, target_policy)
    for column, value in _columns(merged).items():
        setattr(meeting, column, value)
    await webhooks.set_room_endpoints(session, organization.id, meeting.id, targets, now, target_policy,
                                      f"room {meeting.room_name}: per-room webhooks")
    await session.flush()
    return meeting


async def delete_room(session: AsyncSession, organization: OrganizationRef, room_name: str, now: datetime) -> Meeting:
    """Mark the room deleted (its call ends: the caller publishes the meeting event after commit).
    Raises :class:`NotFound` for unknown, foreign or deleted rooms."""
    meeting = await get_room(session, organization, room_name)
    meeting.deleted_at = now
    await session.flush()
    return meeting


def room_out(meeting: Meeting) -> dict[str, Any]:
    """The vendor's room object: every option (as stored; unset integers and webhooks left out), ``_id``
    (the meeting id), ``roomName`` (without the slash), ``app`` (the organization id), ``created`` (ISO
    8601, milliseconds, UTC), ``archived`` and ``__v`` as in the vendor's sample answer."""
    options = meeting.api_options or RoomOptions(privacy="private" if meeting.is_locked else "public").stored()
    out = {k: v for k, v in options.items() if v is not None}
    out.update({"archived": False, "_id": meeting.id, "roomName": meeting.room_name.lstrip("/"),
                "app": meeting.organization_id, "created": format_utc(meeting.start_date), "__v": 0})
    return out


def issue_token(signing_key: str, organization: OrganizationRef, request: CreateTokenRequest) -> str:
    """A participant token (:func:`herewith.auth.room_keys.issue_participant_token`) for the request's room
    (checked to exist by the caller) or, with ``globalToken``, every room of the organization."""
    return issue_participant_token(
        signing_key, organization.id, room_name=None if request.globalToken else "/" + (request.roomName or ""),
        admin=request.isAdmin, expires_at=request.expireUnixSec or None, not_before=request.notBeforeUnixSec or None,
        name=request.name, email=request.email, meta=request.meta, external_id=request.externalUserId,
        eject_after_seconds=request.ejectAfterElapsedTimeInSec or None, join_video_on=request.joinVideoOn,
        join_audio_on=request.joinAudioOn, disable_video=request.disableVideo, disable_audio=request.disableAudio,
        disable_screen=request.disableScreenSharing,
    )
