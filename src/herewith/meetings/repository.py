"""All SQL of the meetings domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.meetings.models import Meeting

# Statements built once: SQLAlchemy computes a statement's cache key once per statement object and finds
# its compiled form in the engine's cache; each call only binds its values.
# inline(): no RETURNING of the new ``seq`` on PostgreSQL, which nothing reads (SQLAlchemy's "implicit
# returning" of a Core INSERT's primary key).
INSERT_MEETING = insert(Meeting.__table__).inline()
LIVE_MEETING_OF_ORGANIZATION = select(Meeting).where(
    Meeting.id == bindparam("meeting_id"), Meeting.organization_id == bindparam("organization_id"),
    Meeting.deleted_at.is_(None),
)


async def add(session: AsyncSession, values: dict[str, Any]) -> None:
    """INSERT one meeting row in the session's transaction: ``values`` by column name (``seq`` is assigned by
    the database; columns left out take their defaults from :class:`Meeting`). One Core statement: no ORM
    object and no flush, so the session's identity map does not hold the row."""
    await session.execute(INSERT_MEETING, values)


async def get_for_organization(session: AsyncSession, organization_id: str, meeting_id: str) -> Meeting | None:
    """The live (not deleted) meeting with that id owned by that organization."""
    return await session.scalar(LIVE_MEETING_OF_ORGANIZATION,
                                {"meeting_id": meeting_id, "organization_id": organization_id})


async def get_by_id(session: AsyncSession, meeting_id: str) -> Meeting | None:
    """The meeting with that id, whatever its state (deleted and deactivated ones included)."""
    return await session.scalar(select(Meeting).where(Meeting.id == meeting_id))


async def get_by_room_name(session: AsyncSession, room_name: str) -> Meeting | None:
    """The meeting of a room (deleted ones included, so callers can tell 410 from 404)."""
    return await session.scalar(select(Meeting).where(Meeting.room_name == room_name))


async def list_page(
    session: AsyncSession, organization_id: str, after_seq: int | None, limit: int, room_name_prefix: str | None
) -> Sequence[Meeting]:
    """Up to ``limit`` live meetings with ``seq`` greater than ``after_seq``, oldest first."""
    stmt = select(Meeting).where(Meeting.organization_id == organization_id, Meeting.deleted_at.is_(None))
    if after_seq is not None:
        stmt = stmt.where(Meeting.seq > after_seq)
    if room_name_prefix:
        escaped = room_name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Meeting.room_name.like(escaped + "%", escape="\\"))
    return (await session.scalars(stmt.order_by(Meeting.seq).limit(limit))).all()
