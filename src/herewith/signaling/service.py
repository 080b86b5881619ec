"""Signaling wired to the rest of the server: room lookup, roles from roomKey, limits, events, meeting ends.

:class:`Signaling` is created once per process by ``create_app``. It owns the process's :class:`~herewith.
signaling.router.Router` (today the in-process :class:`~herewith.signaling.router.LocalRouter`), which the
transport talks to, and gives it the rules that need settings, the clock and the database: which room a
name stands for and whether it is live (:mod:`herewith.rooms.service`), and the role a roomKey grants.

Usage::

    signaling = Signaling(settings, clock, sessionmaker, room_events, group_rooms.room_for)
    signal = await signaling.router.start_participant("/abc", participant_id, join_msg, sink)
    await signaling.end_room("/abc", "ended")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herewith.auth.room_keys import InvalidRoomKey, RoomKeyClaims, verify_room_key
from herewith.config import Settings
from herewith.kit.time import Clock
from herewith.meetings.events import EndedMeeting, EndReason
from herewith.rooms import service as rooms
from herewith.rooms.events import RoomEvents
from herewith.rooms.policy import DEFAULT_POLICY
from herewith.signaling import protocol as p
from herewith.signaling.live_room import CaptionControl, RecordingControl, RoomConfig, RoomRefLike, SfuRoom
from herewith.signaling.router import Admission, LocalRouter, Router

log = structlog.get_logger(__name__)


class Signaling:
    """Rooms of this process and the rules that need settings, the clock and the database.

    ``room_events`` receives every event of every live room; ``sfu_room_for(ref)`` (group rooms on Janus,
    None when there is no SFU) gives a group room its :class:`~herewith.signaling.live_room.SfuRoom`;
    ``recording`` (None: no cloud recording) is every room's :class:`~herewith.signaling.live_room.RecordingControl`,
    ``captions`` (None: no live transcription) its :class:`~herewith.signaling.live_room.CaptionControl`.
    ``router`` is what the transport talks to.
    """

    def __init__(self, settings: Settings, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession],
                 room_events: RoomEvents, sfu_room_for: Callable[[RoomRefLike], SfuRoom] | None = None,
                 recording: RecordingControl | None = None, captions: CaptionControl | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self._sessionmaker = sessionmaker
        self._sfu_room_for = sfu_room_for
        self.recording = recording
        self.captions = captions
        self._deactivate_after = timedelta(seconds=settings.room_deactivate_after_seconds)
        self.router: Router = LocalRouter(self.admit, self._config_for, room_events,
                                          settings.room_empty_grace_seconds)

    # ------------------------------------------------------------------------------------------ rules
    def _config_for(self, ref: RoomRefLike) -> RoomConfig:
        """Limits of a new live room (CONTRACT.md "Meetings": normal rooms up to 4 senders, group rooms up
        to ``room_max_participants_group``) and, for group rooms when an SFU is configured, its SFU side."""
        s = self.settings
        group = ref.room_mode == "group"
        sfu = self._sfu_room_for(ref) if self._sfu_room_for is not None and group else None
        return RoomConfig(
            max_senders=s.room_max_participants_group if group else s.room_max_senders_normal,
            max_viewers=s.room_max_participants_group if group else s.room_max_viewers_normal,
            ice_servers=lambda pid: rooms.ice_servers(s, self.clock.now(), pid),
            now=self.clock.now,
            ping_interval_ms=int(s.signaling_ping_interval_seconds * 1000),
            media="sfu" if sfu is not None else "mesh",
            sfu=sfu,
            recording=self.recording,
            captions=self.captions,
        )

    def role_for(self, room_key: str | None, room_name: str, organization_id: str | None = None) -> str:
        """``host``, ``viewer``, ``recorder``, ``member`` or ``captioner`` from a valid roomKey or participant token, else
        ``visitor`` (expired keys give no rights)."""
        claims = self.claims_for(room_key, room_name, organization_id)
        return claims.role if claims is not None else "visitor"

    def claims_for(self, room_key: str | None, room_name: str,
                   organization_id: str | None = None) -> RoomKeyClaims | None:
        """The verified claims of a roomKey or participant token for ``room_name`` (a global participant
        token: for the rooms of ``organization_id``), or None when there is none or it is not valid now."""
        if not room_key:
            return None
        try:
            return verify_room_key(self.settings.signing_key, room_key, room_name, self.clock.now(), organization_id)
        except InvalidRoomKey:
            return None

    async def lookup(self, room_name: str) -> rooms.RoomRef:
        """The live meeting behind ``room_name`` (with or without the leading slash), from the database.
        Raises :class:`~herewith.rooms.service.RoomNotFound` / :class:`~herewith.rooms.service.RoomGone`."""
        async with self._sessionmaker() as session:
            return await rooms.lookup_room(session, room_name, self.clock.now(), self._deactivate_after)

    async def admit(self, room_name: str, join: p.Join, cached: RoomRefLike | None) -> Admission:
        """The router's :data:`~herewith.signaling.router.Admit`: the room and the role of a connection
        whose first message is ``join``.

        ``cached`` (the reference of the room's live state) is reused while it is live by
        :func:`herewith.rooms.service.ref_is_live` (a deleted or deactivated meeting ends its live room
        through :meth:`on_meeting_deleted`, so only the time rule is left to check); otherwise the database
        decides. Then the room policy's join window (:func:`herewith.rooms.service.check_open`). Raises
        RoomNotFound / RoomGone / RoomNotOpen.
        """
        if cached is not None and rooms.ref_is_live(cached, self.clock.now(), self._deactivate_after):
            ref = cached
        else:
            ref = await self.lookup(room_name)
        rooms.check_open(getattr(ref, "policy", None) or DEFAULT_POLICY, self.clock.now())
        claims = self.claims_for(join.roomKey, ref.room_name, ref.organization_id)
        return Admission(ref=ref, role=claims.role if claims is not None else "visitor",
                         token=claims if claims is not None and claims.organization_id is not None else None)

    # -------------------------------------------------------------------------------------- room ends
    async def end_room(self, room_name: str, reason: str) -> int:
        """End the call in ``room_name`` (leading slash) for everyone (``reason``: ended | deleted | expired).
        Returns how many connections were told."""
        return await self.router.end_room(room_name, reason)

    async def on_meeting_deleted(self, meeting: EndedMeeting, reason: EndReason) -> None:
        """Subscriber of :class:`~herewith.meetings.events.MeetingEvents`: end the call for everyone in the room."""
        told = await self.end_room(meeting.room_name, "expired" if reason == "expired" else "deleted")
        if told:
            log.info("room_ended", room_name=meeting.room_name, reason=reason, connections=told)

    def stats(self) -> dict[str, int]:
        """``{"rooms": n, "connections": n}`` of this process's router."""
        return self.router.stats()

    async def close(self) -> None:
        """Shutdown: stop the router's timers."""
        await self.router.close()
