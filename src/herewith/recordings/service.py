"""Rules of recordings (CONTRACT.md, "Recordings"). No HTTP here; services take the session first and never commit.

- The API: list (``roomName``, ``sortBy`` roomName|startDate|duration|sizeInMegaBytes with ``:asc``/``:desc``,
  keyset cursors), get, idempotent delete and bulk delete (files are removed afterwards by the recording job,
  :func:`herewith.recordings.finalize.purge_deleted`), access links.
- Access links: a local file gets ``{public_url}/recordings/files/{recordingId}/{filename}?token=<JWT>``, a
  JWT (HS256, the server's signing key) with ``{"rid", "use": "download", "exp"}``, served with HTTP Range
  support; an S3 file gets a presigned GET URL. ``expires`` is epoch milliseconds.
- Ingest tokens: a JWT ``{"rid", "use": "ingest", "exp"}`` passed to the recorder's page (the recording
  interface, section 5).
- New recordings: :func:`create_recording` reads the meeting's ``recording`` options (type ``cloud``, the
  destination's provider and ``fileFormat``).

Another organization's id is a 404, never a 403 (CONTRACT.md, "Common rules").
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.errors import HerewithError, NotFound, validation_error
from herewith.kit.pagination import decode_sorted_cursor, parse_sort_by, sorted_page
from herewith.kit.time import UTC, format_utc
from herewith.meetings.models import Meeting
from herewith.recordings import repository
from herewith.recordings.models import READY, STARTING, Recording
from herewith.recordings.schemas import SORT_FIELDS, RecordingOut
from herewith.recordings.storage import CONTENT_TYPES, S3Destination, S3Storage, StorageError
from herewith.webhooks.targets import TargetPolicy

DEFAULT_SORT = ("startDate", True)  # newest first
VALID_FOR_DEFAULT = 3600
VALID_FOR_MAX = 43200
MEGABYTE = 1_000_000
TOKEN_ALGORITHM = "HS256"
FILE_ROUTE = "/recordings/files"
_FILENAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NotReady(HerewithError):
    """409: the recording has no file yet (``data.state`` says where it is)."""

    status = 409
    message = "The recording is not ready yet"


class InvalidToken(Exception):
    """An ingest or download token that is not this server's, is for another recording or use, or expired."""


@dataclass(frozen=True)
class RecordingOptions:
    """A meeting's ``recording`` options as recordings use them: ``type`` none|local|cloud, ``start_trigger``
    none|prompt|automatic|automatic-2nd-participant, ``storage_type`` whereby|s3, ``file_format`` mp4|mkv."""

    type: str
    start_trigger: str
    storage_type: str
    file_format: str

    def public(self) -> dict[str, str]:
        """What the room page may know (never the destination): ``{"type", "startTrigger"}``."""
        return {"type": self.type, "startTrigger": self.start_trigger}


def recording_options(meeting: Meeting, default_format: str = "mp4") -> RecordingOptions:
    """The options stored on ``meeting`` (``None`` means ``type: none``)."""
    raw = meeting.recording or {}
    destination = raw.get("destination") or {}
    return RecordingOptions(
        type=raw.get("type") or "none",
        start_trigger=raw.get("startTrigger") or "none",
        storage_type="s3" if destination.get("provider") == "s3" else "whereby",
        file_format=destination.get("fileFormat") or default_format,
    )


def s3_storage(meeting: Meeting, settings: Settings) -> S3Storage:
    """The S3 storage of a meeting whose destination is ``s3``, its ``endpoint`` held to the webhook target
    policy (:func:`herewith.recordings.storage.check_endpoint`). Raises StorageError if it lacks a field."""
    return S3Storage(S3Destination.from_options((meeting.recording or {}).get("destination") or {}),
                     settings.recording_s3_part_bytes, TargetPolicy.from_settings(settings))


def download_filename(room_name: str, started_at: datetime, file_format: str) -> str:
    """``<room name without slash>_<YYYY-MM-DDTHH-MM-SSZ>.<mp4|mkv>``, only ``[A-Za-z0-9._-]``."""
    stamp = started_at.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    base = _FILENAME_SAFE.sub("-", room_name.strip("/")).strip("-") or "recording"
    return f"{base[:80]}_{stamp}.{file_format}"


