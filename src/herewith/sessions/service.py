"""Room sessions and participants, recorded from the signaling layer's room events.

Rules (CONTRACT.md "Insights" and "Webhooks"):
- A room session starts when a second participant is in the room and ends when fewer than two remain for
  ``session_grace_seconds`` (default 60). Coming back within the grace period continues the session.
- Every participant connection is a ``room_participants`` row with its real join and leave times.
- Stats samples from the room page are stored per connection.
- Webhook events (``room.client.*``, ``room.session.*``) are written into the outbox in the same
  transaction as these rows, and only while the room is active (not after endDate + 1 h).

:func:`record_room_event` and :func:`end_idle_sessions` are the testable inner functions (session first,
never commit); :class:`RoomEventRecorder` is the subscriber of :class:`~herewith.rooms.events.RoomEvents`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.kit.time import add_clamped
from herewith.meetings.models import Meeting
from herewith.sessions.models import RoomParticipant, RoomSession, StatsSample
from herewith.rooms.events import ParticipantInfo, RoomEvent
from herewith.webhooks import service as webhooks

log = structlog.get_logger(__name__)

CLIENT_EVENT_TYPES = {
    "participant.joined": "room.client.joined",
    "participant.left": "room.client.left",
    "participant.knocked": "room.client.knocked",
    "participant.knock_cancelled": "room.client.knockCancelled",
}


def webhooks_allowed(meeting: Meeting, at: datetime, settings: Settings) -> bool:
    """In-room events stop when the room is deactivated (endDate + 1 h, CONTRACT.md "Webhooks")."""
    if meeting.deactivated_at is not None:
        return False
    return at < add_clamped(meeting.end_date, timedelta(seconds=settings.room_deactivate_after_seconds))


def client_data(
    meeting: Meeting, room_session_id: str | None, participant: ParticipantInfo,
    participants: Sequence[ParticipantInfo] | None,
) -> dict[str, Any]:
    """``data`` of a ``room.client.*`` event; ``participants`` (joined/left only) adds roleName and counts."""
    data: dict[str, Any] = {
        "meetingId": meeting.id,
        "roomName": meeting.room_name,
        "roomSessionId": room_session_id,
        "participantId": participant.participant_id,
        "displayName": participant.display_name,
        "metadata": participant.metadata,
        "externalId": participant.external_id,
    }
    if participants is not None:
        data["roleName"] = participant.role_name
        data["numClients"] = len(participants)
        data["numClientsByRoleName"] = dict(Counter(p.role_name for p in participants))
    return data


def session_data(meeting: Meeting, room_session: RoomSession) -> dict[str, Any]:
    """``data`` of a ``room.session.*`` event."""
    return {"meetingId": meeting.id, "roomName": meeting.room_name, "roomSessionId": room_session.id}


async def _lock_meeting(session: AsyncSession, meeting_id: str) -> Meeting | None:
    # PostgreSQL: serialises the events of one room across processes; SQLite has a single writer anyway.
    return await session.scalar(select(Meeting).where(Meeting.id == meeting_id).with_for_update())


async def _active_session(session: AsyncSession, meeting_id: str) -> RoomSession | None:
    return await session.scalar(
        select(RoomSession).where(RoomSession.meeting_id == meeting_id, RoomSession.ended_at.is_(None))
        .order_by(RoomSession.seq.desc()).limit(1).with_for_update()
    )


async def _open_rows(session: AsyncSession, meeting_id: str) -> list[RoomParticipant]:
    return list(
        (await session.scalars(
            select(RoomParticipant).where(RoomParticipant.meeting_id == meeting_id, RoomParticipant.left_at.is_(None))
            .order_by(RoomParticipant.seq)
        )).all()
    )


def _new_row(meeting: Meeting, info: ParticipantInfo, joined_at: datetime, room_session_id: str | None,
             node_id: str | None) -> RoomParticipant:
    return RoomParticipant(
        node_id=node_id,
        organization_id=meeting.organization_id,
        meeting_id=meeting.id,
        room_name=meeting.room_name,
        room_session_id=room_session_id,
        participant_id=info.participant_id,
        role_name=info.role_name,
        display_name=info.display_name,
        external_id=info.external_id,
        metadata_=info.metadata,
        user_agent=info.user_agent,
        device_id=info.device_id,
        joined_at=joined_at,
    )


def _continue_row(row: RoomParticipant, at: datetime) -> RoomParticipant:
    """Close ``row`` at ``at`` and return its unattached continuation (the person stays in the room)."""
    row.left_at = at
    return RoomParticipant(
        organization_id=row.organization_id, meeting_id=row.meeting_id, room_name=row.room_name,
        room_session_id=None, participant_id=row.participant_id, role_name=row.role_name,
        display_name=row.display_name, external_id=row.external_id, metadata_=row.metadata_,
        user_agent=row.user_agent, device_id=row.device_id, joined_at=at, node_id=row.node_id,
    )


async def _finish_session(session: AsyncSession, room_session: RoomSession, ended_at: datetime) -> None:
    """End ``room_session`` at ``ended_at``; whoever is still attached continues unattached from there."""
    room_session.ended_at = ended_at
    room_session.below_two_since = None
    rows = (await session.scalars(
        select(RoomParticipant).where(RoomParticipant.room_session_id == room_session.id, RoomParticipant.left_at.is_(None))
    )).all()
    for row in rows:
        session.add(_continue_row(row, max(ended_at, row.joined_at)))
    await session.flush()


async def record_room_event(session: AsyncSession, event: RoomEvent, settings: Settings,
                            node_id: str | None = None) -> list[str]:
    """Apply one room event to sessions/participants/samples and write its webhooks into the outbox.
    ``node_id``: the process holding the participant's connection (stored on a new participant row).

    Returns the webhook event ids written (empty when no endpoint wants them or the room is deactivated).
    Unknown meetings are ignored. Never commits.
    """
    window = timedelta(seconds=settings.webhook_retry_window_seconds)
    if event.type == "participant.stats":
        await record_stats_batch(session, [event])
        return []
    meeting = await _lock_meeting(session, event.meeting_id)
    if meeting is None:
        return []
    allowed = webhooks_allowed(meeting, event.at, settings)
    endpoints = await webhooks.repository.enabled_endpoints(session, meeting.organization_id, meeting.id)
    active = await _active_session(session, meeting.id)
    written: list[str] = []

    async def emit_at(type_: str, data: dict[str, Any], at: datetime) -> None:
        if not endpoints:
            return
        event_id = await webhooks.enqueue(session, meeting.organization_id, type_, data, at, meeting.id,
                                          window, endpoints)
        if event_id:
            written.append(event_id)

    async def emit(type_: str, data: dict[str, Any]) -> None:
        if allowed:
            await emit_at(type_, data, event.at)

    if (active is not None and active.below_two_since is not None
            and active.below_two_since + timedelta(seconds=settings.session_grace_seconds) <= event.at):
        # The grace period ran out before this event (the sweeper had not come round yet): end it first.
        ended_at = active.below_two_since
        await _finish_session(session, active, ended_at)
        if webhooks_allowed(meeting, ended_at, settings):
            await emit_at("room.session.ended", session_data(meeting, active), ended_at)
        active = None

    p = event.participant
    if event.type in ("participant.knocked", "participant.knock_cancelled"):
        await emit(CLIENT_EVENT_TYPES[event.type], client_data(meeting, active.id if active else None, p, None))
        return written

    present = {x.participant_id for x in event.participants}
    rows = await _open_rows(session, meeting.id)
    if event.type == "participant.joined":
        present.add(p.participant_id)
        reconcile = bool(event.participants)
    else:
        present.discard(p.participant_id)
        reconcile = True
    for row in rows:
        stale = reconcile and row.participant_id not in present
        if stale or (event.type == "participant.left" and row.participant_id == p.participant_id):
            row.left_at = max(event.at, row.joined_at)
    rows = [r for r in rows if r.left_at is None]

    if event.type == "participant.joined":
        mine = next((r for r in rows if r.participant_id == p.participant_id), None)
        if mine is None:
            mine = _new_row(meeting, p, event.at, None, node_id)
            session.add(mine)
            rows.append(mine)
        started = None
        if active is not None and _people(rows) >= 2:
            active.below_two_since = None  # back to two or more: the session goes on
            for row in rows:
                if row.room_session_id is None:
                    row.room_session_id = active.id
        elif active is not None and active.below_two_since is None:
            active.below_two_since = event.at  # stale rows were closed: fewer than two are really in
        elif active is None and _people(rows) >= 2:
            started = active = RoomSession(
                id=str(uuid.uuid4()), organization_id=meeting.organization_id, meeting_id=meeting.id,
                room_name=meeting.room_name, started_at=event.at,
            )
            session.add(active)
            for row in rows:
                if row.room_session_id is None:
                    row.room_session_id = active.id
        await session.flush()
        participants = event.participants or tuple(participant_info(r) for r in rows)
        await emit("room.client.joined", client_data(meeting, mine.room_session_id, p, participants))
        if started is not None:
            await emit("room.session.started", session_data(meeting, started))
        return written

    # participant.left
    if active is not None and _people(rows) < 2 and active.below_two_since is None:
        active.below_two_since = event.at
    await session.flush()
    left_row = await session.scalar(
        select(RoomParticipant).where(RoomParticipant.meeting_id == meeting.id, RoomParticipant.participant_id == p.participant_id)
        .order_by(RoomParticipant.seq.desc()).limit(1)
    )
    session_id = left_row.room_session_id if left_row is not None and left_row.room_session_id else (active.id if active else None)
    await emit("room.client.left", client_data(meeting, session_id, p, event.participants))
    return written


def _people(rows: Sequence[RoomParticipant]) -> int:
    """How many of the open rows are people: a recorder (role ``recorder``) or the live captioner (role
    ``captioner``) is in the room but never makes a room session start or last (CONTRACT.md, "Insights": a
    session is two participants)."""
    return sum(1 for row in rows if row.role_name not in ("recorder", "captioner"))


def participant_info(row: RoomParticipant) -> ParticipantInfo:
    """The :class:`ParticipantInfo` of a participant row."""
    return ParticipantInfo(participant_id=row.participant_id, role_name=row.role_name, display_name=row.display_name,
                           external_id=row.external_id, metadata=row.metadata_, user_agent=row.user_agent,
                           device_id=row.device_id)


def _sample(participant_seq: int, event: RoomEvent) -> dict[str, Any]:
    stats = event.stats or {}

    def number(key: str) -> float | None:
        value = stats.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    rate = stats.get("sampleRateMs")
    return dict(
        participant_seq=participant_seq,
        at=event.at,
        sample_rate_ms=int(rate) if isinstance(rate, (int, float)) and rate > 0 else 2000,
        packet_loss_send=number("packetLossSend"),
        packet_loss_recv=number("packetLossRecv"),
        bitrate_send=number("bitrateSend"),
        bitrate_recv=number("bitrateRecv"),
    )


_participants = RoomParticipant.__table__
# Built once (statement construction costs more than running them); Core, on the request's connection.
_PARTICIPANT_ROWS = (
    select(_participants.c.meeting_id, _participants.c.participant_id, _participants.c.seq, _participants.c.left_at)
    .where(_participants.c.participant_id.in_(bindparam("participant_ids", expanding=True)))
    .order_by(_participants.c.seq)
)
_INSERT_SAMPLES = insert(StatsSample.__table__)


async def record_stats_batch(session: AsyncSession, events: Sequence[RoomEvent]) -> int:
    """Store ``participant.stats`` samples: one participant look-up query and one flush for the whole batch.

    Each sample goes to the participant's current row (an open row first, else the newest). Samples of
    unknown participants are dropped. Returns the number stored.
    """
    keys = {(e.meeting_id, e.participant.participant_id) for e in events}
    if not keys:
        return 0
    conn = await session.connection()
    rows = await conn.execute(_PARTICIPANT_ROWS, {"participant_ids": list({k[1] for k in keys})})
    current: dict[tuple[str, str], tuple[bool, int]] = {}
    for meeting_id, participant_id, seq, left_at in rows:
        key = (meeting_id, participant_id)
        candidate = (left_at is None, seq)  # open rows win, then the newest
        if key in keys and (key not in current or candidate >= current[key]):
            current[key] = candidate
    samples = [_sample(current[(e.meeting_id, e.participant.participant_id)][1], e)
               for e in events if (e.meeting_id, e.participant.participant_id) in current]
    if samples:
        # One Core executemany: a busy server's samples of a quarter second in one statement.
        await conn.execute(_INSERT_SAMPLES, samples)
    return len(samples)


async def end_idle_sessions(session: AsyncSession, now: datetime, settings: Settings) -> list[str]:
    """End sessions that have had fewer than two participants for the grace period; returns their ids.

    Emits ``room.session.ended`` (unless the room is deactivated). Rows are claimed with SKIP LOCKED on
    PostgreSQL so several processes can run this. Never commits.
    """
    grace = timedelta(seconds=settings.session_grace_seconds)
    due = (await session.scalars(
        select(RoomSession.id).where(RoomSession.ended_at.is_(None), RoomSession.below_two_since.is_not(None),
                                       RoomSession.below_two_since <= now - grace)
        .order_by(RoomSession.seq).limit(100)
    )).all()
    ended: list[str] = []
    for session_id in due:
        # Lock order as in record_room_event (meeting, then session); a room busy elsewhere is skipped.
        meeting_id = await session.scalar(select(RoomSession.meeting_id).where(RoomSession.id == session_id))
        meeting = await session.scalar(
            select(Meeting).where(Meeting.id == meeting_id).with_for_update(skip_locked=True)
        )
        if meeting is None:
            continue
        room_session = await session.scalar(select(RoomSession).where(RoomSession.id == session_id).with_for_update())
        if room_session is None or room_session.ended_at is not None or room_session.below_two_since is None:
            continue
        if room_session.below_two_since > now - grace:
            continue
        ended_at = room_session.below_two_since
        await _finish_session(session, room_session, ended_at)
        ended.append(room_session.id)
        if webhooks_allowed(meeting, ended_at, settings):
            await webhooks.enqueue(session, meeting.organization_id, "room.session.ended",
                                   session_data(meeting, room_session), ended_at, meeting.id,
                                   timedelta(seconds=settings.webhook_retry_window_seconds))
    return ended


async def close_room(session: AsyncSession, meeting_id: str, now: datetime) -> None:
    """The room is gone (deactivated or deleted): end its session and close every open row at ``now``.

    No webhooks (in-room events stop at deactivation). Never commits.
    """
    active = await _active_session(session, meeting_id)
    if active is not None:
        await _finish_session(session, active, active.below_two_since or now)
    for row in await _open_rows(session, meeting_id):
        row.left_at = max(now, row.joined_at)
    await session.flush()


# Stats samples (every ~5 s per participant) are written in batches at most this late: at 2,000
# participants that is one transaction a second instead of 400 (bench/signaling.py).
STATS_FLUSH_SECONDS = 0.25  # short, so each write holds the event loop briefly (SQLite runs on it)


class RoomEventRecorder:
    """The subscriber of :class:`~herewith.rooms.events.RoomEvents` that records room sessions and
    participants: one transaction per event, then ``webhook_wakeup`` is set for the delivery worker.

    Events of one room are applied one at a time (an in-process lock per meeting, plus the meeting row lock
    on PostgreSQL). Never raises: a failure is logged and the event dropped.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                 webhook_wakeup: asyncio.Event, node_id: str | None = None) -> None:
        self._sessionmaker = sessionmaker
        self._node_id = node_id
        self._settings = settings
        self._webhook_wakeup = webhook_wakeup
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # meeting id -> (lock, users)
        self._pending_stats: list[RoomEvent] = []
        self._stats_timer: asyncio.Task[None] | None = None

    async def handle_batch(self, events: list[RoomEvent]) -> None:
        """Events in order: state changes one transaction each (they carry the webhook outbox); stats
        samples are buffered and written together, at most ``STATS_FLUSH_SECONDS`` later, and always before
        a ``participant.left`` is recorded (so a participant's samples are stored when it has left).
        Samples only append rows, so buffering them keeps each on its participant's row. Never raises."""
        for event in events:
            if event.type == "participant.stats":
                self._pending_stats.append(event)
                continue
            if event.type == "participant.left" and self._pending_stats:
                await self.flush_stats()
            await self(event)
        if self._pending_stats and (self._stats_timer is None or self._stats_timer.done()):
            self._stats_timer = asyncio.create_task(self._flush_stats_later())

    async def _flush_stats_later(self) -> None:
        await asyncio.sleep(STATS_FLUSH_SECONDS)
        await self.flush_stats()

    async def flush_stats(self) -> None:
        """Write every buffered stats sample in one transaction (also called at shutdown). Never raises."""
        batch, self._pending_stats = self._pending_stats, []
        if not batch:
            return
        try:
            await in_transaction(self._sessionmaker, lambda s: record_stats_batch(s, batch))
        except Exception:  # noqa: BLE001 - sinks must not raise into the live room
            log.exception("stats_samples_not_recorded", count=len(batch))

    async def __call__(self, event: RoomEvent) -> None:
        lock, users = self._locks.get(event.meeting_id, (asyncio.Lock(), 0))
        self._locks[event.meeting_id] = (lock, users + 1)
        try:
            async with lock:
                written = await in_transaction(
                    self._sessionmaker, lambda s: record_room_event(s, event, self._settings, self._node_id)
                )
            if written:
                self._webhook_wakeup.set()
        except Exception:  # noqa: BLE001 - sinks must not raise into the live room
            log.exception("room_event_not_recorded", type=event.type, meeting_id=event.meeting_id)
        finally:
            lock, users = self._locks[event.meeting_id]
            if users == 1:
                del self._locks[event.meeting_id]
            else:
                self._locks[event.meeting_id] = (lock, users - 1)
