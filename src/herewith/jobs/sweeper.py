"""Room lifecycle (CONTRACT.md "Meetings", Lifecycle): rooms expire by themselves.

- ``endDate + room_deactivate_after_seconds`` (1 h): the room is deactivated. ``deactivated_at`` is set
  (joins get the 410 page; roomKeys expire at the same instant), its session is ended and every open
  participant row closed, no more webhooks are written for it, and :class:`~herewith.meetings.events.MeetingEvents`
  publishes it as ended (``"expired"``), so the signaling layer tells the people still inside and disconnects them.
- ``endDate + room_delete_after_seconds`` (23 h, so within the contract's 24 h): the meeting is deleted
  (``deleted_at``) and its undelivered webhook events for in-room activity are kept (they describe what
  happened before deactivation). Insights rows stay: they are the organization's usage history.
- Safe with several processes: due meetings are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL. A process that was down catches up on its first sweep (both steps in one go when both are due).

:func:`sweep_once` is the testable inner function (session first, never commits); :class:`Sweeper` runs it
with the rest of the periodic clean-up, and :meth:`Sweeper.run` is the loop started with the app, driven by
the process's clock so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.jobs.rounds import run_rounds
from herewith.kit.time import Clock
from herewith.meetings.events import MeetingEvents
from herewith.meetings.models import Meeting
from herewith.sessions import service as sessions
from herewith.webhooks import service as webhooks

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 600.0


@dataclass
class SweepResult:
    """Meetings deactivated (their hooks still to be called after commit) and deleted in one sweep."""

    deactivated: list[Meeting] = field(default_factory=list)
    deleted: list[Meeting] = field(default_factory=list)


async def sweep_once(session: AsyncSession, now: datetime, settings: Settings, limit: int = 200) -> SweepResult:
    """Deactivate and delete the meetings that are due at ``now`` (aware UTC). Never commits.

    The caller commits and then publishes ``result.deactivated`` as ended (``"expired"``).
    """
    deactivate_cutoff = now - timedelta(seconds=settings.room_deactivate_after_seconds)
    delete_cutoff = now - timedelta(seconds=settings.room_delete_after_seconds)
    due = (await session.scalars(
        select(Meeting)
        .where(
            Meeting.deleted_at.is_(None),
            or_(
                (Meeting.deactivated_at.is_(None) & (Meeting.end_date <= deactivate_cutoff)),
                Meeting.end_date <= delete_cutoff,
            ),
        )
        .order_by(Meeting.end_date, Meeting.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )).all()
    result = SweepResult()
    for meeting in due:
        if meeting.deactivated_at is None:
            meeting.deactivated_at = now
            await sessions.close_room(session, meeting.id, now)
            result.deactivated.append(meeting)
        if meeting.end_date <= delete_cutoff:
            meeting.deleted_at = now
            result.deleted.append(meeting)
    await session.flush()
    return result


class Sweeper:
    """The periodic clean-up of one process: meeting lifecycle, idle room sessions, old webhook events.

    Usage::

        sweeper = Sweeper(sessionmaker, settings, clock, meeting_events, webhook_wakeup)
        await sweeper.run_once()      # one round (tests)
        await sweeper.run()           # every ``sweeper_interval_seconds`` until cancelled
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 meeting_events: MeetingEvents, webhook_wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self._meeting_events = meeting_events
        self._webhook_wakeup = webhook_wakeup
        self._purged_at: datetime | None = None

    async def run_once(self) -> SweepResult:
        """One sweep in its own transaction, then the deactivated meetings published as ended; also ends
        idle room sessions and, every ten minutes, removes webhook events older than
        ``webhook_log_retention_days`` that are no longer pending."""
        settings = self._settings
        now = self._clock.now()
        result = await in_transaction(self._sessionmaker, lambda s: sweep_once(s, now, settings))
        for meeting in result.deactivated:
            log.info("room_deactivated", meeting_id=meeting.id, room_name=meeting.room_name)
            await self._meeting_events.ended(meeting, "expired")
        for meeting in result.deleted:
            log.info("room_deleted", meeting_id=meeting.id, room_name=meeting.room_name)
        if self._purged_at is None or (now - self._purged_at).total_seconds() >= PURGE_EVERY_SECONDS:
            cutoff = now - timedelta(days=settings.webhook_log_retention_days)
            await in_transaction(self._sessionmaker, lambda s: webhooks.purge_old_events(s, cutoff))
            self._purged_at = now
        ended = await in_transaction(self._sessionmaker,
                                     lambda s: sessions.end_idle_sessions(s, self._clock.now(), settings))
        if ended:
            self._webhook_wakeup.set()
        return result

    async def run(self) -> None:
        """Sweep every ``sweeper_interval_seconds`` until cancelled (first sweep at once: catch-up after downtime)."""
        await run_rounds(self.run_once, None, lambda: self._settings.sweeper_interval_seconds, "sweeper_error")