async def create_recording(session: AsyncSession, meeting: Meeting, options: RecordingOptions, trigger: str,
                           requested_by: str | None, node_id: str, now: datetime) -> Recording:
    """Add a ``starting`` recording of ``meeting``'s room, held by ``node_id`` (flushed; the caller commits)."""
    recording = Recording(
        id=str(uuid.uuid4()), organization_id=meeting.organization_id, meeting_id=meeting.id,
        room_name=meeting.room_name, room_session_id=await repository.current_room_session(session, meeting.id),
        state=STARTING, trigger=trigger, requested_by=requested_by, file_format=options.file_format,
        storage_type=options.storage_type, node_id=node_id, started_at=now, created_at=now, finalize_attempts=0,
    )
    session.add(recording)
    await session.flush()
    return recording


# -------------------------------------------------------------------------------------------------- tokens
def issue_token(secret: str, recording_id: str, use: str, expires_at: int) -> str:
    """A JWT (HS256) for ``use`` (``ingest`` | ``download``) of one recording, valid until ``expires_at``
    (epoch seconds)."""
    return jwt.encode({"rid": recording_id, "use": use, "exp": expires_at}, secret, algorithm=TOKEN_ALGORITHM)


def verify_token(secret: str, token: str, recording_id: str, use: str, now: datetime) -> None:
    """Check a token from :func:`issue_token` at ``now`` (the server's clock). Raises :class:`InvalidToken`."""
    try:
        claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM], options={"verify_exp": False})
    except jwt.PyJWTError:
        raise InvalidToken("not a token of this server") from None
    if claims.get("rid") != recording_id or claims.get("use") != use:
        raise InvalidToken("token is for another recording")
    exp = claims.get("exp")
    if not isinstance(exp, int) or now.timestamp() > exp:
        raise InvalidToken("token has expired")


# ---------------------------------------------------------------------------------------------------- API
def parse_sort(raw: str | None) -> tuple[str, bool]:
    """``sortBy`` -> (field, descending); default ``DEFAULT_SORT``; 400 naming ``sortBy`` otherwise."""
    return parse_sort_by(raw, SORT_FIELDS, DEFAULT_SORT)


def _sort_value(recording: Recording, field: str) -> Any:
    if field == "roomName":
        return recording.room_name
    if field == "startDate":
        return recording.started_at.isoformat()
    if field == "duration":
        return recording.duration_ms if recording.duration_ms is not None else -1
    return recording.size_bytes if recording.size_bytes is not None else -1


def normalize_room_name(name: str | None) -> str | None:
    """``roomName`` filter: with or without the leading slash; blank means no filter."""
    if name is None or not name.strip():
        return None
    return "/" + name.strip().lstrip("/")


async def list_recordings(session: AsyncSession, organization_id: str, room_name: str | None, sort_by: str | None,
                          cursor: str | None, limit: int) -> tuple[list[Recording], str | None]:
    """One page of the organization's recordings (not deleted) and the next page's cursor (None at the end).

    The cursor carries the sort (a cursor from another ``sortBy`` is a 400 naming ``cursor``)."""
    field, descending = parse_sort(sort_by)
    after = decode_sorted_cursor(cursor, field, descending, frozenset({"startDate"}), frozenset({"roomName"})) if cursor else None
    rows = list(await repository.list_page(session, organization_id, normalize_room_name(room_name), field,
                                           descending, after, limit + 1))
    return sorted_page(rows, limit, field, descending, _sort_value)


async def get_recording(session: AsyncSession, organization_id: str, recording_id: str) -> Recording:
    """The organization's recording; :class:`NotFound` for unknown, deleted or another organization's ids."""
    recording = await repository.get_for_organization(session, organization_id, recording_id)
    if recording is None:
        raise NotFound()
    return recording


