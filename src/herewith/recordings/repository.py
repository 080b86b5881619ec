"""All SQL of the recordings domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from herewith.meetings.models import Meeting
from herewith.recordings.models import LIVE_STATES, PROCESSING, Recording, RecordingTrack
from herewith.sessions.models import Node, RoomSession

#: The column each ``sortBy`` field orders by (nulls as -1, so unfinished recordings sort first ascending).
SORT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "roomName": Recording.room_name,
    "startDate": Recording.started_at,
    "duration": func.coalesce(Recording.duration_ms, -1),
    "sizeInMegaBytes": func.coalesce(Recording.size_bytes, -1),
}


async def get_for_organization(session: AsyncSession, organization_id: str, recording_id: str) -> Recording | None:
    """The organization's recording with that id, unless deleted."""
    return await session.scalar(select(Recording).where(
        Recording.id == recording_id, Recording.organization_id == organization_id, Recording.deleted_at.is_(None)))


async def get(session: AsyncSession, recording_id: str, for_update: bool = False) -> Recording | None:
    """The recording with that id, whatever its state (deleted ones included)."""
    stmt = select(Recording).where(Recording.id == recording_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def list_page(session: AsyncSession, organization_id: str, room_name: str | None, sort_field: str,
                    descending: bool, after: tuple[Any, int] | None, limit: int) -> Sequence[Recording]:
    """Up to ``limit`` live recordings ordered by ``sort_field`` (a key of :data:`SORT_COLUMNS`) then ``seq``,
    both ascending or both descending, starting strictly after ``after`` = (sort value, seq)."""
    column = SORT_COLUMNS[sort_field]
    stmt = select(Recording).where(Recording.organization_id == organization_id, Recording.deleted_at.is_(None))
    if room_name is not None:
        stmt = stmt.where(Recording.room_name == room_name)
    if after is not None:
        value, seq = after
        if descending:
            stmt = stmt.where(or_(column < value, and_(column == value, Recording.seq < seq)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, Recording.seq > seq)))
    order = (column.desc(), Recording.seq.desc()) if descending else (column.asc(), Recording.seq.asc())
    return (await session.scalars(stmt.order_by(*order).limit(limit))).all()


async def live_for_organization(session: AsyncSession, organization_id: str, ids: Sequence[str]) -> Sequence[Recording]:
    """The organization's recordings among ``ids`` that are not deleted (others' ids are ignored)."""
    if not ids:
        return []
    return (await session.scalars(select(Recording).where(
        Recording.organization_id == organization_id, Recording.id.in_(list(ids)), Recording.deleted_at.is_(None)))).all()


async def tracks(session: AsyncSession, recording_id: str) -> Sequence[RecordingTrack]:
    return (await session.scalars(
        select(RecordingTrack).where(RecordingTrack.recording_id == recording_id).order_by(RecordingTrack.seq))).all()


async def get_track(session: AsyncSession, recording_id: str, stream: str) -> RecordingTrack | None:
    return await session.scalar(select(RecordingTrack).where(
        RecordingTrack.recording_id == recording_id, RecordingTrack.stream == stream))


async def current_room_session(session: AsyncSession, meeting_id: str) -> str | None:
    """The id of the meeting's room session in progress, if any."""
    return await session.scalar(
        select(RoomSession.id).where(RoomSession.meeting_id == meeting_id, RoomSession.ended_at.is_(None))
        .order_by(RoomSession.seq.desc()).limit(1))


async def overlapping_room_session(session: AsyncSession, meeting_id: str, start: datetime, end: datetime) -> str | None:
    """The id of the first room session of the meeting that overlaps ``[start, end]``, if any."""
    return await session.scalar(
        select(RoomSession.id).where(RoomSession.meeting_id == meeting_id, RoomSession.started_at <= end,
                                     or_(RoomSession.ended_at.is_(None), RoomSession.ended_at >= start))
        .order_by(RoomSession.seq).limit(1))


def _alive_nodes(now: datetime, dead_after_seconds: float) -> Any:
    return select(Node.id).where(Node.stopped_at.is_(None),
                                 Node.last_seen_at >= now - timedelta(seconds=dead_after_seconds))


async def release_orphans(session: AsyncSession, now: datetime, dead_after_seconds: float) -> list[str]:
    """Recordings held by a node that is dead (its row gone, stopped, or silent for ``dead_after_seconds``):
    live ones (``starting``/``recording``) become ``processing``, ended at the node's last sign of life (or
    ``now``), and ``processing`` ones it was finalizing are released (``node_id`` null) for another node to
    claim. Returns the ids released. Never commits."""
    alive = _alive_nodes(now, dead_after_seconds)
    rows = (await session.scalars(
        select(Recording).where(Recording.node_id.is_not(None), Recording.node_id.not_in(alive),
                                Recording.state.in_((*LIVE_STATES, PROCESSING)))
        .order_by(Recording.seq).limit(100).with_for_update(skip_locked=True))).all()
    for row in rows:
        if row.state in LIVE_STATES:
            node = await session.get(Node, row.node_id)
            gone_at = (node.stopped_at or node.last_seen_at) if node is not None else now
            row.ended_at = row.ended_at or max(gone_at, row.started_at)
            row.stop_reason = row.stop_reason or "node_died"
            row.state = PROCESSING
        row.node_id = None
    await session.flush()
    return [row.id for row in rows]


async def claim_for_finalize(session: AsyncSession, node_id: str) -> str | None:
    """Take one unclaimed ``processing`` recording (oldest first) for ``node_id``; its id, or None. Two nodes
    never take the same one (a conditional UPDATE). Never commits."""
    candidates = (await session.scalars(
        select(Recording.id).where(Recording.state == PROCESSING, Recording.node_id.is_(None),
                                   Recording.deleted_at.is_(None))
        .order_by(Recording.seq).limit(5))).all()
    for recording_id in candidates:
        result = await session.execute(
            update(Recording).where(Recording.id == recording_id, Recording.state == PROCESSING,
                                    Recording.node_id.is_(None), Recording.deleted_at.is_(None))
            .values(node_id=node_id, finalize_attempts=Recording.finalize_attempts + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            return recording_id
    return None


async def to_purge(session: AsyncSession, limit: int = 20) -> Sequence[Recording]:
    """Deleted recordings whose files are still there and that no node holds (not live, not being finalized)."""
    return (await session.scalars(
        select(Recording).where(Recording.deleted_at.is_not(None), Recording.purged_at.is_(None),
                                Recording.node_id.is_(None), Recording.state.not_in(LIVE_STATES))
        .order_by(Recording.seq).limit(limit))).all()


async def meeting_of(session: AsyncSession, recording: Recording) -> Meeting | None:
    """The meeting a recording was made in (deleted or not): its ``recording`` options hold the destination."""
    return await meeting_by_id(session, recording.meeting_id)


async def meeting_by_id(session: AsyncSession, meeting_id: str) -> Meeting | None:
    """The meeting with that public id, whatever its state (``Meeting``'s primary key is ``seq``)."""
    return await session.scalar(select(Meeting).where(Meeting.id == meeting_id))
