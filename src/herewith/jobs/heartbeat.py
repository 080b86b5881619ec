"""This process's proof of life, and the clean-up after processes that died (:mod:`herewith.sessions.nodes`).

Every ``node_heartbeat_seconds``: renew this node's ``last_seen_at``, then close the participants of nodes
that stopped or went silent for ``node_dead_after_seconds`` (their webhooks wake the delivery worker), and
store the live captions such a node kept for its running sessions as their transcripts
(:func:`herewith.captions.service.store_orphaned_captions`).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.captions import service as captions
from herewith.config import Settings
from herewith.db.transactions import in_transaction
from herewith.kit.time import Clock
from herewith.sessions import nodes

log = structlog.get_logger(__name__)


class Heartbeat:
    """The node's heartbeat loop.

    Usage::

        heartbeat = Heartbeat(sessionmaker, settings, clock, node_id, webhook_wakeup)
        await heartbeat.start()      # registers the node and cleans up after dead ones, once
        await heartbeat.run()        # until cancelled
        await heartbeat.stop()       # clean shutdown: stopped_at
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 node_id: str, webhook_wakeup: asyncio.Event) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._clock = clock
        self.node_id = node_id
        self._webhook_wakeup = webhook_wakeup

    async def start(self) -> None:
        """Register this node, then close what dead nodes left open (a restart after a crash)."""
        await in_transaction(self._sessionmaker, lambda s: nodes.register(s, self.node_id, self._clock.now()))
        await self.clean_up()

    async def clean_up(self) -> int:
        """One round of :func:`~herewith.sessions.nodes.close_dead_nodes`; returns the rows closed."""
        closed = await in_transaction(
            self._sessionmaker,
            lambda s: nodes.close_dead_nodes(s, self.node_id, self._clock.now(), self._settings))
        if closed:
            log.info("dead_node_participants_closed", count=closed)
            self._webhook_wakeup.set()
        stored = await in_transaction(
            self._sessionmaker,
            lambda s: captions.store_orphaned_captions(s, self.node_id, self._clock.now(), self._settings))
        if stored:
            log.info("dead_node_captions_stored", transcription_ids=stored)
            self._webhook_wakeup.set()
        return closed

    async def run(self) -> None:
        """Beat and clean up every ``node_heartbeat_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self._settings.node_heartbeat_seconds)
            try:
                await in_transaction(self._sessionmaker, lambda s: nodes.beat(s, self.node_id, self._clock.now()))
                await self.clean_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep beating after a database hiccup
                log.exception("heartbeat_error")

    async def stop(self) -> None:
        """Mark the node stopped (after its connections were closed and their events recorded)."""
        await in_transaction(self._sessionmaker, lambda s: nodes.mark_stopped(s, self.node_id, self._clock.now()))
