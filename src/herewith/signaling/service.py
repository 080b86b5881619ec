"""Signaling wired to the rest of the server: room lookup, roles from roomKey, limits, events, DELETE.

:class:`Signaling` is created once per app (``app.state.signaling``) by :func:`install`. The transport calls
:meth:`Signaling.enter` with the first (``join``) message of a connection; everything after goes to the
returned :class:`~herewith.signaling.live_room.LiveRoom`.

Usage::

    signaling = install(app)                     # in create_app
    room, status = await signaling.enter("/abc", participant_id, outbox, join_msg)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import structlog

from herewith.auth.room_keys import InvalidRoomKey, verify_room_key
from herewith.rooms import service as rooms
from herewith.signaling import protocol as p
from herewith.signaling.events import MAX_BATCH, RoomEvent
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

EVENT_QUEUE_LIMIT = 20_000


class Signaling:
    """Rooms of this process and the rules that need settings, the clock and the database."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings = app.state.settings
        self.clock = app.state.clock
        self.router: Router = LocalRouter(self._config_for, self._emit, self.settings.room_empty_grace_seconds)
        # Room events leave through one ordered queue drained by one task, so a slow sink (a database write)
        # never holds up a room; under pressure, statistics samples are dropped first.
        self._events: asyncio.Queue[RoomEvent] | None = None
        self._event_worker: asyncio.Task[None] | None = None
        self.dropped_events = 0

    # ------------------------------------------------------------------------------------------ helpers
    def _config_for(self, ref: RoomRefLike) -> RoomConfig:
        s = self.settings
        group = ref.room_mode == "group"
        return RoomConfig(
            max_senders=s.room_max_participants_group if group else s.room_max_senders_normal,
            max_viewers=s.room_max_participants_group if group else s.room_max_viewers_normal,
            ice_servers=lambda pid: rooms.ice_servers(s, self.clock.now(), pid),
            now=self.clock.now,
            ping_interval_ms=int(s.signaling_ping_interval_seconds * 1000),
            media="sfu" if group and getattr(self.app.state, "sfu_available", False) else "mesh",
            # issue 7: the Janus control plane's room object (herewith.media.group_rooms) for SFU rooms
            sfu=(self.app.state.group_rooms.room_for(ref)
                 if group and getattr(self.app.state, "sfu_available", False) else None),
        )

    async def _emit(self, event: RoomEvent) -> None:
        if not self.app.state.room_event_sinks:
            return
        if self._events is None:
            self._events = asyncio.Queue(EVENT_QUEUE_LIMIT)
            self._event_worker = asyncio.get_running_loop().create_task(self._deliver_events())
        if event.type == "participant.stats" and self._events.qsize() > EVENT_QUEUE_LIMIT // 2:
            self.dropped_events += 1
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_events += 1
            log.warning("room_event_dropped", type=event.type, room_name=event.room_name)

    async def _deliver_events(self) -> None:
        """Hand queued events to every sink in order; sinks with ``handle_batch`` get them in batches."""
        queue = self._events
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            for sink in list(self.app.state.room_event_sinks):
                handle_batch = getattr(sink, "handle_batch", None)
                if handle_batch is not None:
                    try:
                        await handle_batch(batch)
                    except Exception:  # noqa: BLE001 - sinks must not break rooms
                        log.exception("room_event_sink_failed", type="batch", size=len(batch))
                    continue
                for event in batch:
                    try:
                        await sink(event)
                    except Exception:  # noqa: BLE001 - sinks must not break rooms
                        log.exception("room_event_sink_failed", type=event.type)
            for _ in batch:
                queue.task_done()

    async def flush_events(self) -> None:
        """Wait until every room event published so far reached the sinks (tests, shutdown)."""
        if self._events is not None:
            await self._events.join()

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
        deactivate_after = timedelta(seconds=getattr(self.settings, "room_deactivate_after_seconds", 3600.0))
        async with self.app.state.sessionmaker() as session:
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
            deactivate_after = timedelta(seconds=getattr(self.settings, "room_deactivate_after_seconds", 3600.0))
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
        """``app.state.meeting_deleted_hooks``: end the call for everyone in the room at once."""
        told = await self.router.end_room(meeting.room_name, "expired" if reason == "expired" else "deleted")
        if told:
            log.info("room_ended", room_name=meeting.room_name, reason=reason, connections=told)


def install(app: Any) -> Signaling:
    """Create ``app.state.signaling``, hook it to meeting deletion and shutdown, and mount the WebSocket."""
    from herewith.signaling.endpoint import router as ws_router

    signaling = Signaling(app)
    app.state.signaling = signaling
    app.state.meeting_deleted_hooks.append(signaling.on_meeting_deleted)

    async def close(_: Any) -> None:
        await signaling.router.close()
        if signaling._event_worker is not None:
            try:
                async with asyncio.timeout(5):
                    await signaling.flush_events()
            except TimeoutError:
                pass
            signaling._event_worker.cancel()

    app.state.shutdown_hooks.append(close)
    app.include_router(ws_router)
    return signaling
