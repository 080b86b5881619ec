"""Room events the signaling layer emits for the rest of the server (room sessions, insights, webhooks).

The live room publishes a :class:`RoomEvent` to every sink in ``app.state.room_event_sinks`` after the
state change. Sinks must be quick and must not raise (they store and return; delivery happens elsewhere).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

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
"""A sink: ``await sink(event)``. Events reach sinks in publication order, from one delivery task.

Optional batching (compatible extension): a sink that also has ``async handle_batch(events: list[RoomEvent])``
receives, instead of one call per event, every event queued at that moment (in order, at most
``MAX_BATCH``), so it can write many ``participant.stats`` samples in one transaction. Under pressure the
delivery queue drops ``participant.stats`` samples first.
"""

MAX_BATCH = 500
