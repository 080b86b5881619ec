"""The transcription job: claim ``in_progress`` recording transcriptions and run them.

Every ``transcription_poll_seconds``, or at once when ``wakeup`` is set (a transcription was asked for),
transcriptions that no live process holds are claimed one at a time (a conditional UPDATE that also takes
over those held by a process that died, :func:`herewith.transcriptions.repository.claim`) and run
(:func:`herewith.transcriptions.pipeline.run_transcription`). All state is in the database, so a process
killed mid-job leaves a claim that lapses with its node row and the job runs again after a restart (or on
another node). The loop is a thin wrapper around those testable functions (polar's convention).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.jobs.rounds import run_rounds
from herewith.kit.time import Clock
from herewith.transcriptions import pipeline, repository
from herewith.transcriptions.transcriber import Transcriber

log = structlog.get_logger(__name__)


class TranscriptionJob:
    """Usage::

        job = TranscriptionJob(sessionmaker, settings, clock, node_id, transcriber, wakeup, webhook_wakeup)
        await job.run_once()     # one round (tests)
        await job.run()          # until cancelled
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, node_id: str,
                 transcriber: Transcriber, wakeup: asyncio.Event, webhook_wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self.node_id = node_id
        self._transcriber = transcriber
        self._wakeup = wakeup
        self._webhook_wakeup = webhook_wakeup

    async def run_once(self) -> dict[str, int]:
        """One round; returns ``{"ready", "failed", "retry"}`` counts."""
        counts = {"ready": 0, "failed": 0, "retry": 0}
        s = self._settings
        while True:
            transcription_id = await in_transaction(self._sessionmaker, lambda session: repository.claim(
                session, self.node_id, self._clock.now(), s.node_dead_after_seconds))
            if transcription_id is None:
                break
            log.info("transcription_claimed", transcription_id=transcription_id, node_id=self.node_id)
            try:
                state = await pipeline.run_transcription(self._sessionmaker, s, self._transcriber, transcription_id,
                                                         self.node_id, self._clock.now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an unexpected error must not keep the claim forever
                log.exception("transcription_error", transcription_id=transcription_id)
                state = await pipeline.release(self._sessionmaker, s, transcription_id, self.node_id, self._clock.now,
                                               f"{type(exc).__name__}: {exc}")
            counts["ready" if state == "ready" else "failed" if state == "failed" else "retry"] += 1
            self._webhook_wakeup.set()
            if state == "in_progress":
                break  # try again after the poll interval, not in a tight loop
        return counts

    async def run(self) -> None:
        """Rounds until cancelled: at once when woken, else every ``transcription_poll_seconds``."""
        await run_rounds(self.run_once, self._wakeup, lambda: self._settings.transcription_poll_seconds,
                         "transcription_job_error")
