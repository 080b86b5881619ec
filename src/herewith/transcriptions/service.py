"""Rules of transcriptions (CONTRACT.md, "Recordings, transcriptions, summaries"). No HTTP here; services
take the session first and never commit.

- ``POST /v1/transcriptions {"recordingId"}``: the organization's ``ready`` recording (404 unknown or
  another organization's, 409 while it is not ready) becomes an ``in_progress`` RECORDING_TRANSCRIPTION row,
  and ``transcription.started`` goes into the webhook outbox in the same transaction; the transcription
  job (:mod:`herewith.jobs.transcriptions`) does the rest.
- list (``roomName``, ``sortBy`` roomName|startDate|durationInSeconds with ``:asc``/``:desc``, keyset
  cursors), get, idempotent delete and bulk delete, access links to the Markdown file: a JWT like the
  recordings' (``use: transcript``), served at ``/transcriptions/files/{transcriptionId}/{filename}``.
- :func:`store_live_transcript`: a LIVE_TRANSCRIPTION from the captions of a room session, stored ready.

Another organization's id is a 404, never a 403 (CONTRACT.md, "Common rules").
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.errors import HerewithError, NotFound
from herewith.kit.pagination import decode_sorted_cursor, parse_sort_by, sorted_page
from herewith.kit.time import UTC, format_utc
from herewith.meetings.models import Meeting
from herewith.recordings import service as recordings
from herewith.recordings.models import READY as RECORDING_READY
from herewith.transcriptions import repository
from herewith.transcriptions.models import (
    FAILED,
    IN_PROGRESS,
    LIVE_TRANSCRIPTION,
    READY,
    RECORDING_TRANSCRIPTION,
    Transcription,
)
from herewith.transcriptions.schemas import SORT_FIELDS, TranscriptionOut
from herewith.transcriptions.transcript import Utterance, render_markdown
from herewith.webhooks import service as webhooks

DEFAULT_SORT = ("startDate", True)  # newest first
FILE_ROUTE = "/transcriptions/files"
TOKEN_USE = "transcript"
STORAGE_TYPE = "WHEREBY_HOSTED"
_FILENAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RecordingNotReady(HerewithError):
    """409: the recording has no file yet (``data.state`` says where it is)."""

    status = 409
    message = "The recording is not ready yet"


class TranscriptNotReady(HerewithError):
    """409: the transcription has no transcript yet (``data.state`` says where it is)."""

    status = 409
    message = "The transcription is not ready yet"


def transcript_filename(room_name: str, started_at: datetime) -> str:
    """``<room name without slash>_<YYYY-MM-DDTHH-MM-SSZ>.md``, only ``[A-Za-z0-9._-]``."""
    stamp = started_at.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    base = _FILENAME_SAFE.sub("-", room_name.strip("/")).strip("-") or "transcript"
    return f"{base[:80]}_{stamp}.md"


def meeting_language(meeting: Meeting | None) -> str | None:
    """The meeting's ``liveTranscription.language`` (ISO 639-1 as stored; e.g. ``en``), or None to detect."""
    options = (meeting.live_transcription if meeting is not None else None) or {}
    language = options.get("language")
    return language.split("-")[0].lower() if isinstance(language, str) and language else None


def _data(t: Transcription) -> dict[str, Any]:
    return {"meetingId": t.meeting_id, "roomName": t.room_name, "roomSessionId": t.room_session_id,
            **to_out(t).model_dump()}


async def create_transcription(session: AsyncSession, organization_id: str, recording_id: str, now: datetime,
                               settings: Settings) -> Transcription:
    """An ``in_progress`` transcription of the organization's ready recording, and ``transcription.started``
    in the outbox (flushed; the caller commits). 404 for an unknown, deleted or foreign recording, 409
    (:class:`RecordingNotReady`) while it is not ready."""
    rec = await repository.recording_for_organization(session, organization_id, recording_id)
    if rec is None:
        raise NotFound()
    if rec.state != RECORDING_READY:
        raise RecordingNotReady(data={"state": rec.state})
    t = Transcription(
        id=str(uuid.uuid4()), organization_id=organization_id, meeting_id=rec.meeting_id, room_name=rec.room_name,
        room_session_id=rec.room_session_id, recording_id=rec.id, type=RECORDING_TRANSCRIPTION, state=IN_PROGRESS,
        attempts=0, started_at=rec.started_at, ended_at=rec.ended_at, duration_ms=rec.duration_ms, created_at=now,
    )
    session.add(t)
    await session.flush()
    await webhooks.enqueue(session, organization_id, "transcription.started", _data(t), now, t.meeting_id,
                           timedelta(seconds=settings.webhook_retry_window_seconds))
    return t


async def store_live_transcript(session: AsyncSession, meeting: Meeting, room_session_id: str | None,
                                started_at: datetime, ended_at: datetime, utterances: Iterable[Utterance],
                                language: str | None, now: datetime, settings: Settings) -> Transcription:
    """Store the captions of a room session as a ready LIVE_TRANSCRIPTION of ``meeting``.

    ``utterances``: final captions, ``start`` in seconds from ``started_at`` (UTC), ``speaker`` the display
    name; ``language``: ISO 639-1 or None. ``transcription.started`` and ``transcription.finished`` go into
    the outbox in the same transaction. Flushed; the caller commits. Returns the row.
    """
    t = Transcription(
        id=str(uuid.uuid4()), organization_id=meeting.organization_id, meeting_id=meeting.id,
        room_name=meeting.room_name, room_session_id=room_session_id, recording_id=None, type=LIVE_TRANSCRIPTION,
        state=READY, language=language, attempts=0, started_at=started_at, ended_at=ended_at,
        duration_ms=max(0, int((ended_at - started_at).total_seconds() * 1000)), created_at=now, finished_at=now,
        filename=transcript_filename(meeting.room_name, started_at),
        markdown=render_markdown(meeting.room_name, started_at, language, utterances, title="Live transcript"),
    )
    session.add(t)
    await session.flush()
    window = timedelta(seconds=settings.webhook_retry_window_seconds)
    await webhooks.enqueue(session, t.organization_id, "transcription.started", _data(t), now, t.meeting_id, window)
    await webhooks.enqueue(session, t.organization_id, "transcription.finished", _data(t), now, t.meeting_id, window)
    return t


