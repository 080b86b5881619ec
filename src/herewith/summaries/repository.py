"""All SQL of the summaries domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.sessions.models import Node
from herewith.summaries.models import IN_PROGRESS, Summary
from herewith.transcriptions.models import Transcription

SORT_COLUMNS: dict[str, Any] = {"roomName": Summary.room_name, "startDate": Summary.started_at,
                                "createdAt": Summary.created_at}


async def get(session: AsyncSession, summary_id: str, for_update: bool = False) -> Summary | None:
    stmt = select(Summary).where(Summary.id == summary_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get_for_organization(session: AsyncSession, organization_id: str, summary_id: str) -> Summary | None:
    """The organization's summary with that id, unless deleted."""
    return await session.scalar(select(Summary).where(
        Summary.id == summary_id, Summary.organization_id == organization_id, Summary.deleted_at.is_(None)))


async def transcription_for_organization(session: AsyncSession, organization_id: str,
                                         transcription_id: str) -> Transcription | None:
    """The organization's transcription with that id, unless deleted."""
    return await session.scalar(select(Transcription).where(
        Transcription.id == transcription_id, Transcription.organization_id == organization_id,
        Transcription.deleted_at.is_(None)))


async def transcription(session: AsyncSession, transcription_id: str) -> Transcription | None:
    return await session.scalar(select(Transcription).where(Transcription.id == transcription_id))


async def list_page(session: AsyncSession, organization_id: str, sort_field: str, descending: bool,
                    after: tuple[Any, int] | None, limit: int) -> Sequence[Summary]:
    """Up to ``limit`` live summaries ordered by ``sort_field`` then ``seq``, strictly after ``after``."""
    column = SORT_COLUMNS[sort_field]
    stmt = select(Summary).where(Summary.organization_id == organization_id, Summary.deleted_at.is_(None))
    if after is not None:
        value, seq = after
        if descending:
            stmt = stmt.where(or_(column < value, and_(column == value, Summary.seq < seq)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, Summary.seq > seq)))
    order = (column.desc(), Summary.seq.desc()) if descending else (column.asc(), Summary.seq.asc())
    return (await session.scalars(stmt.order_by(*order).limit(limit))).all()


async def claim(session: AsyncSession, node_id: str, now: datetime, dead_after_seconds: float) -> str | None:
    """Take one ``in_progress`` summary no live process holds (as
    :func:`herewith.transcriptions.repository.claim`); its id, or None. Never commits."""
    alive = select(Node.id).where(Node.stopped_at.is_(None),
                                  Node.last_seen_at >= now - timedelta(seconds=dead_after_seconds))
    free = or_(Summary.node_id.is_(None), Summary.node_id.not_in(alive))
    candidates = (await session.scalars(
        select(Summary.id).where(Summary.state == IN_PROGRESS, Summary.deleted_at.is_(None), free)
        .order_by(Summary.seq).limit(5))).all()
    for summary_id in candidates:
        result = await session.execute(
            update(Summary).where(Summary.id == summary_id, Summary.state == IN_PROGRESS,
                                  Summary.deleted_at.is_(None), free)
            .values(node_id=node_id, attempts=Summary.attempts + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            return summary_id
    return None
