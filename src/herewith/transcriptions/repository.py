"""All SQL of the transcriptions domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from herewith.meetings.models import Meeting
from herewith.recordings.models import Recording, RecordingTrack
from herewith.sessions.models import Node
from herewith.transcriptions.models import IN_PROGRESS, RECORDING_TRANSCRIPTION, Transcription

#: The column each ``sortBy`` field orders by.
SORT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "roomName": Transcription.room_name,
    "startDate": Transcription.started_at,
    "durationInSeconds": func.coalesce(Transcription.duration_ms, -1),
}


async def get(session: AsyncSession, transcription_id: str, for_update: bool = False) -> Transcription | None:
    """The transcription with that id, whatever its state (deleted ones included)."""
    stmt = select(Transcription).where(Transcription.id == transcription_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get_for_organization(session: AsyncSession, organization_id: str, transcription_id: str) -> Transcription | None:
    """The organization's transcription with that id, unless deleted."""
    return await session.scalar(select(Transcription).where(
        Transcription.id == transcription_id, Transcription.organization_id == organization_id,
        Transcription.deleted_at.is_(None)))


async def list_page(session: AsyncSession, organization_id: str, room_name: str | None, sort_field: str,
                    descending: bool, after: tuple[Any, int] | None, limit: int) -> Sequence[Transcription]:
    """Up to ``limit`` live transcriptions ordered by ``sort_field`` then ``seq`` (same direction), starting
    strictly after ``after`` = (sort value, seq)."""
    column = SORT_COLUMNS[sort_field]
    stmt = select(Transcription).where(Transcription.organization_id == organization_id,
                                       Transcription.deleted_at.is_(None))
    if room_name is not None:
        stmt = stmt.where(Transcription.room_name == room_name)
    if after is not None:
        value, seq = after
        if descending:
            stmt = stmt.where(or_(column < value, and_(column == value, Transcription.seq < seq)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, Transcription.seq > seq)))
    order = (column.desc(), Transcription.seq.desc()) if descending else (column.asc(), Transcription.seq.asc())
    return (await session.scalars(stmt.order_by(*order).limit(limit))).all()


async def live_for_organization(session: AsyncSession, organization_id: str, ids: Sequence[str]) -> Sequence[Transcription]:
    """The organization's transcriptions among ``ids`` that are not deleted."""
    if not ids:
        return []
    return (await session.scalars(select(Transcription).where(
        Transcription.organization_id == organization_id, Transcription.id.in_(list(ids)),
        Transcription.deleted_at.is_(None)))).all()


async def recording_for_organization(session: AsyncSession, organization_id: str, recording_id: str) -> Recording | None:
    """The organization's recording with that id, unless deleted."""
    return await session.scalar(select(Recording).where(
        Recording.id == recording_id, Recording.organization_id == organization_id, Recording.deleted_at.is_(None)))


async def recording(session: AsyncSession, recording_id: str) -> Recording | None:
    return await session.scalar(select(Recording).where(Recording.id == recording_id))


async def audio_tracks(session: AsyncSession, recording_id: str) -> Sequence[RecordingTrack]:
    """The recording's per-participant audio tracks that have a finished file, in the order they started."""
    return (await session.scalars(
        select(RecordingTrack).where(RecordingTrack.recording_id == recording_id, RecordingTrack.kind == "audio",
                                     RecordingTrack.storage_key.is_not(None))
        .order_by(RecordingTrack.started_at, RecordingTrack.seq))).all()


async def meeting_by_id(session: AsyncSession, meeting_id: str) -> Meeting | None:
    return await session.scalar(select(Meeting).where(Meeting.id == meeting_id))


def _alive_nodes(now: datetime, dead_after_seconds: float) -> Any:
    return select(Node.id).where(Node.stopped_at.is_(None),
                                 Node.last_seen_at >= now - timedelta(seconds=dead_after_seconds))


async def claim(session: AsyncSession, node_id: str, now: datetime, dead_after_seconds: float) -> str | None:
    """Take one ``in_progress`` recording transcription that no live process holds (queued, or held by a
    process that died: its node row gone, stopped, or silent for ``dead_after_seconds``), oldest first, for
    ``node_id``; its id, or None. A conditional UPDATE, so two processes never take the same one. Counts the
    attempt. Never commits."""
    alive = _alive_nodes(now, dead_after_seconds)
    free = or_(Transcription.node_id.is_(None), Transcription.node_id.not_in(alive))
    candidates = (await session.scalars(
        select(Transcription.id).where(Transcription.state == IN_PROGRESS,
                                         Transcription.type == RECORDING_TRANSCRIPTION,
                                         Transcription.deleted_at.is_(None), free)
        .order_by(Transcription.seq).limit(5))).all()
    for transcription_id in candidates:
        result = await session.execute(
            update(Transcription).where(Transcription.id == transcription_id, Transcription.state == IN_PROGRESS,
                                        Transcription.deleted_at.is_(None), free)
            .values(node_id=node_id, attempts=Transcription.attempts + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            return transcription_id
    return None
