"""The loop every job runner of this package shares: rounds of work until cancelled.

Usage::

    await run_rounds(job.run_once, wakeup, lambda: settings.recording_poll_seconds, "recording_job_error")

One round at once, then the next when ``wakeup`` is set or after the poll interval (seconds, read each time:
settings may change in tests); an exception in a round is logged as ``error_event`` and the loop goes on (a
database hiccup must not end a job runner). Cancelling the task ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def run_rounds(run_once: Callable[[], Awaitable[Any]], wakeup: asyncio.Event | None,
                     interval: Callable[[], float], error_event: str) -> None:
    """Call ``run_once`` in rounds until cancelled (see the module doc); ``wakeup`` None: every ``interval()``."""
    while True:
        if wakeup is not None:
            wakeup.clear()
        try:
            await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep going after a database hiccup
            log.exception(error_event)
        if wakeup is None:
            await asyncio.sleep(interval())
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=interval())
