"""Room lifecycle (CONTRACT.md "Meetings", Lifecycle): rooms expire by themselves.

- ``endDate + room_deactivate_after_seconds`` (1 h): the room is deactivated. ``deactivated_at`` is set
  (joins get the 410 page; roomKeys expire at the same instant), its session is ended and every open
  participant row closed, no more webhooks are written for it, and ``app.state.meeting_deleted_hooks`` are
  called with reason ``"expired"`` so the signaling layer tells the people still inside and disconnects them.
- ``endDate + room_delete_after_seconds`` (23 h, so within the contract's 24 h): the meeting is deleted
  (``deleted_at``) and its undelivered webhook events for in-room activity are kept (they describe what
  happened before deactivation). Insights rows stay: they are the organization's usage history.
- Safe with several processes: due meetings are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL. A process that was down catches up on its first sweep (both steps in one go when both are due).

:func:`sweep_once` is the testable inner function (session first, never commits); :func:`run_sweeper` is
the loop started with the app, driven by ``app.state.clock`` so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from herewith.config import Settings
from herewith.kit.transactions import in_transaction
from herewith.meetings.models import Meeting
from herewith.rooms import sessions
from herewith.webhooks import service as webhooks

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 600.0


@dataclass
class SweepResult:
    """Meetings deactivated (their hooks still to be called after commit) and deleted in one sweep."""

    deactivated: list[Meeting] = field(default_factory=list)
    deleted: list[Meeting] = field(default_factory=list)


async def sweep_once(session: AsyncSession, now: datetime, settings: Settings | None = None, limit: int = 200) -> SweepResult:
    """Deactivate and delete the meetings that are due at ``now`` (aware UTC). Never commits.

    The caller commits and then calls the ``"expired"`` hooks for ``result.deactivated``.
    """
    settings = settings or Settings()
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


async def run_sweep(app) -> SweepResult:  # noqa: ANN001 - FastAPI app
    """One sweep in its own transaction, then the ``"expired"`` hooks; also ends idle room sessions and, every
    ten minutes, removes webhook events older than ``webhook_log_retention_days`` that are no longer pending."""
    settings: Settings = app.state.settings
    now = app.state.clock.now()
    result = await in_transaction(app.state.sessionmaker, lambda s: sweep_once(s, now, settings))
    for meeting in result.deactivated:
        log.info("room_deactivated", meeting_id=meeting.id, room_name=meeting.room_name)
        for hook in app.state.meeting_deleted_hooks:
            try:
                await hook(meeting, "expired")
            except Exception:  # noqa: BLE001 - one failing hook must not stop the others
                log.exception("meeting_hook_failed", meeting_id=meeting.id)
    for meeting in result.deleted:
        log.info("room_deleted", meeting_id=meeting.id, room_name=meeting.room_name)
    last_purge = getattr(app.state, "webhook_purged_at", None)
    if last_purge is None or (now - last_purge).total_seconds() >= PURGE_EVERY_SECONDS:
        cutoff = now - timedelta(days=settings.webhook_log_retention_days)
        await in_transaction(app.state.sessionmaker, lambda s: webhooks.purge_old_events(s, cutoff))
        app.state.webhook_purged_at = now
    ended = await in_transaction(app.state.sessionmaker, lambda s: sessions.end_idle_sessions(s, app.state.clock.now(), settings))
    if ended:
        wakeup = getattr(app.state, "webhook_wakeup", None)
        if wakeup is not None:
            wakeup.set()
    return result


async def run_sweeper(app) -> None:  # noqa: ANN001 - FastAPI app
    """Sweep every ``sweeper_interval_seconds`` until cancelled (first sweep at once: catch-up after downtime)."""
    while True:
        try:
            await run_sweep(app)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep sweeping after a database hiccup
            log.exception("sweeper_error")
        await asyncio.sleep(app.state.settings.sweeper_interval_seconds)
