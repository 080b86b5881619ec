"""Meeting events: a meeting ended (deleted by the API, or deactivated at ``endDate`` + 1 hour).

Whoever holds state for a room subscribes: signaling ends the call for everyone in it, group rooms destroy
the Janus room, theming forgets the room's images. Publishers are ``DELETE /v1/meetings/{id}`` and the
lifecycle sweeper (CONTRACT.md, "Meetings", lifecycle), each after its change is committed.

Usage (what ``create_app`` wires)::

    meeting_events = MeetingEvents()
    meeting_events.subscribe(signaling.on_meeting_ended)
    await meeting_events.ended(meeting, "deleted")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import structlog

log = structlog.get_logger(__name__)

EndReason = Literal["deleted", "expired"]


class EndedMeeting(Protocol):
    """What subscribers read of an ended meeting (the ORM ``Meeting`` has it)."""

    id: str
    room_name: str


MeetingEndedHandler = Callable[[EndedMeeting, EndReason], Awaitable[None]]


class MeetingEvents:
    """The one publisher of "meeting ended" in a process. Handlers run in subscription order; one that
    raises is logged and the others still run."""

    def __init__(self) -> None:
        self._handlers: list[MeetingEndedHandler] = []

    def subscribe(self, handler: MeetingEndedHandler) -> None:
        """Call ``await handler(meeting, reason)`` for every meeting that ends from now on."""
        self._handlers.append(handler)

    async def ended(self, meeting: EndedMeeting, reason: EndReason) -> None:
        """Tell every subscriber that ``meeting`` ended (``reason``: ``deleted`` | ``expired``). Never raises."""
        for handler in list(self._handlers):
            try:
                await handler(meeting, reason)
            except Exception:  # noqa: BLE001 - one failing subscriber must not stop the others
                log.exception("meeting_ended_handler_failed", meeting_id=meeting.id, reason=reason)
