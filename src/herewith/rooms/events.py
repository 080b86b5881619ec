"""Room events: what the signaling layer tells the rest of the server (room sessions, insights, webhooks).

A live room publishes a :class:`RoomEvent` on the process's :class:`RoomEvents` after each state change;
the subscribers (the room session recorder, tests) receive every event in publication order from one
delivery task, so a slow subscriber (a database write) never holds up a room. Subscribers must not raise.

Usage (what ``create_app`` wires)::

    room_events = RoomEvents()
    room_events.subscribe(recorder)         # an async callable, or an object with ``handle_batch``
    await room_events.publish(event)        # returns at once; delivery happens in order, in the background
    await room_events.flush()               # every event published so far has reached every subscriber
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog

log = structlog.get_logger(__name__)

RoomEventType = Literal[
    "participant.joined",  # admitted into the call (after a knock, when accepted)
    "participant.left",  # left, removed, disconnected, or the room ended
    "participant.knocked",  # asked to enter a locked room
    "participant.knock_cancelled",  # a knocker left before being answered
    "participant.stats",  # a WebRTC statistics sample from the room page
]


@dataclass(frozen=True)
class ParticipantInfo:
    """One participant as insights and webhooks see it (CONTRACT.md "Room roles", "Insights")."""

    participant_id: str
    role_name: str  # host | visitor | granted_visitor | viewer | granted_viewer | ...
    display_name: str | None = None
    external_id: str | None = None
    metadata: str | None = None
    user_agent: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class RoomEvent:
    """Something that happened in a live room.

    ``at``: aware UTC time of the event. ``participants``: everyone in the call after the event (knockers
    excluded; empty for ``participant.stats``). ``stats``: for ``participant.stats`` only: ``{"packetLossSend", "packetLossRecv",
    "bitrateSend", "bitrateRecv", "sampleRateMs"}`` (loss in percent 0..100, bitrates in bits per second).
    """

    type: RoomEventType
    room_name: str  # with the leading slash
    meeting_id: str
    organization_id: str
    participant: ParticipantInfo
    at: datetime
    participants: tuple[ParticipantInfo, ...] = ()
    stats: dict[str, Any] | None = field(default=None)


RoomEventSink = Callable[[RoomEvent], Awaitable[None]]
"""A subscriber: ``await sink(event)``. Events reach subscribers in publication order, from one delivery task."""


class BatchRoomEventSink(Protocol):
    """A subscriber that takes, instead of one call per event, every event queued at that moment (in order,
    at most :data:`MAX_BATCH`), so it can write many ``participant.stats`` samples in one transaction."""

    async def handle_batch(self, events: list[RoomEvent]) -> None: ...


MAX_BATCH = 500
QUEUE_LIMIT = 20_000


class RoomEvents:
    """The one publisher of room events in a process (LiveKit's webhook/telemetry notifier plays this part).

    :meth:`publish` never blocks a room: events go into one bounded queue (``queue_limit``) drained by one
    task that hands them to every subscriber in order. Under pressure ``participant.stats`` samples are
    dropped first (when the queue is half full), then any event (counted in :attr:`dropped`, logged).
    """

    def __init__(self, queue_limit: int = QUEUE_LIMIT) -> None:
        self._subscribers: list[RoomEventSink | BatchRoomEventSink] = []
        self._queue_limit = queue_limit
        self._queue: asyncio.Queue[tuple[RoomEvent, asyncio.Future[None] | None]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.dropped = 0

    def subscribe(self, subscriber: RoomEventSink | BatchRoomEventSink) -> None:
        """Add a subscriber: an async callable taking one :class:`RoomEvent`, or a :class:`BatchRoomEventSink`."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: RoomEventSink | BatchRoomEventSink) -> None:
        """Remove a subscriber added by :meth:`subscribe` (no error when absent)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def publish(self, event: RoomEvent) -> None:
        """Queue ``event`` for every subscriber; returns at once (the worker starts on first use)."""
        self._enqueue(event, None)

    async def publish_and_wait(self, event: RoomEvent, timeout: float = 10.0) -> bool:
        """Queue ``event`` and wait until every subscriber has handled it (the room session recorder has
        committed it and its webhooks to the outbox), at most ``timeout`` seconds. Returns False when it
        timed out or was dropped (the event stays queued when it timed out).

        The live room tells a participant it joined only after this, so that an acknowledged join is never
        missing from insights and webhooks after a crash."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._enqueue(event, future):
            return not self._subscribers
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            log.warning("room_event_not_recorded_in_time", type=event.type, room_name=event.room_name,
                        timeout_seconds=timeout)
            return False

    def _enqueue(self, event: RoomEvent, future: asyncio.Future[None] | None) -> bool:
        if not self._subscribers:
            return False
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_limit)
            self._worker = asyncio.get_running_loop().create_task(self._deliver(), name="room-events")
        if event.type == "participant.stats" and self._queue.qsize() > self._queue_limit // 2:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait((event, future))
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("room_event_dropped", type=event.type, room_name=event.room_name)
            return False

    async def _deliver(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            items = [await queue.get()]
            while len(items) < MAX_BATCH and not queue.empty():
                items.append(queue.get_nowait())
            batch = [event for event, _ in items]
            for subscriber in list(self._subscribers):
                handle_batch = getattr(subscriber, "handle_batch", None)
                if handle_batch is not None:
                    try:
                        await handle_batch(batch)
                    except Exception:  # noqa: BLE001 - subscribers must not break rooms
                        log.exception("room_event_subscriber_failed", type="batch", size=len(batch))
                    continue
                for event in batch:
                    try:
                        await subscriber(event)  # type: ignore[operator]
                    except Exception:  # noqa: BLE001 - subscribers must not break rooms
                        log.exception("room_event_subscriber_failed", type=event.type)
            for _, future in items:
                if future is not None and not future.done():
                    future.set_result(None)
                queue.task_done()

    async def flush(self) -> None:
        """Wait until every event published so far reached every subscriber (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (at most ``timeout`` seconds), then stop the delivery task."""
        if self._worker is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            log.warning("room_events_not_flushed", queued=self._queue.qsize() if self._queue else 0)
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