async def delete_recordings(session: AsyncSession, organization_id: str, ids: list[str], now: datetime) -> list[Recording]:
    """Mark the organization's recordings among ``ids`` deleted (unknown, foreign and deleted ids are
    ignored: idempotent). Returns the ones marked now; their files go in the background. Never commits."""
    rows = list(await repository.live_for_organization(session, organization_id, list(dict.fromkeys(ids))))
    for row in rows:
        row.deleted_at = now
    await session.flush()
    return rows


def parse_valid_for(raw: str | None) -> int:
    """``validForSeconds``: an integer 1..43200, default 3600; 400 naming it otherwise."""
    if raw is None or raw == "":
        return VALID_FOR_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise validation_error("validForSeconds", "must be an integer between 1 and 43200") from None
    if not 1 <= value <= VALID_FOR_MAX:
        raise validation_error("validForSeconds", "must be an integer between 1 and 43200")
    return value


async def access_link(session: AsyncSession, organization_id: str, recording_id: str, valid_for: int, now: datetime,
                      settings: Settings) -> tuple[str, int]:
    """(URL, expiry in epoch milliseconds) of a download of the recording's file valid ``valid_for`` seconds.

    404 as :func:`get_recording`; :class:`NotReady` (409) until the recording is ``ready``; 502 when the
    bucket's endpoint is refused by the target policy."""
    recording = await get_recording(session, organization_id, recording_id)
    if recording.state != READY or not recording.storage_key or not recording.filename:
        raise NotReady(data={"state": recording.state})
    expires = int(now.timestamp()) + valid_for
    if recording.storage_type == "s3":
        meeting = await repository.meeting_of(session, recording)
        if meeting is None:
            raise NotFound()
        try:
            url = await s3_storage(meeting, settings).presigned_url(recording.storage_key, valid_for, recording.filename)
        except StorageError as exc:
            raise HerewithError(str(exc), status=502) from None
        return url, expires * 1000
    token = issue_token(settings.signing_key, recording.id, "download", expires)
    return f"{settings.public_url}{FILE_ROUTE}/{recording.id}/{recording.filename}?token={token}", expires * 1000


async def downloadable(session: AsyncSession, recording_id: str, filename: str) -> Recording:
    """The ready, locally stored, not deleted recording ``recording_id`` whose file is ``filename``; NotFound otherwise."""
    recording = await repository.get(session, recording_id)
    if (recording is None or recording.deleted_at is not None or recording.state != READY
            or recording.storage_type != "whereby" or recording.filename != filename or not recording.storage_key):
        raise NotFound()
    return recording


def content_type(file_format: str) -> str:
    return CONTENT_TYPES.get(file_format, "application/octet-stream")


def to_out(recording: Recording) -> RecordingOut:
    """The contract's Recording (see :class:`~herewith.recordings.schemas.RecordingOut`)."""
    return RecordingOut(
        recordingId=recording.id,
        roomSessionId=recording.room_session_id,
        roomName=recording.room_name,
        filename=recording.filename,
        startDate=format_utc(recording.started_at),
        endDate=format_utc(recording.ended_at) if recording.ended_at else None,
        sizeInMegaBytes=round((recording.size_bytes or 0) / MEGABYTE, 3),
        duration=recording.duration_ms / 1000 if recording.duration_ms is not None else None,
        state=recording.state,
        meetingId=recording.meeting_id,
        storageType=recording.storage_type,
        fileFormat=recording.file_format,
        trigger=recording.trigger,
    )


def finished_data(recording: Recording) -> dict[str, Any]:
    """``data`` of the ``recording.finished`` webhook: ``meetingId``, ``roomName``, ``roomSessionId`` (as every
    event) and the Recording's fields."""
    out = to_out(recording).model_dump()
    return {"meetingId": recording.meeting_id, "roomName": recording.room_name,
            "roomSessionId": recording.room_session_id, **out}


def ingest_token_expiry(now: datetime, max_duration_seconds: float) -> int:
    """Epoch seconds an ingest token stays valid: the longest recording plus an hour of slack."""
    return int((now + timedelta(seconds=max_duration_seconds + 3600)).timestamp())
