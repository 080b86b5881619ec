"""Wire group rooms into the app: ``install(app)`` (called by ``create_app``).

- ``app.state.group_rooms``: the :class:`~herewith.media.group_rooms.GroupRooms` control plane, or None when
  ``HEREWITH_JANUS=off`` (or ``auto`` without a ``janus`` binary and without ``HEREWITH_JANUS_URL``);
- ``app.state.sfu_available``: True when group rooms go through Janus (signaling then gives group rooms
  ``media: "sfu"`` and a ``RoomConfig.sfu``); False keeps them on the peer-to-peer mesh;
- start-up: Janus is started (or the external instances reached) in the background, so the server answers at
  once; joins of group rooms wait for it. Shutdown: participants' sessions closed, local Janus stopped;
- ``meeting_deleted_hooks``: the meeting's Janus room is destroyed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from herewith.media.group_rooms import GroupRooms

log = structlog.get_logger(__name__)


def install(app: Any) -> GroupRooms | None:
    settings = app.state.settings
    rooms = GroupRooms.from_settings(settings)
    app.state.group_rooms = rooms
    app.state.sfu_available = rooms is not None
    if rooms is None:
        return None

    async def meeting_alive(meeting_id: str) -> bool:
        from herewith.meetings.models import Meeting
        from sqlalchemy import select

        async with app.state.sessionmaker() as session:
            row = (await session.execute(select(Meeting).where(Meeting.id == meeting_id))).scalar_one_or_none()
        return row is not None and row.deleted_at is None and row.deactivated_at is None

    rooms.meeting_alive = meeting_alive

    async def startup(_: Any) -> None:
        task = asyncio.get_running_loop().create_task(rooms.start(), name="janus-start")
        app.state.background_tasks.append(task)

    async def shutdown(_: Any) -> None:
        await rooms.stop()

    app.state.startup_hooks.append(startup)
    app.state.shutdown_hooks.append(shutdown)
    app.state.meeting_deleted_hooks.append(rooms.on_meeting_deleted)
    log.info("group_rooms_enabled", mode=settings.janus_mode)
    return rooms
