"""The summary job: claim ``in_progress`` summaries and make them
(:func:`herewith.summaries.service.run_summary`). Woken when a summary is asked for, else every
``transcription_poll_seconds``; a dead process's claims lapse with its node row, as for transcriptions.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.jobs.rounds import run_rounds
from herewith.kit.time import Clock
from herewith.summaries import repository, service

log = structlog.get_logger(__name__)


class SummaryJob:
    """Usage::

        job = SummaryJob(sessionmaker, settings, clock, node_id, wakeup)
        await job.run_once()     # one round (tests)
        await job.run()          # until cancelled
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, node_id: str,
                 wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self.node_id = node_id
        self._wakeup = wakeup

    async def run_once(self) -> dict[str, int]:
        """One round; returns ``{"completed", "failed", "retry"}`` counts."""
        counts = {"completed": 0, "failed": 0, "retry": 0}
        while True:
            summary_id = await in_transaction(self._sessionmaker, lambda session: repository.claim(
                session, self.node_id, self._clock.now(), self._settings.node_dead_after_seconds))
            if summary_id is None:
                break
            try:
                state = await service.run_summary(self._sessionmaker, self._settings, summary_id, self.node_id,
                                                  self._clock.now)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug in one summary must not stop the others
                log.exception("summary_error", summary_id=summary_id)
                state = await service.release_summary(self._sessionmaker, summary_id, self.node_id)
            counts[state if state in counts else "retry"] += 1
            if state not in ("completed", "failed"):
                break
        return counts

    async def run(self) -> None:
        """Rounds until cancelled: at once when woken, else every ``transcription_poll_seconds``."""
        await run_rounds(self.run_once, self._wakeup, lambda: self._settings.transcription_poll_seconds,
                         "summary_job_error")
