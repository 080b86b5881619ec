"""The webhook delivery loop: rounds of :func:`~herewith.webhooks.delivery.deliver_due` until cancelled.

A round runs whenever ``wakeup`` is set (an event was written to the outbox) or every
``webhook_poll_seconds``; rounds follow each other at once while there is work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.webhooks.delivery import deliver_due

log = structlog.get_logger(__name__)


async def run_webhook_delivery(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                               now: Callable[[], datetime], wakeup: asyncio.Event) -> None:
    """Deliver until cancelled: a round whenever ``wakeup`` is set or every ``webhook_poll_seconds``."""
    async with httpx.AsyncClient(follow_redirects=False) as http:
        while True:
            wakeup.clear()
            try:
                sent = await deliver_due(sessionmaker, http, settings, now)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must survive a database hiccup
                log.exception("webhook_worker_error")
                sent = 0
            if sent:
                continue
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=settings.webhook_poll_seconds)
            except TimeoutError:
                pass
