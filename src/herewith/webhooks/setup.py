"""Wiring of room sessions, the lifecycle sweeper and webhook delivery into the app.

Usage (what ``create_app`` does)::

    install(app)   # the room event sink now; the sweeper and the delivery worker at start-up
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from herewith.rooms.lifecycle import run_sweeper
from herewith.rooms.sessions import RoomEventRecorder
from herewith.webhooks.delivery import run_worker


def install(app: FastAPI) -> None:
    """Register the sink and a start-up hook that starts the background loops (when ``background_tasks``)."""
    app.state.webhook_wakeup = asyncio.Event()
    app.state.room_event_recorder = RoomEventRecorder(app)
    app.state.room_event_sinks.append(app.state.room_event_recorder)

    async def flush_stats(app: FastAPI) -> None:
        await app.state.room_event_recorder.flush_stats()

    async def start(app: FastAPI) -> None:
        # Registered here, after every install(): runs after signaling has handed over its last events.
        app.state.shutdown_hooks.append(flush_stats)
        if not app.state.settings.background_tasks:
            return
        app.state.background_tasks.append(asyncio.create_task(run_sweeper(app), name="lifecycle-sweeper"))
        app.state.background_tasks.append(asyncio.create_task(run_worker(app), name="webhook-delivery"))

    app.state.startup_hooks.append(start)
