"""The recording job: finalize stopped recordings, recover those of dead nodes, remove deleted ones' files.

Every ``recording_poll_seconds``, or at once when ``wakeup`` is set (a recording was stopped or deleted):

1. recordings held by a dead node (:func:`herewith.recordings.repository.release_orphans`: its heartbeat is
   older than ``node_dead_after_seconds``, or it stopped) are released: a live one becomes ``processing``
   with what its node wrote to disk, a half-finalized one goes back to the queue;
2. deleted recordings' files go (:func:`herewith.recordings.finalize.purge_deleted`);
3. ``processing`` recordings are claimed one at a time (a conditional UPDATE, so two nodes never take the
   same) and finalized (:func:`herewith.recordings.finalize.finalize_recording`).

All state is in the database, so a node killed mid-finalization leaves a claim that lapses with the node
and is taken again. The loop is a thin wrapper around those testable functions (polar's convention).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.jobs.rounds import run_rounds
from herewith.kit.time import Clock
from herewith.recordings import finalize, repository

log = structlog.get_logger(__name__)


class RecordingJob:
    """Usage::

        job = RecordingJob(sessionmaker, settings, clock, node_id, recording_wakeup, webhook_wakeup)
        await job.run_once()     # one round (tests)
        await job.run()          # until cancelled
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, node_id: str,
                 wakeup: asyncio.Event, webhook_wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self.node_id = node_id
        self._wakeup = wakeup
        self._webhook_wakeup = webhook_wakeup

    async def run_once(self) -> dict[str, int]:
        """One round; returns ``{"released", "purged", "ready", "failed", "retry"}`` counts."""
        s = self._settings
        counts = {"released": 0, "purged": 0, "ready": 0, "failed": 0, "retry": 0}
        released = await in_transaction(self._sessionmaker, lambda session: repository.release_orphans(
            session, self._clock.now(), s.node_dead_after_seconds))
        counts["released"] = len(released)
        if released:
            log.info("recordings_of_dead_nodes_released", count=len(released))
        counts["purged"] = await finalize.purge_deleted(self._sessionmaker, s, self._clock.now)
        while True:
            recording_id = await in_transaction(self._sessionmaker,
                                                lambda session: repository.claim_for_finalize(session, self.node_id))
            if recording_id is None:
                break
            state = await finalize.finalize_recording(self._sessionmaker, s, recording_id, self._clock.now)
            counts["ready" if state == "ready" else "failed" if state == "failed" else "retry"] += 1
            if state == "ready":
                self._webhook_wakeup.set()
            if state == "processing":
                break  # it failed now; try again after the poll interval, not in a tight loop
        return counts

    async def run(self) -> None:
        """Rounds until cancelled: at once when woken, else every ``recording_poll_seconds``."""
        await run_rounds(self.run_once, self._wakeup, lambda: self._settings.recording_poll_seconds,
                         "recording_job_error")
