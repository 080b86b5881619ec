"""Server processes (nodes) and what a dead one leaves behind (CONTRACT.md, "Insights" and "Webhooks").

Every process registers a :class:`~herewith.sessions.models.Node` row at start, renews ``last_seen_at``
every ``node_heartbeat_seconds`` and sets ``stopped_at`` on a clean shutdown; each participant row names the
node that holds its connection. A process killed mid-call cannot say goodbye, so every node, on start and
with every heartbeat, looks for nodes that stopped or whose heartbeat is older than
``node_dead_after_seconds`` and closes their open participant rows as if those people left at the node's
last sign of life (``stopped_at``, else ``last_seen_at``): each gets its ``room.client.left`` webhook with
honest counts, and a room session left with fewer than two people ends after the grace period at that time
(:func:`herewith.sessions.service.end_idle_sessions`). Nodes are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several nodes may clean up at once without doing it twice.

Usage::

    await register(session, node_id, now)            # at start
    await beat(session, node_id, now)                # every node_heartbeat_seconds
    closed = await close_dead_nodes(session, node_id, now, settings)
    await mark_stopped(session, node_id, now)        # clean shutdown
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.rooms.events import RoomEvent
from herewith.sessions.models import Node, RoomParticipant
from herewith.sessions.service import participant_info, record_room_event


async def register(session: AsyncSession, node_id: str, now: datetime) -> None:
    """Add this process's node row (``started_at`` = ``last_seen_at`` = ``now``). Never commits."""
    session.add(Node(id=node_id, started_at=now, last_seen_at=now))
    await session.flush()


async def beat(session: AsyncSession, node_id: str, now: datetime) -> None:
    """Renew this process's proof of life. Never commits."""
    await session.execute(update(Node).where(Node.id == node_id).values(last_seen_at=now))


async def mark_stopped(session: AsyncSession, node_id: str, now: datetime) -> None:
    """A clean shutdown: the node holds no connection from ``now`` on. Never commits."""
    await session.execute(update(Node).where(Node.id == node_id).values(last_seen_at=now, stopped_at=now))


async def close_dead_nodes(session: AsyncSession, own_node_id: str, now: datetime, settings: Settings,
                           limit: int = 10) -> int:
    """Close the open participant rows of up to ``limit`` dead nodes (not ``own_node_id``); returns how many
    rows were closed. A node with nothing left open is deleted. Webhooks are written as for real leaves
    (only while each room is active). Never commits."""
    dead_before = now - timedelta(seconds=settings.node_dead_after_seconds)
    nodes = (await session.scalars(
        select(Node).where(Node.id != own_node_id, or_(Node.stopped_at.is_not(None), Node.last_seen_at < dead_before))
        .order_by(Node.last_seen_at).limit(limit).with_for_update(skip_locked=True)
    )).all()
    closed = 0
    for node in nodes:
        gone_at = node.stopped_at or node.last_seen_at
        rows = (await session.scalars(
            select(RoomParticipant).where(RoomParticipant.node_id == node.id, RoomParticipant.left_at.is_(None))
            .order_by(RoomParticipant.meeting_id, RoomParticipant.seq)
        )).all()
        by_meeting: dict[str, list[RoomParticipant]] = {}
        for row in rows:
            by_meeting.setdefault(row.meeting_id, []).append(row)
        for meeting_id, dead in by_meeting.items():
            dead_seqs = {row.seq for row in dead}
            others = (await session.scalars(
                select(RoomParticipant).where(RoomParticipant.meeting_id == meeting_id,
                                              RoomParticipant.left_at.is_(None),
                                              RoomParticipant.seq.not_in(dead_seqs))
                .order_by(RoomParticipant.seq)
            )).all()
            for i, row in enumerate(dead):
                # Everyone still in after this one left: the other nodes' people and the dead ones not yet closed.
                remaining = tuple(participant_info(r) for r in (*others, *dead[i + 1:]))
                event = RoomEvent(type="participant.left", room_name=row.room_name, meeting_id=meeting_id,
                                  organization_id=row.organization_id, participant=participant_info(row),
                                  at=max(gone_at, row.joined_at), participants=remaining)
                await record_room_event(session, event, settings)
                closed += 1
        still_open = await session.scalar(
            select(exists().where(RoomParticipant.node_id == node.id, RoomParticipant.left_at.is_(None))))
        if not still_open:
            await session.execute(delete(Node).where(Node.id == node.id))
    await session.flush()
    return closed
