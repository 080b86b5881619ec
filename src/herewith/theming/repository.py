"""All SQL of room theming."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.meetings.models import Meeting
from herewith.theming.models import RoomThemeRow


async def get_live_meeting(session: AsyncSession, room_name: str, *, lock: bool = False) -> Meeting | None:
    """The not-deleted meeting of a room (``room_name`` with its leading slash), any organization.

    ``lock``: take a row lock (PostgreSQL ``FOR UPDATE``) so theme writes to one room are serialised.
    """
    stmt = select(Meeting).where(Meeting.room_name == room_name, Meeting.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get(session: AsyncSession, meeting_id: str) -> RoomThemeRow | None:
    """The theme row of a meeting, or ``None`` when the room still has the defaults."""
    return await session.scalar(select(RoomThemeRow).where(RoomThemeRow.meeting_id == meeting_id))


async def get_or_create(session: AsyncSession, meeting_id: str, now: datetime) -> RoomThemeRow:
    """The theme row of a meeting, created with the defaults when missing (a concurrent insert wins)."""
    row = await get(session, meeting_id)
    if row is not None:
        return row
    row = RoomThemeRow(
        meeting_id=meeting_id, tokens_preset="default",
        room_background_palette="default", room_background_theme="default",
        knock_background_palette="default", knock_background_theme="default", updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = await get(session, meeting_id)
        assert existing is not None
        return existing
    return row