async def finish(session: AsyncSession, t: Transcription, markdown: str, language: str | None, now: datetime,
                 settings: Settings) -> None:
    """Mark ``t`` ready with its transcript and put ``transcription.finished`` into the outbox (one transaction
    with the caller's; never commits)."""
    t.state, t.markdown, t.language, t.node_id, t.error = READY, markdown, language, None, None
    t.filename = transcript_filename(t.room_name, t.started_at)
    t.finished_at = now
    await session.flush()
    await webhooks.enqueue(session, t.organization_id, "transcription.finished", _data(t), now, t.meeting_id,
                           timedelta(seconds=settings.webhook_retry_window_seconds))


async def fail(session: AsyncSession, t: Transcription, error: str, now: datetime, settings: Settings) -> None:
    """Mark ``t`` failed with ``error`` and put ``transcription.failed`` into the outbox; never commits."""
    t.state, t.error, t.node_id, t.finished_at = FAILED, error[:2000], None, now
    await session.flush()
    await webhooks.enqueue(session, t.organization_id, "transcription.failed", {**_data(t), "error": t.error},
                           now, t.meeting_id, timedelta(seconds=settings.webhook_retry_window_seconds))


# ---------------------------------------------------------------------------------------------------- API
def parse_sort(raw: str | None) -> tuple[str, bool]:
    """``sortBy`` -> (field, descending); default ``DEFAULT_SORT``; 400 naming ``sortBy`` otherwise."""
    return parse_sort_by(raw, SORT_FIELDS, DEFAULT_SORT)


def _sort_value(t: Transcription, field: str) -> Any:
    if field == "roomName":
        return t.room_name
    if field == "startDate":
        return t.started_at.isoformat()
    return t.duration_ms if t.duration_ms is not None else -1


async def list_transcriptions(session: AsyncSession, organization_id: str, room_name: str | None,
                              sort_by: str | None, cursor: str | None, limit: int) -> tuple[list[Transcription], str | None]:
    """One page of the organization's transcriptions (not deleted) and the next page's cursor (None at the end)."""
    field, descending = parse_sort(sort_by)
    after = decode_sorted_cursor(cursor, field, descending, frozenset({"startDate"}), frozenset({"roomName"})) if cursor else None
    rows = list(await repository.list_page(session, organization_id, recordings.normalize_room_name(room_name),
                                           field, descending, after, limit + 1))
    return sorted_page(rows, limit, field, descending, _sort_value)


async def get_transcription(session: AsyncSession, organization_id: str, transcription_id: str) -> Transcription:
    """The organization's transcription; :class:`NotFound` for unknown, deleted or another organization's ids."""
    t = await repository.get_for_organization(session, organization_id, transcription_id)
    if t is None:
        raise NotFound()
    return t


async def delete_transcriptions(session: AsyncSession, organization_id: str, ids: list[str], now: datetime) -> list[Transcription]:
    """Mark the organization's transcriptions among ``ids`` deleted and drop their transcript text (unknown,
    foreign and deleted ids are ignored: idempotent). A job in progress notices and stops. Never commits."""
    rows = list(await repository.live_for_organization(session, organization_id, list(dict.fromkeys(ids))))
    for row in rows:
        row.deleted_at = now
        row.markdown = None
    await session.flush()
    return rows


async def access_link(session: AsyncSession, organization_id: str, transcription_id: str, valid_for: int,
                      now: datetime, settings: Settings) -> tuple[str, int]:
    """(URL, expiry in epoch milliseconds) of a download of the Markdown file valid ``valid_for`` seconds.
    404 as :func:`get_transcription`; :class:`TranscriptNotReady` (409) until it is ready."""
    t = await get_transcription(session, organization_id, transcription_id)
    if t.state != READY or t.markdown is None or not t.filename:
        raise TranscriptNotReady(data={"state": t.state})
    expires = int(now.timestamp()) + valid_for
    token = recordings.issue_token(settings.signing_key, t.id, TOKEN_USE, expires)
    return f"{settings.public_url}{FILE_ROUTE}/{t.id}/{t.filename}?token={token}", expires * 1000


async def downloadable(session: AsyncSession, transcription_id: str, filename: str) -> Transcription:
    """The ready, not deleted transcription whose file is ``filename``; NotFound otherwise."""
    t = await repository.get(session, transcription_id)
    if t is None or t.deleted_at is not None or t.state != READY or t.filename != filename or t.markdown is None:
        raise NotFound()
    return t


def to_out(t: Transcription) -> TranscriptionOut:
    """The contract's Transcription (see :class:`~herewith.transcriptions.schemas.TranscriptionOut`)."""
    return TranscriptionOut(
        transcriptionId=t.id, roomSessionId=t.room_session_id, roomName=t.room_name,
        startDate=format_utc(t.started_at), endDate=format_utc(t.ended_at) if t.ended_at else None,
        state=t.state, createdAt=format_utc(t.created_at), type=t.type, filename=t.filename,
        durationInSeconds=t.duration_ms / 1000 if t.duration_ms is not None else None, storageType=STORAGE_TYPE,
        recordingId=t.recording_id, meetingId=t.meeting_id, language=t.language,
    )
