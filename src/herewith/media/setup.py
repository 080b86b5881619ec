"""Group rooms on Janus for one process: :func:`create_group_rooms` (called by ``create_app``).

Returns the :class:`~herewith.media.group_rooms.GroupRooms` control plane, or None when
``HEREWITH_JANUS=off`` (or ``auto`` without a ``janus`` binary and without ``HEREWITH_JANUS_URL``): group
rooms then stay on the peer-to-peer mesh. ``create_app`` starts it in the background at start-up (the
server answers at once; joins of group rooms wait for Janus), stops it at shutdown and subscribes its
:meth:`~herewith.media.group_rooms.GroupRooms.on_meeting_deleted` to meeting ends.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.media.group_rooms import GroupRooms
from herewith.rooms import service as rooms

log = structlog.get_logger(__name__)


def create_group_rooms(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> GroupRooms | None:
    """The group-room control plane chosen by ``settings`` (None: no SFU). Rooms of meetings that are no
    longer live are destroyed when the control plane reconciles (``rooms.meeting_is_live``)."""
    group_rooms = GroupRooms.from_settings(settings)
    if group_rooms is None:
        return None

    async def meeting_alive(meeting_id: str) -> bool:
        async with sessionmaker() as session:
            return await rooms.meeting_is_live(session, meeting_id)

    group_rooms.meeting_alive = meeting_alive
    log.info("group_rooms_enabled", mode=settings.janus_mode)
    return group_rooms
