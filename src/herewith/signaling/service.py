"""Signaling wired to the rest of the server: room lookup, roles from roomKey, limits, events, DELETE.

:class:`Signaling` is created once per process by ``create_app``. The transport calls
:meth:`Signaling.enter` with the first (``join``) message of a connection; everything after goes to the
returned :class:`~herewith.signaling.live_room.LiveRoom`.

Usage::

    signaling = Signaling(settings, clock, sessionmaker, room_events, group_rooms.room_for)
    room, status = await signaling.enter("/abc", participant_id, outbox, join_msg)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.config import Settings
from herewith.kit.time import Clock
from herewith.auth.room_keys import InvalidRoomKey, verify_room_key
from herewith.rooms import service as rooms
from herewith.signaling import protocol as p
from herewith.rooms.events import RoomEvents
from herewith.signaling.live_room import (
    CLOSE_GONE,
    CLOSE_NOT_FOUND,
    LiveRoom,
    Outbox,
    RoomConfig,
    RoomRefLike,
)
from herewith.signaling.router import LocalRouter, Router

log = structlog.get_logger(__name__)



class Signaling:
    """Rooms of this process and the rules that need settings, the clock and the database.

    ``room_events`` receives every event of every live room; ``sfu_room_for`` (group rooms on Janus, None
    when there is no SFU) gives a group room its :class:`~herewith.signaling.live_room.SfuRoom`.
    """

    def __init__(self, settings: Settings, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession],
                 room_events: RoomEvents, sfu_room_for: Callable[[RoomRefLike], Any] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self._sessionmaker = sessionmaker
        self._room_events = room_events
        self._sfu_room_for = sfu_room_for
        self.router: Router = LocalRouter(self._config_for, room_events.publish, settings.room_empty_grace_seconds)

    # ------------------------------------------------------------------------------------------ helpers
    def _config_for(self, ref: RoomRefLike) -> RoomConfig:
        s = self.settings
        group = ref.room_mode == "group"
        sfu = self._sfu_room_for is not None and group
        return RoomConfig(
            max_senders=s.room_max_participants_group if group else s.room_max_senders_normal,
            max_viewers=s.room_max_participants_group if group else s.room_max_viewers_normal,
            ice_servers=lambda pid: rooms.ice_servers(s, self.clock.now(), pid),
            now=self.clock.now,
            ping_interval_ms=int(s.signaling_ping_interval_seconds * 1000),
            media="sfu" if sfu else "mesh",
            sfu=self._sfu_room_for(ref) if sfu else None,  # type: ignore[misc]
        )

    def role_for(self, room_key: str | None, room_name: str) -> str:
        """``host`` or ``viewer`` from a valid roomKey, else ``visitor`` (expired keys give no rights)."""
        if not room_key:
            return "visitor"
        try:
            return verify_room_key(self.settings.signing_key, room_key, room_name, self.clock.now()).role
        except InvalidRoomKey:
            return "visitor"

    async def lookup(self, room_name: str) -> rooms.RoomRef:
        """The live meeting behind ``room_name``; raises RoomNotFound / RoomGone."""
        deactivate_after = timedelta(seconds=self.settings.room_deactivate_after_seconds)
        async with self._sessionmaker() as session:
            return await rooms.lookup_room(session, room_name, self.clock.now(), deactivate_after)

    # --------------------------------------------------------------------------------------------- entry
    async def _ref_for(self, room_name: str) -> Any:
        """The room's reference: from its live room when there is one (deletion and deactivation end live
        rooms through ``meeting_deleted_hooks``), else from the database."""
        try:
            name = rooms.normalize_room_name(room_name)
        except rooms.RoomNotFound:
            raise
        live = self.router.get_room(name)
        if live is not None and not live.ended:
            deactivate_after = timedelta(seconds=self.settings.room_deactivate_after_seconds)
            end_date = getattr(live.ref, "end_date", None)
            if end_date is None or self.clock.now() <= end_date + deactivate_after:
                return live.ref
        return await self.lookup(name)

    async def enter(self, room_name: str, participant_id: str, outbox: Outbox, msg: p.Join) -> tuple[LiveRoom | None, str]:
        """Admit a connection whose first message is ``msg``. Returns ``(room, status)``: status ``joined``,
        ``lobby`` (locked room: may knock) or ``refused`` (room is None or the outbox was closed)."""
        try:
            ref = await self._ref_for(room_name)
        except rooms.RoomNotFound:
            outbox.send_text(p.dump(p.error(p.ErrorCode.ROOM_NOT_FOUND, "There is no room with this name", "join")))
            outbox.close(CLOSE_NOT_FOUND, "room not found")
            return None, "refused"
        except rooms.RoomGone as gone:
            outbox.send_text(p.dump(p.error(p.ErrorCode.ROOM_GONE, f"This room has {'ended' if gone.reason == 'deleted' else 'expired'}", "join")))
            outbox.close(CLOSE_GONE, "room gone")
            return None, "refused"
        role = self.role_for(msg.roomKey, ref.room_name)
        room = await self.router.open_room(ref)
        status = await room.join(participant_id, outbox, msg, role)
        if status == "refused":
            self.router.release(room)
        return room, status

    async def left(self, room: LiveRoom, participant_id: str) -> None:
        """The connection is gone (closed by either side)."""
        await room.disconnect(participant_id)
        self.router.release(room)

    async def on_meeting_deleted(self, meeting: Any, reason: str) -> None:
        """Subscriber of :class:`~herewith.meetings.events.MeetingEvents`: end the call for everyone in the room."""
        told = await self.router.end_room(meeting.room_name, "expired" if reason == "expired" else "deleted")
        if told:
            log.info("room_ended", room_name=meeting.room_name, reason=reason, connections=told)

    async def close(self) -> None:
        """Shutdown: stop the router's timers."""
        await self.router.close()
