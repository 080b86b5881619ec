"""The webhook delivery loop: keeps a :class:`~herewith.webhooks.delivery.DeliveryPool` full until cancelled.

The pool is filled whenever ``wakeup`` is set (an event was written to the outbox, or a delivery ended and
freed a place) or every ``webhook_poll_seconds`` (retries that came due); fills follow each other at once
while every place asked for was taken. Deliveries go through
:func:`~herewith.webhooks.targets.delivery_client`: every connection is checked against the target policy
built from the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.webhooks.delivery import DeliveryPool
from herewith.webhooks.targets import TargetPolicy, delivery_client

log = structlog.get_logger(__name__)


async def run_webhook_delivery(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                               now: Callable[[], datetime], wakeup: asyncio.Event) -> None:
    """Deliver until cancelled: fill the pool whenever ``wakeup`` is set or every ``webhook_poll_seconds``.
    On cancellation the requests in flight are cancelled too; their events are sent again after their lease."""
    async with delivery_client(TargetPolicy.from_settings(settings)) as http:
        pool = DeliveryPool(sessionmaker, http, settings, now, wakeup)
        try:
            while True:
                wakeup.clear()
                try:
                    started, asked = await pool.fill()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the worker must survive a database hiccup
                    log.exception("webhook_worker_error")
                    started, asked = 0, 0
                if started and started == asked and pool.free:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=settings.webhook_poll_seconds)
        finally:
            await pool.aclose()
