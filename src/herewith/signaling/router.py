"""Routing: how one participant's messages reach its room and the room's answers reach the participant.

The transport (:mod:`herewith.signaling.endpoint`) holds no room and calls no room method: it talks to a
:class:`Router` only, as in livekit's ``pkg/routing`` (``StartParticipantSignal``, ``MessageSink``,
``MessageSource``). For each connection it calls :meth:`Router.start_participant` with the first (``join``)
message and its :class:`MessageSink`; it gets a :class:`ParticipantSignal` back, the source side, into which
it puts every later client message (:meth:`ParticipantSignal.send`), and which it closes when the socket
ends. Everything for the participant (``joined``, relayed offers, errors, the close) comes back through the
sink, from whichever room and node holds the participant.

:class:`LocalRouter` keeps every live room of this process in a dict: the one router today. A Redis router
can stand beside it behind the same interface (a room placed on one node, frames forwarded between nodes
over Redis), because nothing else crosses this seam: the sink takes text frames and a close, the signal
takes parsed :mod:`herewith.signaling.protocol` messages.

Admission rules are not the router's: it asks an :data:`Admit` callable (:meth:`herewith.signaling.service.
Signaling.admit`: room lookup and liveness, role from the roomKey) and the :class:`~herewith.signaling.
live_room.LiveRoom` (lock, knocking, capacity). Rooms that become empty are kept ``empty_grace_seconds`` (a
host's lock and admitted knockers survive a reconnect), then dropped.

Usage (the transport)::

    signal = await router.start_participant("/abc", participant_id, join_msg, sink)
    if signal is not None:                  # None: refused; the error and the close went to the sink
        await signal.send(parsed_message)   # every later client message, in order
        await signal.close()                # the socket ended (either side); idempotent
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from herewith.rooms import service as rooms
from herewith.signaling import protocol as p
from herewith.signaling.live_room import (
    CLOSE_GONE,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_NOT_OPEN,
    RoomEventPublisher,
    LiveRoom,
    RoomConfig,
    RoomRefLike,
    TokenClaims,
)

__all__ = ["Admission", "Admit", "LocalRouter", "MessageSink", "ParticipantSignal", "Router"]


class MessageSink(Protocol):
    """The transport's side of one connection: where every frame for the participant goes.

    ``send_text(text)`` queues one JSON text frame (a :mod:`~herewith.signaling.protocol` server message);
    ``close(code, reason)`` closes the connection after the frames queued before it (``code``: a WebSocket
    close code, e.g. 4404 room not found, 4410 gone, 4409 full, 4001 ended, 4003 removed). Both are
    non-blocking and never raise (a room sees the sink as its :class:`~herewith.signaling.live_room.Outbox`).
    """

    def send_text(self, text: str) -> None: ...

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...


class ParticipantSignal(ABC):
    """The request side of one admitted participant (in the call, in the lobby, or knocking).

    Messages are applied in the order they are sent; the answers go to the participant's sink.
    """

    participant_id: str

    @abstractmethod
    async def send(self, msg: p.ClientMessage) -> None:
        """Apply one parsed client message (any but ``join``, which would get ``error already_joined``).
        Raises only on a bug: the transport answers ``error internal`` and goes on."""

    @abstractmethod
    async def close(self) -> None:
        """The connection is gone (closed by either side): the participant leaves. Idempotent."""


class Router(ABC):
    """Where live rooms live and how a connection reaches its room. All methods run on the event loop."""

    @abstractmethod
    async def start_participant(self, room_name: str, participant_id: str, join: p.Join,
                                sink: MessageSink) -> ParticipantSignal | None:
        """Admit a connection whose first message is ``join`` to room ``room_name`` (with or without the
        leading slash) as ``participant_id``.

        Returns its :class:`ParticipantSignal` once ``joined`` (or ``room_locked``: the visitor may knock)
        went to ``sink``; returns None when the room refused it (no such room: ``error room_not_found`` and
        close 4404; deleted or deactivated: ``room_gone``, 4410; ended or full: ``room_gone``/``room_full``,
        4410/4409), the error and the close having gone to ``sink``. Raises on database errors only.
        """

    @abstractmethod
    async def end_room(self, room_name: str, reason: str) -> int:
        """End the call in ``room_name`` (leading slash) for everyone: ``ended {reason}`` then close 4001.
        ``reason``: ended | deleted | expired. Returns how many connections were told."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """``{"rooms": n, "connections": n}`` of this router, for health and benchmarks."""

    def census(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        """Live rooms by room mode (``{"normal": n, "group": n}``) and participants in a call by ``(room mode,
        role)``, for the ``/metrics`` gauges. Reads memory only; a router that cannot tell returns empty maps."""
        return {}, {}

    async def close(self) -> None:
        """Stop timers; called at shutdown."""


@dataclass(frozen=True)
class Admission:
    """Who may enter which room: the room's reference (live now) and the participant's role from its
    roomKey (``host``, ``viewer``, or ``visitor``)."""

    ref: RoomRefLike
    role: str
    token: TokenClaims | None = None  # a participant token's claims (room keys of host/viewer URLs: None)


Admit = Callable[[str, p.Join, RoomRefLike | None], Awaitable[Admission]]
"""``await admit(room_name, join, cached_ref) -> Admission``: ``room_name`` normalised (leading slash);
``cached_ref`` the reference of the room's live state on this router (None when there is none), which the
callee may reuse while it is still live. Raises :class:`herewith.rooms.service.RoomNotFound` /
:class:`~herewith.rooms.service.RoomGone`."""


class LocalRouter(Router):
    """Live rooms held in this process.

    ``admit`` decides who enters which room (:data:`Admit`); ``config_for(ref)`` gives a new room its
    limits and SFU side; ``events`` receives every room event; an empty room is dropped after
    ``empty_grace_seconds`` (0: at once).
    """

    def __init__(self, admit: Admit, config_for: Callable[[RoomRefLike], RoomConfig], events: RoomEventPublisher,
                 empty_grace_seconds: float = 30.0) -> None:
        self._admit = admit
        self._config_for = config_for
        self._events = events
        self._grace = empty_grace_seconds
        self._rooms: dict[str, LiveRoom] = {}
        self._drop_timers: dict[str, asyncio.TimerHandle] = {}

    async def start_participant(self, room_name: str, participant_id: str, join: p.Join,
                                sink: MessageSink) -> ParticipantSignal | None:
        try:
            name = rooms.normalize_room_name(room_name)
            live = self._rooms.get(name)
            admission = await self._admit(name, join, live.ref if live is not None and not live.ended else None)
        except rooms.RoomNotFound:
            sink.send_text(p.dump(p.error(p.ErrorCode.ROOM_NOT_FOUND, "There is no room with this name", "join")))
            sink.close(CLOSE_NOT_FOUND, "room not found")
            return None
        except rooms.RoomGone as gone:
            what = "ended" if gone.reason == "deleted" else "expired"
            sink.send_text(p.dump(p.error(p.ErrorCode.ROOM_GONE, f"This room has {what}", "join")))
            sink.close(CLOSE_GONE, "room gone")
            return None
        except rooms.RoomNotOpen as not_open:
            sink.send_text(p.dump(p.error(p.ErrorCode.ROOM_NOT_OPEN, not_open.message, "join")))
            sink.close(CLOSE_NOT_OPEN, "room not open")
            return None
        room = self._open_room(admission.ref)
        status = await room.join(participant_id, sink, join, admission.role, admission.token)
        if status == "refused":
            self._release(room)
            return None
        return _LocalSignal(self, room, participant_id)

    async def end_room(self, room_name: str, reason: str) -> int:
        room = self._rooms.get(room_name)
        if room is None:
            return 0
        told = room.connection_count()
        await room.end(reason)
        self._release(room)
        return told

    def stats(self) -> dict[str, int]:
        return {"rooms": len(self._rooms), "connections": sum(r.connection_count() for r in self._rooms.values())}

    def census(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        rooms: dict[str, int] = {}
        people: dict[tuple[str, str], int] = {}
        for room in self._rooms.values():
            mode = room.ref.room_mode
            rooms[mode] = rooms.get(mode, 0) + 1
            for member in room.members.values():
                if not member.pending:
                    people[(mode, member.role)] = people.get((mode, member.role), 0) + 1
        return rooms, people

    async def close(self) -> None:
        for timer in self._drop_timers.values():
            timer.cancel()
        self._drop_timers.clear()

    # ----------------------------------------------------------------------------------------- rooms
    def _open_room(self, ref: RoomRefLike) -> LiveRoom:
        """The live room for ``ref.room_name``, created when there is none (or only an ended, empty one)."""
        timer = self._drop_timers.pop(ref.room_name, None)
        if timer is not None:
            timer.cancel()
        room = self._rooms.get(ref.room_name)
        if room is None or (room.ended and room.is_empty()):
            room = LiveRoom(ref, self._config_for(ref), self._events)
            self._rooms[ref.room_name] = room
        return room

    async def _left(self, room: LiveRoom, participant_id: str) -> None:
        await room.disconnect(participant_id)
        self._release(room)

    def _release(self, room: LiveRoom) -> None:
        """Someone left ``room``: drop it once it stayed empty for the grace period."""
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


class _LocalSignal(ParticipantSignal):
    """A participant of a room in this process: messages go straight to the room."""

    def __init__(self, router: LocalRouter, room: LiveRoom, participant_id: str) -> None:
        self.participant_id = participant_id
        self._router = router
        self._room = room
        self._closed = False

    async def send(self, msg: p.ClientMessage) -> None:
        await self._room.handle(self.participant_id, msg)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._router._left(self._room, self.participant_id)
