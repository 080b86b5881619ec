"""Routing: which :class:`~herewith.signaling.live_room.LiveRoom` a connection talks to.

The transport (:mod:`herewith.signaling.endpoint`) only ever talks to a :class:`Router`. The in-process
:class:`LocalRouter` keeps every live room of this process in a dict; a Redis router can later place each room
on one node and forward frames between nodes behind the same interface (livekit's ``pkg/routing`` split).

Rooms that become empty are kept ``empty_grace_seconds`` (a host's lock and admitted knockers survive a
reconnect), then dropped.

Usage::

    router = LocalRouter(config_for, emit)
    room = await router.open_room(ref)          # get or create
    await router.end_room("/abc", "deleted")    # DELETE /v1/meetings/{id}
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable

from herewith.signaling.live_room import EventEmitter, LiveRoom, RoomConfig, RoomRefLike


class Router(ABC):
    """Where live rooms live. All methods run on the server's event loop."""

    @abstractmethod
    async def open_room(self, ref: RoomRefLike) -> LiveRoom:
        """The live room for ``ref.room_name``, created when nobody is in it yet."""

    @abstractmethod
    def get_room(self, room_name: str) -> LiveRoom | None:
        """The live room named ``room_name`` (leading slash) if it has state on this router."""

    @abstractmethod
    async def end_room(self, room_name: str, reason: str) -> int:
        """End the call in ``room_name`` for everyone (``reason``: ended | deleted | expired).

        Returns how many connections were told."""

    @abstractmethod
    def release(self, room: LiveRoom) -> None:
        """Called after someone left ``room``; the router may drop it once it stays empty."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """``{"rooms": n, "connections": n}`` for health and benchmarks."""

    async def close(self) -> None:
        """Stop timers; called at shutdown."""


class LocalRouter(Router):
    """Live rooms held in this process."""

    def __init__(self, config_for: Callable[[RoomRefLike], RoomConfig], emit: EventEmitter,
                 empty_grace_seconds: float = 30.0) -> None:
        self._config_for = config_for
        self._emit = emit
        self._grace = empty_grace_seconds
        self._rooms: dict[str, LiveRoom] = {}
        self._drop_timers: dict[str, asyncio.TimerHandle] = {}

    async def open_room(self, ref: RoomRefLike) -> LiveRoom:
        timer = self._drop_timers.pop(ref.room_name, None)
        if timer is not None:
            timer.cancel()
        room = self._rooms.get(ref.room_name)
        if room is None or (room.ended and room.is_empty()):
            room = LiveRoom(ref, self._config_for(ref), self._emit)
            self._rooms[ref.room_name] = room
        return room

    def get_room(self, room_name: str) -> LiveRoom | None:
        return self._rooms.get(room_name)

    async def end_room(self, room_name: str, reason: str) -> int:
        room = self._rooms.get(room_name)
        if room is None:
            return 0
        told = room.connection_count()
        await room.end(reason)
        self.release(room)
        return told

    def release(self, room: LiveRoom) -> None:
        if not room.is_empty() or self._rooms.get(room.room_name) is not room:
            return
        name = room.room_name
        if name in self._drop_timers:
            return

        def drop() -> None:
            self._drop_timers.pop(name, None)
            if self._rooms.get(name) is room and room.is_empty():
                del self._rooms[name]

        if self._grace <= 0:
            drop()
        else:
            self._drop_timers[name] = asyncio.get_running_loop().call_later(self._grace, drop)

    def stats(self) -> dict[str, int]:
        return {"rooms": len(self._rooms), "connections": sum(r.connection_count() for r in self._rooms.values())}

    async def close(self) -> None:
        for timer in self._drop_timers.values():
            timer.cancel()
        self._drop_timers.clear()
