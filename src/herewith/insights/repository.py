"""All SQL of the insights calls. Every query is scoped to one organization."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.meetings.models import Meeting
from herewith.sessions.models import RoomParticipant, RoomSession, StatsSample


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def rooms_with_sessions(
    session: AsyncSession, organization_id: str, exact: str | None, starts_with: str | None, contains: str | None,
    created_from: datetime | None, created_to: datetime | None,
) -> Sequence[Meeting]:
    """The organization's rooms (deleted ones too: insights are history) that had at least one session."""
    had_session = select(RoomSession.meeting_id).where(RoomSession.organization_id == organization_id)
    stmt = select(Meeting).where(Meeting.organization_id == organization_id, Meeting.id.in_(had_session))
    if exact is not None:
        stmt = stmt.where(Meeting.room_name == exact)
    if starts_with is not None:
        stmt = stmt.where(Meeting.room_name.like(_like_escape(starts_with) + "%", escape="\\"))
    if contains is not None:
        stmt = stmt.where(Meeting.room_name.like("%" + _like_escape(contains) + "%", escape="\\"))
    if created_from is not None:
        stmt = stmt.where(Meeting.start_date >= created_from)
    if created_to is not None:
        # Dates go out with milliseconds: ``to`` includes the whole millisecond it names.
        stmt = stmt.where(Meeting.start_date < created_to + timedelta(milliseconds=1))
    return (await session.scalars(stmt)).all()


async def room_by_name(session: AsyncSession, organization_id: str, room_name: str) -> Meeting | None:
    return await session.scalar(
        select(Meeting).where(Meeting.organization_id == organization_id, Meeting.room_name == room_name)
    )


async def sessions_of(session: AsyncSession, organization_id: str, meeting_ids: Sequence[str]) -> Sequence[RoomSession]:
    if not meeting_ids:
        return []
    return (await session.scalars(
        select(RoomSession).where(RoomSession.organization_id == organization_id, RoomSession.meeting_id.in_(meeting_ids))
    )).all()


async def participant_rows_of_sessions(
    session: AsyncSession, organization_id: str, session_ids: Sequence[str]
) -> Sequence[RoomParticipant]:
    if not session_ids:
        return []
    return (await session.scalars(
        select(RoomParticipant).where(
            RoomParticipant.organization_id == organization_id, RoomParticipant.room_session_id.in_(session_ids)
        )
    )).all()


async def participants(
    session: AsyncSession, organization_id: str, room_session_id: str | None, external_id: str | None
) -> Sequence[RoomParticipant]:
    stmt = select(RoomParticipant).where(
        RoomParticipant.organization_id == organization_id, RoomParticipant.room_session_id.is_not(None)
    )
    if room_session_id is not None:
        stmt = stmt.where(RoomParticipant.room_session_id == room_session_id)
    if external_id is not None:
        stmt = stmt.where(RoomParticipant.external_id == external_id)
    return (await session.scalars(stmt)).all()


async def participant_connections(
    session: AsyncSession, organization_id: str, room_session_id: str, participant_id: str
) -> Sequence[RoomParticipant]:
    return (await session.scalars(
        select(RoomParticipant).where(
            RoomParticipant.organization_id == organization_id,
            RoomParticipant.room_session_id == room_session_id,
            RoomParticipant.participant_id == participant_id,
        ).order_by(RoomParticipant.seq)
    )).all()


async def samples_of(session: AsyncSession, participant_seq: int) -> Sequence[StatsSample]:
    return (await session.scalars(
        select(StatsSample).where(StatsSample.participant_seq == participant_seq).order_by(StatsSample.at, StatsSample.seq)
    )).all()
